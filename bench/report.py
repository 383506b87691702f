"""Markdown report of a suite, rendered only from its per-cell records.

Nothing here trains, predicts or re-scores: every number is read from a record's ``metrics``
(schema in :mod:`bench.records`) and aggregated over seeds. The tables follow the layout of
Bulathsinghalage & Liu, "Transfer learning pre-training dataset effect analysis for breast
cancer imaging":

- :func:`table_transfer` is their Tables 1-3: one target, rows backbone x pre-training source,
  columns "No FT", "FT 0.1", "FT 0.2", ...
- :func:`table_all_vs_hybrid` is their Table 4: rows target x source, cells "full vs hybrid".

Cell text (one table cell = every seed of one backbone x source x ft_fraction x target x transfer):

- ``0.812 ± 0.031``: mean over the seeds that finished with a value, ± sample std (ddof=1),
  the std only when there are two or more such seeds;
- ``0.812 (1 failed)``: the same, with seeds that did not give a value counted in brackets;
- ``NA``: every seed is status ``na`` (not applicable; the reason is stated in the report);
- ``failed``: every seed failed; ``n/a``: every seed finished but the metric is undefined for it
  (e.g. beta without fine-tuning, AUC on a one-class evaluation set); ``—``: no record at all.

Row order: backbones and targets in order of first appearance in the records (pass records in
suite-expansion order to get the suite's order); sources ``random`` first, ``imagenet`` second,
then the others in order of first appearance.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench.registry import closest

__all__ = ["HIGHER_IS_BETTER", "metric_caption", "records_frame", "table_transfer", "table_all_vs_hybrid",
           "render_report"]

HIGHER_IS_BETTER: dict[str, bool] = {
    "auc": True,
    "accuracy": True,
    "f1": True,
    "sensitivity": True,
    "specificity": True,
    "train_acc": True,
    "val_acc": True,
    "beta": False,  # train_acc / val_acc: about 1 is no overfitting, above 1 is overfitting
}
"""Direction of each metric, shown as an arrow in table captions (sklearn/lm-eval convention)."""

METRIC_NAMES: dict[str, str] = {
    "auc": "AUC",
    "accuracy": "Accuracy",
    "f1": "F1",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "train_acc": "Training accuracy",
    "val_acc": "Evaluation accuracy",
    "beta": "Overfit ratio β = train acc / val acc",
}

AXES = ("backbone", "source", "ft_fraction", "target", "transfer", "seed")
RECORD_METRICS = ("auc", "accuracy", "f1", "sensitivity", "specificity", "train_acc", "val_acc", "beta",
                  "n_finetune", "n_eval")
SOURCE_LABELS = {"random": "Random init", "imagenet": "ImageNet"}
FIRST_SOURCES = ("random", "imagenet")
NO_RECORD = "—"
TABLEFMT = "github"


# --------------------------------------------------------------------------- records -> frame

def _as_float(value) -> float:
    """A metric value as a float; None and non-numbers become NaN."""
    if value is None or isinstance(value, (str, bytes, list, dict)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def records_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per record: ``cell_id, status, reason``, the six axes, then every metric.

    The schema's metrics (``auc ... n_eval``) are always columns, followed by any other metric a
    record carries, in order of first appearance. A metric that a record lacks, or holds as None
    (``train_acc`` and ``beta`` without fine-tuning; everything for a failed cell), is NaN.

    Args:
        records: record dicts as written by the runner (see :mod:`bench.records`).

    Returns:
        A DataFrame in the order of ``records``; metric columns are float.
    """
    records = list(records)
    extra = [k for rec in records for k in (rec.get("metrics") or {}) if k not in RECORD_METRICS]
    metric_cols = [*RECORD_METRICS, *dict.fromkeys(extra)]
    rows = []
    for rec in records:
        cell = rec.get("cell") or {}
        metrics = rec.get("metrics") or {}
        rows.append({"cell_id": rec.get("cell_id"), "status": rec.get("status"), "reason": rec.get("reason"),
                     **{axis: cell.get(axis) for axis in AXES},
                     **{name: _as_float(metrics.get(name)) for name in metric_cols}})
    df = pd.DataFrame(rows, columns=["cell_id", "status", "reason", *AXES, *metric_cols])
    df[metric_cols] = df[metric_cols].astype(float)
    df["ft_fraction"] = pd.to_numeric(df["ft_fraction"], errors="coerce")
    return df


# --------------------------------------------------------------------------- cell text

def _format_mean_std(values: np.ndarray) -> str:
    text = f"{values.mean():.3f}"
    if len(values) >= 2:
        text += f" ± {values.std(ddof=1):.3f}"
    return text


def _cell_text(rows: pd.DataFrame, metric: str) -> str:
    """The text of one table cell from all of its records (one per seed); see the module docstring."""
    if rows.empty:
        return NO_RECORD
    ok = rows[rows["status"] == "ok"]
    values = ok[metric].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    counts = rows.loc[rows["status"] != "ok", "status"].value_counts()
    notes = [f"{counts[s]} {'NA' if s == 'na' else s}" for s in sorted(counts.index, key=lambda s: (s != "failed", s))]
    if len(ok) > len(values):
        notes.append(f"{len(ok) - len(values)} n/a")
    if len(values):
        return _format_mean_std(values) + (f" ({', '.join(notes)})" if notes else "")
    if len(counts) == 1 and len(ok) == 0:  # every seed has the same non-ok status
        return "NA" if counts.index[0] == "na" else str(counts.index[0])
    if len(counts) == 0:  # every seed finished, none has a value
        return "n/a"
    return ", ".join(notes)


def _undefined_column(rows: pd.DataFrame, metric: str) -> bool:
    """True when runs finished in this column but none has the metric and none failed (beta at No FT)."""
    ok = rows[rows["status"] == "ok"]
    return (len(ok) > 0 and not np.isfinite(ok[metric].to_numpy(dtype=float)).any()
            and not (rows["status"] == "failed").any())


# --------------------------------------------------------------------------- ordering and labels

def _unique(values: pd.Series) -> list:
    """Distinct non-null values in order of first appearance."""
    return list(pd.unique(values.dropna()))


def _source_order(sources: pd.Series) -> list:
    seen = _unique(sources)
    return [s for s in FIRST_SOURCES if s in seen] + [s for s in seen if s not in FIRST_SOURCES]


def _source_label(source: str) -> str:
    return SOURCE_LABELS.get(source, str(source))


def _fraction_label(fraction: float) -> str:
    if fraction == 0:
        return "No FT"
    return f"FT {fraction:g} patients" if fraction >= 1 else f"FT {fraction:g}"


def _fractions(df: pd.DataFrame, *, positive_only: bool = False) -> list[float]:
    values = sorted(set(df["ft_fraction"].dropna().tolist()))
    return [f for f in values if f > 0] if positive_only else values


def metric_caption(metric: str) -> str:
    """The metric's display name with ↑ (higher is better) or ↓ (lower is better) when known."""
    arrow = {True: " ↑", False: " ↓"}.get(HIGHER_IS_BETTER.get(metric), "")
    return METRIC_NAMES.get(metric, metric) + arrow


def _check_metric(df: pd.DataFrame, metric: str) -> None:
    names = [c for c in df.columns if c not in ("cell_id", "status", "reason", *AXES)]
    if metric not in names:
        hint = closest(metric, names)
        did_you_mean = f" Did you mean: {', '.join(map(repr, hint))}?" if hint else ""
        raise ValueError(f"unknown metric {metric!r}.{did_you_mean} Available: {', '.join(names)}.")


def _table(rows: list[list[str]], headers: list[str]) -> str:
    # disable_numparse: cells are already formatted text; tabulate must not turn "0.800" into "0.8".
    return tabulate(rows, headers=headers, tablefmt=TABLEFMT, disable_numparse=True)


# --------------------------------------------------------------------------- tables

def table_transfer(df: pd.DataFrame, target: str, *, metric: str = "auc", transfer: str = "full") -> str:
    """The paper's Table 1 layout for one target: backbone x source rows, one column per ft_fraction.

    Columns are "No FT" (``ft_fraction == 0``) and "FT <fraction>" for every other fraction found for
    this target and transfer mode, in increasing order. A column where every finished run lacks the
    metric and none failed (beta without fine-tuning) is left out.

    Args:
        df: output of :func:`records_frame` (may hold several targets and transfer modes).
        target: the target dataset to tabulate.
        metric: a metric column of ``df``.
        transfer: the transfer mode to tabulate ("full" or "hybrid").

    Returns:
        A GitHub-flavoured Markdown table, or a one-line note when there is nothing to show.

    Raises:
        ValueError: if ``metric`` is not a metric column of ``df``.
    """
    _check_metric(df, metric)
    sub = df[(df["target"] == target) & (df["transfer"] == transfer)]
    if sub.empty:
        return f"_No records for target {target!r} with transfer {transfer!r}._"
    fractions = [f for f in _fractions(sub) if not _undefined_column(sub[sub["ft_fraction"] == f], metric)]
    if not fractions:
        return f"_{METRIC_NAMES.get(metric, metric)} is undefined for every finished run of {target!r}._"
    sources = _source_order(df["source"])
    rows = []
    for backbone in _unique(sub["backbone"]):
        block = sub[sub["backbone"] == backbone]
        for i, source in enumerate(s for s in sources if s in set(block["source"])):
            cells = block[block["source"] == source]
            rows.append([backbone if i == 0 else "", _source_label(source),
                         *(_cell_text(cells[cells["ft_fraction"] == f], metric) for f in fractions)])
    return _table(rows, ["Backbone", "Pre-training", *map(_fraction_label, fractions)])


def table_all_vs_hybrid(df: pd.DataFrame, *, metric: str = "auc") -> str:
    """The paper's Table 4 layout: rows target x source, cells "<full> vs <hybrid>" per ft_fraction > 0.

    Each side is formatted like a :func:`table_transfer` cell, and compares records that agree on
    every axis but ``transfer``. Rows are the (target, backbone, source) combinations that have hybrid
    records. The paper compares one backbone; when the hybrid records span several, a "Backbone"
    column is added so that backbones are never averaged together.

    Args:
        df: output of :func:`records_frame`, with records of both transfer modes.
        metric: a metric column of ``df``.

    Returns:
        A GitHub-flavoured Markdown table.

    Raises:
        ValueError: if ``metric`` is unknown, or ``df`` lacks "full" or "hybrid" records.
    """
    _check_metric(df, metric)
    modes = set(df["transfer"].dropna())
    if not {"full", "hybrid"} <= modes:
        raise ValueError(f"table_all_vs_hybrid needs records of both transfer modes 'full' and 'hybrid'; "
                         f"got {sorted(modes)}. Add 'hybrid' to the suite's axes.transfer.")
    full, hybrid = df[df["transfer"] == "full"], df[df["transfer"] == "hybrid"]
    fractions = _fractions(df[df["transfer"].isin(["full", "hybrid"])], positive_only=True)
    backbones = _unique(hybrid["backbone"])
    by_backbone = len(backbones) > 1
    sources = _source_order(df["source"])
    rows = []
    for target in _unique(hybrid["target"]):
        first_of_target = True
        for backbone in backbones:
            block = hybrid[(hybrid["target"] == target) & (hybrid["backbone"] == backbone)]
            for j, source in enumerate(s for s in sources if s in set(block["source"])):
                hyb = block[block["source"] == source]
                ful = full[(full["target"] == target) & (full["backbone"] == backbone) & (full["source"] == source)]
                cells = [f"{_cell_text(ful[ful['ft_fraction'] == f], metric)} vs "
                         f"{_cell_text(hyb[hyb['ft_fraction'] == f], metric)}" for f in fractions]
                rows.append([target if first_of_target else "", *([backbone if j == 0 else ""] if by_backbone else []),
                             _source_label(source), *cells])
                first_of_target = False
    headers = ["Target", *(["Backbone"] if by_backbone else []), "Pre-training", *map(_fraction_label, fractions)]
    return _table(rows, headers)


# --------------------------------------------------------------------------- report

def _one_line(text: str | None, limit: int = 240) -> str:
    """A reason fit for one Markdown table cell: one line (a traceback's last line), no pipes, bounded."""
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    if not lines:
        return "(no reason recorded)"
    line = lines[-1] if lines[0].startswith("Traceback") else " ".join(lines)
    line = line.replace("|", "\\|")
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _how_to_read(df: pd.DataFrame) -> list[str]:
    lines = ["**How to read.** AUC is computed from per-image logit margins (logit₁ − logit₀) on each cell's "
             "evaluation images. A cell shows the mean over seeds, ± the sample standard deviation (ddof = 1) "
             "when two or more seeds have a value; \"(k failed)\" counts seeds left out of the mean. "
             "NA = not applicable (reasons below); failed = every seed failed (see *Failed cells*); "
             "n/a = the runs finished but the metric is undefined for them; — = no record."]
    na = df[df["status"] == "na"]
    if not na.empty:
        lines += ["", "NA reasons, as recorded:", ""]
        reasons = na["reason"].map(lambda r: _one_line(r, limit=400)).value_counts(sort=False)
        lines += [f"- {reason} ({n} cell{'s' if n != 1 else ''})" for reason, n in reasons.items()]
    return lines


def _counts_line(df: pd.DataFrame) -> str:
    counts = df["status"].value_counts()
    parts = [f"{counts.get('ok', 0)} ok", f"{counts.get('na', 0)} NA", f"{counts.get('failed', 0)} failed"]
    parts += [f"{n} {s}" for s, n in counts.items() if s not in ("ok", "na", "failed")]
    seeds = df["seed"].nunique()
    return f"**Cells:** {len(df)} records ({', '.join(parts)}) over {seeds} seed{'s' if seeds != 1 else ''}."


def _failed_section(df: pd.DataFrame) -> list[str]:
    failed = df[df["status"] == "failed"]
    if failed.empty:
        return []
    rows = [[f"`{r.cell_id}`", r.backbone, r.source, "" if pd.isna(r.ft_fraction) else f"{r.ft_fraction:g}",
             r.target, r.transfer, r.seed, _one_line(r.reason)] for r in failed.itertuples()]
    headers = ["Cell id", "Backbone", "Pre-training", "FT fraction", "Target", "Transfer", "Seed", "Reason"]
    return ["## Failed cells", "", _table([[str(v) for v in row] for row in rows], headers), ""]


def _hybrid_note(records: list[dict], df: pd.DataFrame, target: str) -> str:
    """Which stage hybrid transfer reuses weights up to, and for which backbone, from the records."""
    stages = sorted({str((rec.get("config") or {}).get("hybrid_stage")) for rec in records
                     if (rec.get("cell") or {}).get("transfer") == "hybrid"
                     and (rec.get("config") or {}).get("hybrid_stage")})
    backbones = _unique(df[(df["transfer"] == "hybrid") & (df["target"] == target)]["backbone"])
    note = "hybrid reuses pretrained weights up to " + (", ".join(stages) if stages else "a named stage")
    note += " and re-initialises the rest"
    return note + (f"; backbone {backbones[0]}" if len(backbones) == 1 else "")


def render_report(records: list[dict], *, suite: str) -> str:
    """The suite's Markdown report: per target, Table-1-style AUC, full-vs-hybrid, and beta tables.

    Args:
        records: the suite's records (see :mod:`bench.records`); their order sets backbone and target order.
        suite: suite name, used in the title.

    Returns:
        A Markdown document ending with a newline.
    """
    records = list(records)
    df = records_frame(records)
    lines = [f"# Suite `{suite}`: transfer-learning report", ""]
    if df.empty:
        return "\n".join([*lines, "_No records._", ""])
    lines += [*_how_to_read(df), "", _counts_line(df), ""]
    for target in _unique(df["target"]):
        lines += [f"## Target `{target}`", ""]
        lines += [f"**{metric_caption('auc')}** (transfer = full; rows: backbone × pre-training source, "
                  "columns: share of the target used for fine-tuning)", "", table_transfer(df, target), ""]
        if {"full", "hybrid"} <= set(df.loc[df["target"] == target, "transfer"].dropna()):
            lines += [f"**{metric_caption('auc')}: all weights vs hybrid** (full vs hybrid; "
                      f"{_hybrid_note(records, df, target)})", "",
                      table_all_vs_hybrid(df[df["target"] == target]), ""]
        lines += [f"**{metric_caption('beta')}** (Falconi et al., eq. 7; transfer = full; about 1 = no overfitting, "
                  "above 1 = overfitting; columns without fine-tuning are left out)", "",
                  table_transfer(df, target, metric="beta"), ""]
    lines += _failed_section(df)
    return "\n".join(lines).rstrip() + "\n"
