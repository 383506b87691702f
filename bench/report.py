"""The report of a suite, rendered only from its records: Markdown, LaTeX and the SVCCA figure.

Nothing here trains, predicts or re-scores: every number is read from a record's ``metrics`` or recomputed from its
stored ``predictions`` by :mod:`bench.analysis` (intervals, DeLong tests), and aggregated over seeds. The tables
follow the layout of Bulathsinghalage & Liu, "Transfer learning pre-training dataset effect analysis for breast
cancer imaging":

- :func:`table_transfer` is their Tables 1-3: one target, rows backbone x pre-training source, columns "No FT",
  "FT 0.1", "FT 0.2", ...
- :func:`table_all_vs_hybrid` is their Table 4: rows target x source, cells "full vs hybrid".
- :func:`table_svcca` is their Figure 1 as a table (rows target x reference, columns conv1 .. block4), and
  :func:`svcca_figure` the figure itself.
- a suite that names its paper (``reference:``) also gets the paper's published values beside ours, one table per
  table of the paper (:mod:`bench.report_paper`); a synthetic twin says that it reproduces no published number.

Cell text (one table cell = every seed of one backbone x source x ft_fraction x target x transfer):

- ``0.812 ± 0.031``: mean over the seeds that finished with a value, ± the half-width of its 95 % interval (the
  rule, from :mod:`bench.analysis.intervals`, is printed under each table: t over seeds with two or more seeds, the
  patient bootstrap of the AUC with one; no "±" when there is no interval);
- ``0.507 (0.000–1.000)``: the same, when mean ± half-width would leave what the metric can take ([0, 1]; β ≥ 0):
  the interval's bounds, cut at that range, in brackets instead of the "±";
- ``0.812 ± 0.031 †``: the cell differs significantly from the reference row of the same column (random
  initialisation; in the full-vs-hybrid table, the full transfer), by :mod:`bench.analysis.paired`;
- ``1.31 ‡`` in the beta table: Falconi's flag, training accuracy more than 10 points above evaluation accuracy;
- ``0.812 (1 failed)``: seeds that did not give a value are counted in brackets;
- ``NA``: every seed is status ``na`` (not applicable; the reason is stated in the report);
- ``failed``: every seed failed; ``n/a``: every seed finished but the metric is undefined for it
  (e.g. beta without fine-tuning, AUC on a one-class evaluation set); ``—``: no record at all.

Under a table, when they apply: a *few seeds* note for cells whose t interval rests on two seeds, with each of
their seeds' patient-bootstrap AUC interval (:func:`bench.analysis.intervals.seed_bootstraps`), and one sentence
when ± and † disagree in that table (overlapping intervals with †, or separate ones without).

Row order: backbones and targets in order of first appearance in the records (pass records in suite-expansion order
to get the suite's order); sources ``random`` first, ``imagenet`` second, then the others in order of first
appearance.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench.analysis.intervals import (
    CELL_KEYS,
    FEW_SEEDS,
    cell_intervals,
    metric_range,
    seed_bootstraps,
    seed_intervals,
)
from bench.analysis.metrics import FALCONI_GAP
from bench.analysis.paired import paired_tests
from bench.registry import closest
from bench.report_checks import (
    DEGENERATE,
    PARTIAL,
    UNCALIBRATED,
    environment_line,
    flagged_rows,
    marks_note,
    record_check,
    table_marks,
)
from bench.report_gain import gain_blocks
from bench.report_table import (  # noqa: F401  (some are re-exported: bench.report's names of before)
    BOOTSTRAP_SEED,
    CONFIDENCE,
    FIRST_SOURCES,
    N_RESAMPLES,
    NO_RECORD,
    SOURCE_LABELS,
    TABLEFMT,
    _bare_backbones,
    _format_value,
    _fraction_label,
    _leaves_range,
    _source_label,
    _source_order,
    _Table,
    _unique,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "metric_caption",
    "mode_tests",
    "predictions_frame",
    "records_frame",
    "render_report",
    "render_report_latex",
    "svcca_figure",
    "svcca_frame",
    "table_all_vs_hybrid",
    "table_svcca",
    "table_train_modes",
    "table_transfer",
    "write_report",
]

HIGHER_IS_BETTER: dict[str, bool] = {
    "auc": True,
    "accuracy": True,
    "f1": True,
    "sensitivity": True,
    "specificity": True,
    "train_acc": True,
    "val_acc": True,
    "beta": False,  # train_acc / val_acc: about 1 is no overfitting, above 1 is overfitting
    "svcca": True,  # similarity before vs after fine-tuning; higher = fine-tuning changed the layer less
    "pwcca": True,
    "cka": True,
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
    "svcca": "SVCCA similarity",
    "pwcca": "PWCCA similarity",
    "cka": "Linear CKA",
}

AXES = ("backbone", "source", "ft_fraction", "target", "transfer", "train_mode", "seed")
RECORD_METRICS = ("auc", "accuracy", "f1", "sensitivity", "specificity", "train_acc", "running_train_acc", "val_acc",
                  "beta", "n_finetune", "n_eval")
CHECK_COLUMNS = ("flags", "uncalibrated", "partial_weights", "auc_low", "auc_high")  # bench.report_checks.record_check
SIGNIFICANT = "†"
OVERFIT = "‡"
ALPHA = 0.05
SVCCA_LAYERS = ("conv1", "block1", "block2", "block3", "block4")
SVCCA_REFERENCES = {"finetuned": "fine-tuned (B)", "bn_only": "BN-only reference (B′)"}


# --------------------------------------------------------------------------- records -> frames

def _as_float(value) -> float:
    """A metric value as a float; None and non-numbers become NaN."""
    if value is None or isinstance(value, (str, bytes, list, dict)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def records_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per record: ``cell_id, status, reason``, the seven axes, then every metric.

    When the records hold more than one train mode, ``backbone`` becomes ``"<backbone> [<train_mode>]"``, so
    every table gets one row per backbone and train mode and compares cells of the same mode only
    (``train_mode`` keeps the bare name; records from before the axis count as ``"default"``).

    The schema's metrics (``auc ... n_eval``) are always columns, followed by any other metric a
    record carries, in order of first appearance. A metric that a record lacks, or holds as None
    (``train_acc`` and ``beta`` without fine-tuning; everything for a failed cell), is NaN; records written
    before ``running_train_acc`` was stored get it from their history. Last come the checks of
    :func:`bench.report_checks.record_check`: ``flags`` (degenerate-cell flags, comma-joined), ``uncalibrated``,
    ``auc_low``, ``auc_high`` (the DeLong interval behind the flag).

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
        check = record_check(rec)
        metrics = {"running_train_acc": check.pop("running_train_acc"), **metrics}
        rows.append({"cell_id": rec.get("cell_id"), "status": rec.get("status"), "reason": rec.get("reason"),
                     **{axis: cell.get(axis) for axis in AXES},
                     **{name: _as_float(metrics.get(name)) for name in metric_cols}, **check})
    df = pd.DataFrame(rows, columns=["cell_id", "status", "reason", *AXES, *metric_cols, *CHECK_COLUMNS])
    df["flags"] = df["flags"].fillna("").astype(str)
    df["uncalibrated"] = df["uncalibrated"].fillna(False).astype(bool)
    df["partial_weights"] = df["partial_weights"].fillna(False).astype(bool)
    df[metric_cols] = df[metric_cols].astype(float)
    df["ft_fraction"] = pd.to_numeric(df["ft_fraction"], errors="coerce")
    df["train_mode"] = df["train_mode"].fillna("default")
    if df["train_mode"].nunique() > 1:
        df["backbone"] = df["backbone"].astype(str) + " [" + df["train_mode"].astype(str) + "]"
    return df


def predictions_frame(records: Iterable[dict]) -> pd.DataFrame:
    """Every stored per-image prediction of the ok records, long form.

    Returns:
        Columns ``cell_id, image_id, patient_id, label, score, group``; ``group`` is what the patient bootstrap
        resamples: the record's ``group_id`` when stored, else the patient id, else the image id.
    """
    parts = []
    for rec in records:
        p = rec.get("predictions") or {}
        if rec.get("status") != "ok" or not p.get("label"):
            continue
        n = len(p["label"])
        patients = p.get("patient_id")
        part = pd.DataFrame({"cell_id": rec.get("cell_id"), "image_id": p.get("image_id") or list(range(n)),
                             "patient_id": patients if patients is not None else [None] * n,
                             "label": p["label"], "score": p["score"]})
        if p.get("group_id") is not None:  # the split/bootstrap group recorded by the cell
            part["group"] = pd.Series(p["group_id"]).astype(str).to_numpy()
        else:
            part["group"] = part["patient_id"].where(part["patient_id"].notna(), part["image_id"]).astype(str)
        parts.append(part)
    columns = ["cell_id", "image_id", "patient_id", "label", "score", "group"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def svcca_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per ok SVCCA record x layer x reference (fine-tuned, BN-only) with its similarity scores.

    Returns:
        Columns ``analysis_id, backbone, source, target, seed, reference, layer, module, neurons, datapoints``
        and one column per similarity measure found (``svcca``, ``pwcca``, ``cka``).
    """
    rows = []
    for rec in records:
        if rec.get("status") != "ok":
            continue
        job = rec.get("job") or {}
        for layer in rec.get("layers") or []:
            for ref in SVCCA_REFERENCES:
                scores = layer.get(ref)
                if scores is None:
                    continue
                rows.append({"analysis_id": rec.get("analysis_id"), **{k: job.get(k) for k in
                                                                       ("backbone", "source", "target", "seed")},
                             "reference": ref, "layer": layer.get("layer"), "module": layer.get("module"),
                             "neurons": layer.get("neurons"), "datapoints": layer.get("datapoints"),
                             **{k: _as_float(v) for k, v in scores.items()}})
    columns = ["analysis_id", "backbone", "source", "target", "seed", "reference", "layer", "module", "neurons",
               "datapoints"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=[*columns, "svcca"])


# --------------------------------------------------------------------------- cell text

def _t_interval(values: np.ndarray, metric: str) -> dict | None:
    """The t interval over seeds of ``values``, cut at the metric's range; None with fewer than two values."""
    if len(values) < 2:
        return None
    return seed_intervals(pd.DataFrame({"k": 0, "v": values}), "v", keys=["k"], confidence=CONFIDENCE,
                          value_range=metric_range(metric)).iloc[0].to_dict()


def _cell_text(rows: pd.DataFrame, metric: str, *, interval: dict | None = None, mark: str = "") -> str:
    """The text of one table cell from all of its records (one per seed); see the module docstring.

    ``interval`` is the cell's row of :func:`cell_intervals` (``half_width``, ``low``, ``high``); without it the t
    interval over seeds is used.
    """
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
        iv = interval if interval is not None else _t_interval(values, metric)
        number = (_format_value(values.mean()) if iv is None else
                  _format_value(values.mean(), iv["half_width"], low=iv["low"], high=iv["high"],
                                value_range=metric_range(metric)))
        return (number + (f" {mark}" if mark else "")
                + (f" ({', '.join(notes)})" if notes else ""))
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


# --------------------------------------------------------------------------- table model

def _interval_lookup(intervals: pd.DataFrame | None) -> dict[tuple, dict]:
    """(cell keys) -> the cell's interval row (``half_width``, ``low``, ``high``, ...)."""
    if intervals is None or intervals.empty:
        return {}
    return {tuple(r[k] for k in CELL_KEYS): r.to_dict() for _, r in intervals.iterrows()}


def _marks(tests: pd.DataFrame | None, axis: str) -> dict[tuple, str]:
    """(cell keys) -> mark, for the significant comparisons of a :func:`paired_tests` result."""
    if tests is None or tests.empty:
        return {}
    return {tuple(r[k] for k in CELL_KEYS): SIGNIFICANT for _, r in tests[tests["significant"]].iterrows()}


def _transfer_table(df: pd.DataFrame, target: str, metric: str, transfer: str, *,
                    intervals: pd.DataFrame | None = None, tests: pd.DataFrame | None = None,
                    flags: set | None = None, checks: dict | None = None) -> _Table | str:
    _check_metric(df, metric)
    sub = df[(df["target"] == target) & (df["transfer"] == transfer)]
    if sub.empty:
        return f"_No records for target {target!r} with transfer {transfer!r}._"
    fractions = [f for f in _fractions(sub) if not _undefined_column(sub[sub["ft_fraction"] == f], metric)]
    if not fractions:
        return f"_{METRIC_NAMES.get(metric, metric)} is undefined for every finished run of {target!r}._"
    lookup, marks, flags = _interval_lookup(intervals), _marks(tests, "source"), flags or set()
    sources = _source_order(df["source"])
    rows = []
    for backbone in _unique(sub["backbone"]):
        block = sub[sub["backbone"] == backbone]
        for i, source in enumerate(s for s in sources if s in set(block["source"])):
            cells = block[block["source"] == source]
            texts = []
            for f in fractions:
                key = (backbone, source, f, target, transfer)
                mark = marks.get(key, "") + (OVERFIT if key in flags else "") + (checks or {}).get(key, "")
                texts.append(_cell_text(cells[cells["ft_fraction"] == f], metric, interval=lookup.get(key),
                                        mark=mark))
            rows.append([backbone if i == 0 else "", _source_label(source), *texts])
    return _Table(["Backbone", "Pre-training", *map(_fraction_label, fractions)], rows)


def _render(table: _Table | str) -> str:
    return table if isinstance(table, str) else table.markdown()


def table_transfer(df: pd.DataFrame, target: str, *, metric: str = "auc", transfer: str = "full",
                   intervals: pd.DataFrame | None = None, tests: pd.DataFrame | None = None) -> str:
    """The paper's Table 1 layout for one target: backbone x source rows, one column per ft_fraction.

    Columns are "No FT" (``ft_fraction == 0``) and "FT <fraction>" for every other fraction found for
    this target and transfer mode, in increasing order. A column where every finished run lacks the
    metric and none failed (beta without fine-tuning) is left out.

    Args:
        df: output of :func:`records_frame` (may hold several targets and transfer modes).
        target: the target dataset to tabulate.
        metric: a metric column of ``df``.
        transfer: the transfer mode to tabulate ("full" or "hybrid").
        intervals: :func:`bench.analysis.intervals.cell_intervals` of ``df``; the "±" shows its half-widths.
            Without it the t half-width over seeds is shown (nothing for one seed).
        tests: :func:`bench.analysis.paired.paired_tests` along ``source``; significant cells get "†".

    Returns:
        A GitHub-flavoured Markdown table, or a one-line note when there is nothing to show.

    Raises:
        ValueError: if ``metric`` is not a metric column of ``df``.
    """
    return _render(_transfer_table(df, target, metric, transfer, intervals=intervals, tests=tests))


def _hybrid_table(df: pd.DataFrame, metric: str, *, intervals: pd.DataFrame | None = None,
                  tests: pd.DataFrame | None = None, checks: dict | None = None) -> _Table:
    _check_metric(df, metric)
    modes = set(df["transfer"].dropna())
    if not {"full", "hybrid"} <= modes:
        raise ValueError(f"table_all_vs_hybrid needs records of both transfer modes 'full' and 'hybrid'; "
                         f"got {sorted(modes)}. Add 'hybrid' to the suite's axes.transfer.")
    lookup, marks = _interval_lookup(intervals), _marks(tests, "transfer")
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
                cells = []
                for f in fractions:
                    kf, kh = (backbone, source, f, target, "full"), (backbone, source, f, target, "hybrid")
                    checks = checks or {}
                    full_text = _cell_text(ful[ful["ft_fraction"] == f], metric, interval=lookup.get(kf),
                                           mark=checks.get(kf, ""))
                    hybrid_text = _cell_text(hyb[hyb["ft_fraction"] == f], metric, interval=lookup.get(kh),
                                             mark=marks.get(kh, "") + checks.get(kh, ""))
                    cells.append(f"{full_text} vs {hybrid_text}")
                rows.append([target if first_of_target else "", *([backbone if j == 0 else ""] if by_backbone else []),
                             _source_label(source), *cells])
                first_of_target = False
    headers = ["Target", *(["Backbone"] if by_backbone else []), "Pre-training", *map(_fraction_label, fractions)]
    return _Table(headers, rows)


def table_all_vs_hybrid(df: pd.DataFrame, *, metric: str = "auc", intervals: pd.DataFrame | None = None,
                        tests: pd.DataFrame | None = None) -> str:
    """The paper's Table 4 layout: rows target x source, cells "<full> vs <hybrid>" per ft_fraction > 0.

    Each side is formatted like a :func:`table_transfer` cell, and compares records that agree on
    every axis but ``transfer``. Rows are the (target, backbone, source) combinations that have hybrid
    records. The paper compares one backbone; when the hybrid records span several, a "Backbone"
    column is added so that backbones are never averaged together.

    Args:
        df: output of :func:`records_frame`, with records of both transfer modes.
        metric: a metric column of ``df``.
        intervals: as in :func:`table_transfer`.
        tests: :func:`bench.analysis.paired.paired_tests` along ``transfer`` against ``"full"``; a hybrid side
            that differs significantly from its full side gets "†".

    Returns:
        A GitHub-flavoured Markdown table.

    Raises:
        ValueError: if ``metric`` is unknown, or ``df`` lacks "full" or "hybrid" records.
    """
    return _hybrid_table(df, metric, intervals=intervals, tests=tests).markdown()


MODE_KEYS = ["backbone", "source", "ft_fraction", "target", "transfer"]


def _fine_tuned_modes(df: pd.DataFrame, target: str) -> tuple[pd.DataFrame, list]:
    """Fine-tuned full-transfer rows of ``target`` with bare backbone names, and their train modes in order."""
    sub = _bare_backbones(df[(df["target"] == target) & (df["transfer"] == "full") & (df["ft_fraction"] > 0)])
    return sub, _unique(sub["train_mode"])


def mode_tests(df: pd.DataFrame, predictions: pd.DataFrame, target: str, *, alpha: float = 0.05) -> pd.DataFrame:
    """Paired tests of every train mode against the suite's first listed mode, fine-tuned full-transfer cells
    of ``target`` (same backbone, source, fraction and seed: the same evaluation images)."""
    sub, modes = _fine_tuned_modes(df, target)
    if len(modes) < 2:
        return pd.DataFrame()
    return paired_tests(sub, predictions, axis="train_mode", reference=modes[0], keys=MODE_KEYS, alpha=alpha)


def _modes_table(df: pd.DataFrame, target: str, metric: str, *, intervals: pd.DataFrame | None = None,
                 tests: pd.DataFrame | None = None) -> _Table | str:
    _check_metric(df, metric)
    sub, modes = _fine_tuned_modes(df, target)
    if len(modes) < 2:
        return f"_One train mode for target {target!r}: nothing to compare._"
    lookup = _interval_lookup(intervals)
    marks = {}
    if tests is not None and not tests.empty:
        marks = {(*(getattr(r, k) for k in MODE_KEYS), r.train_mode): SIGNIFICANT
                 for r in tests[tests["significant"]].itertuples()}
    fractions = _fractions(sub, positive_only=True)
    rows = []
    for backbone in _unique(sub["backbone"]):
        block = sub[sub["backbone"] == backbone]
        for i, source in enumerate(s for s in _source_order(df["source"]) if s in set(block["source"])):
            here = block[block["source"] == source]
            for j, mode in enumerate(m for m in modes if m in set(here["train_mode"])):
                cells = here[here["train_mode"] == mode]
                texts = [_cell_text(cells[cells["ft_fraction"] == f], metric,
                                    interval=lookup.get((f"{backbone} [{mode}]", source, f, target, "full")),
                                    mark=marks.get((backbone, source, f, target, "full", mode), ""))
                         for f in fractions]
                rows.append([backbone if i == 0 and j == 0 else "", _source_label(source) if j == 0 else "",
                             mode, *texts])
    return _Table(["Backbone", "Pre-training", "Train mode", *map(_fraction_label, fractions)], rows)


def table_train_modes(df: pd.DataFrame, target: str, *, metric: str = "auc", intervals: pd.DataFrame | None = None,
                      tests: pd.DataFrame | None = None) -> str:
    """Train modes side by side for one target (e.g. Falconi's TL vs FT): rows backbone x source x mode,
    one column per fine-tune fraction > 0, full transfer. A mode's cell gets "†" when :func:`mode_tests`
    finds it differs from the first listed mode's cell in the same row block and column.

    Returns:
        A GitHub-flavoured Markdown table, or a one-line note when the records hold one train mode only.
    """
    return _render(_modes_table(df, target, metric, intervals=intervals, tests=tests))


def _svcca_table(frame: pd.DataFrame, measure: str = "svcca") -> _Table | str:
    if frame.empty or measure not in frame.columns:
        return "_No SVCCA records._"
    layers = [layer for layer in SVCCA_LAYERS if layer in set(frame["layer"])]
    layers += [layer for layer in _unique(frame["layer"]) if layer not in layers]
    keys = ["backbone", "source", "target", "reference", "layer"]
    summary = seed_intervals(frame, measure, keys=keys, confidence=CONFIDENCE)
    lookup = {tuple(r[k] for k in keys): r for _, r in summary.iterrows()}
    combos = frame[["backbone", "source"]].drop_duplicates().itertuples(index=False)
    combos = list(combos)
    many = len(combos) > 1
    rows = []
    for backbone, source in combos:
        for target in _unique(frame.loc[(frame["backbone"] == backbone) & (frame["source"] == source), "target"]):
            first = True
            for ref, ref_label in SVCCA_REFERENCES.items():
                texts = []
                for layer in layers:
                    r = lookup.get((backbone, source, target, ref, layer))
                    texts.append(NO_RECORD if r is None or not math.isfinite(r["mean"]) else
                                 _format_value(r["mean"], r["half_width"], low=r["low"], high=r["high"],
                                               value_range=metric_range(measure)))
                if all(t == NO_RECORD for t in texts):
                    continue
                rows.append([*([f"{backbone} / {source}"] if many else []), target if first else "",
                             ref_label, *texts])
                first = False
    return _Table([*(["Network A"] if many else []), "Target", "Network", *layers], rows)


def table_svcca(frame: pd.DataFrame, *, measure: str = "svcca") -> str:
    """Per-layer similarity of network A (source-pretrained) with B (fine-tuned) and B' (BN-only reference).

    Args:
        frame: output of :func:`svcca_frame`.
        measure: ``"svcca"``, ``"pwcca"`` or ``"cka"``.

    Returns:
        A Markdown table: rows target x network (B, B'), columns conv1 .. block4, cells mean over seeds ± the
        half-width of the t interval (no "±" with one seed).
    """
    return _render(_svcca_table(frame, measure))


def svcca_figure(frame: pd.DataFrame, path: str | Path, *, measure: str = "svcca") -> Path:
    """The paper's Figure 1: per-layer similarity, one line per target, error bars = 95 % t interval over seeds
    (cut at [0, 1]).

    Solid lines are network B (fine-tuned on the 20 %), dashed lines the BN-only reference B'. With several
    (backbone, source) pairs there is one panel per pair. Written with seaborn (Agg backend) to ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from bench.analysis.stats import seed_summary

    def t_interval(values) -> tuple[float, float]:
        s = seed_summary(np.asarray(values, dtype=float), confidence=CONFIDENCE, value_range=metric_range(measure))
        return (s["low"], s["high"]) if s["n"] >= 2 else (s["mean"], s["mean"])

    data = frame[np.isfinite(frame[measure].to_numpy(dtype=float))].copy()
    order = [layer for layer in SVCCA_LAYERS if layer in set(data["layer"])]
    data["layer"] = pd.Categorical(data["layer"], categories=order, ordered=True)
    data["network"] = data["reference"].map(SVCCA_REFERENCES)
    data["panel"] = data["backbone"].astype(str) + " pre-trained on " + data["source"].astype(str)
    sns.set_theme(style="whitegrid")
    grid = sns.relplot(data=data, x="layer", y=measure, hue="target", style="network", col="panel", kind="line",
                       markers=True, dashes={SVCCA_REFERENCES["finetuned"]: "", SVCCA_REFERENCES["bn_only"]: (4, 2)},
                       errorbar=t_interval, err_style="bars", height=3.6, aspect=1.3,
                       facet_kws={"sharey": True})
    grid.set_axis_labels("layer", METRIC_NAMES.get(measure, measure) + " (A vs B)")
    grid.set_titles("{col_name}")
    for ax in grid.axes.flat:
        ax.set_ylim(0, 1.02)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.savefig(path, dpi=120)
    plt.close(grid.figure)
    return path


# --------------------------------------------------------------------------- report blocks

def _one_line(text: str | None, limit: int = 240) -> str:
    """A reason fit for one Markdown table cell: one line (a traceback's last line), no pipes, bounded."""
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    if not lines:
        return "(no reason recorded)"
    line = lines[-1] if lines[0].startswith("Traceback") else " ".join(lines)
    line = line.replace("|", "\\|")
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _how_to_read(df: pd.DataFrame) -> list:
    blocks: list = [("p", ("**How to read.** AUC is computed from per-image logit margins (logit₁ − logit₀) on each "
                          "cell's evaluation images. A cell shows the mean over seeds ± the half-width of its 95 % "
                          "interval (the rule is stated under each table), or the mean and the interval's bounds, as "
                          "0.507 (0.000–1.000), where the ± would reach past what the metric can take ([0, 1]; β ≥ 0); "
                          "\"(k failed)\" counts seeds left out of "
                          "the mean. NA = not applicable (reasons below); failed = every seed failed (see *Failed "
                          "cells*); n/a = the runs finished but the metric is undefined for them; — = no record. "
                          f"{DEGENERATE} = a seed of the cell is degenerate (one class at the threshold, AUC interval "
                          "below 0.5, or eval-mode train accuracy far below the running one; see *Flagged cells*); "
                          f"{UNCALIBRATED} = a network of the cell was scored with the BatchNorm statistics training "
                          "left instead of statistics re-estimated for its final weights. "
                          "Every number is recomputed from the stored records and predictions: nothing is "
                          "retrained."))]
    na = df[df["status"] == "na"]
    if not na.empty:
        reasons = na["reason"].map(lambda r: _one_line(r, limit=400)).value_counts(sort=False)
        blocks += [("p", "NA reasons, as recorded:"),
                   ("list", [f"{reason} ({n} cell{'s' if n != 1 else ''})" for reason, n in reasons.items()])]
    return blocks


def _counts_line(df: pd.DataFrame) -> str:
    counts = df["status"].value_counts()
    parts = [f"{counts.get('ok', 0)} ok", f"{counts.get('na', 0)} NA", f"{counts.get('failed', 0)} failed"]
    parts += [f"{n} {s}" for s, n in counts.items() if s not in ("ok", "na", "failed")]
    seeds = df["seed"].nunique()
    return f"**Cells:** {len(df)} records ({', '.join(parts)}) over {seeds} seed{'s' if seeds != 1 else ''}."


def _sens_spec_blocks(sub: pd.DataFrame, target: str) -> list:
    """Sensitivity / specificity at the decision threshold beside the AUC table (means over seeds)."""
    ok = sub[sub["status"] == "ok"]
    if ok.empty:
        return []
    rows, fractions = [], _fractions(ok)
    for backbone in _unique(ok["backbone"]):
        block = ok[ok["backbone"] == backbone]
        for i, source in enumerate(s for s in _source_order(sub["source"]) if s in set(block["source"])):
            texts = []
            for f in fractions:
                cell = block[(block["source"] == source) & (block["ft_fraction"] == f)]
                texts.append(NO_RECORD if cell.empty else
                             f"{cell['sensitivity'].mean():.2f} / {cell['specificity'].mean():.2f}")
            rows.append([backbone if i == 0 else "", _source_label(source), *texts])
    table = _Table(["Backbone", "Pre-training", *map(_fraction_label, fractions)], rows,
                   [f"Means over seeds; a 0.00 on either side means the network recognises no image of that class "
                    f"({DEGENERATE} one class)."])
    return [("p", f"**Sensitivity / specificity** on `{target}` at the decision threshold (logit margin 0; transfer "
                  "= full)"), ("table", table)]


def _flagged_section(df: pd.DataFrame) -> list:
    from bench.analysis.degenerate import FLAGS

    headers, rows = flagged_rows(df)
    intro = ("A flagged number may describe a broken network rather than an effect of pre-training; look at "
             "the seed's predictions before reading it. The flags:")
    blocks: list = [("h2", "Flagged cells"), ("p", intro), ("list", list(FLAGS.values()))]
    if not rows:
        return [*blocks, ("p", "_No seed of any cell is flagged._")]
    return [*blocks, ("table", _Table(headers, rows))]


def _failed_section(df: pd.DataFrame) -> list:
    failed = df[df["status"] == "failed"]
    if failed.empty:
        return []
    rows = [[f"`{r.cell_id}`", r.backbone, r.source, "" if pd.isna(r.ft_fraction) else f"{r.ft_fraction:g}",
             r.target, r.transfer, r.seed, _one_line(r.reason)] for r in failed.itertuples()]
    headers = ["Cell id", "Backbone", "Pre-training", "FT fraction", "Target", "Transfer", "Seed", "Reason"]
    return [("h2", "Failed cells"), ("table", _Table(headers, [[str(v) for v in row] for row in rows]))]


def _hybrid_note(records: list[dict], df: pd.DataFrame, target: str) -> str:
    """Which stage hybrid transfer reuses weights up to, and for which backbone, from the records."""
    stages = sorted({str((rec.get("config") or {}).get("hybrid_stage")) for rec in records
                     if (rec.get("cell") or {}).get("transfer") == "hybrid"
                     and (rec.get("config") or {}).get("hybrid_stage")})
    backbones = _unique(df[(df["transfer"] == "hybrid") & (df["target"] == target)]["backbone"])
    note = "hybrid reuses pretrained weights up to " + (", ".join(stages) if stages else "a named stage")
    note += " and re-initialises the rest"
    return note + (f"; backbone {backbones[0]}" if len(backbones) == 1 else "")


def _interval_rule(intervals: pd.DataFrame, metric: str) -> str:
    methods = set(intervals["method"]) if not intervals.empty else set()
    parts = []
    if "t" in methods:
        parts.append("with ≥ 2 seeds, the t interval of the mean over seeds (t(0.975, n − 1) · s / √n)")
    if "bootstrap" in methods:
        parts.append(f"with 1 seed, the percentile interval of {N_RESAMPLES:,} bootstrap resamples of the cell's "
                     f"evaluation patients (not images; seed {BOOTSTRAP_SEED}), shown as (high − low) / 2")
    if "single" in methods:
        parts.append(f"no interval for a single seed{' without stored predictions' if metric == 'auc' else ''}")
    text = "Interval: ± = half-width of the 95 % interval; " + ("; ".join(parts) if parts else "none") + "."
    value_range = metric_range(metric)
    if any(_leaves_range(r.mean, r.half_width, value_range) for r in intervals.itertuples()):
        text += (f" Where mean ± half-width would reach past {_range_text(metric)}, the cell shows the interval's "
                 "bounds instead, cut at that range: mean (low–high).")
    return text


def _range_text(metric: str) -> str:
    """What ``metric`` can take, in words: "what AUC can take ([0, 1])"."""
    low, high = metric_range(metric)
    name = "β" if metric == "beta" else METRIC_NAMES.get(metric, metric)
    return f"what {name} can take (" + (f"[{low:g}, {high:g}]" if math.isfinite(high) else f"≥ {low:g}") + ")"


def _cell_label(key: tuple, with_transfer: bool = False) -> str:
    """A table cell in words: backbone, source, column (and transfer mode), from its :data:`CELL_KEYS` values."""
    cell = dict(zip(CELL_KEYS, key))
    return (f"{cell['backbone']}, {_source_label(cell['source'])}, {_fraction_label(cell['ft_fraction'])}"
            + (f", {cell['transfer']}" if with_transfer else ""))


def _few_seeds_notes(intervals: pd.DataFrame, bootstraps: pd.DataFrame | None = None, *,
                     with_transfer: bool = False) -> list[str]:
    """Under a table whose t intervals rest on fewer than :data:`FEW_SEEDS` seeds: say so, and with ``bootstraps``
    (:func:`seed_bootstraps`, AUC only) list each of those cells' seeds with its own patient-bootstrap interval."""
    if intervals.empty:
        return []
    few = intervals[(intervals["method"] == "t") & (intervals["n"] < FEW_SEEDS)]
    if few.empty:
        return []
    parts = []
    for n, count in few["n"].value_counts(sort=False).sort_index().items():
        t = float(sps.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
        parts.append(f"{count} cell{'s' if count != 1 else ''} of this table {'have' if count != 1 else 'has'} only "
                     f"{n} seeds, and a t interval from {n} runs is t({0.5 + CONFIDENCE / 2:g}, {n - 1}) · s / √{n} = "
                     f"{t:.1f} · s / √{n} on each side of the mean: it says little")
    lines = ["Few seeds: " + "; ".join(parts) + "."]
    if bootstraps is None or bootstraps.empty:
        return lines
    shown = {tuple(r[k] for k in CELL_KEYS) for _, r in few.iterrows()}
    per_cell: dict[tuple, list[str]] = {}
    for _, r in bootstraps.iterrows():
        key = tuple(r[k] for k in CELL_KEYS)
        if key in shown:
            per_cell.setdefault(key, []).append(f"seed {r['seed']}: {r['auc']:.3f} ({r['low']:.3f}–{r['high']:.3f})")
    if not per_cell:
        return lines
    lines[0] += (f" Beside the t interval, each training seed's own AUC with its {CONFIDENCE * 100:g} % interval from "
                 f"{N_RESAMPLES:,} bootstrap resamples of its evaluation patients (resampling seed {BOOTSTRAP_SEED}), "
                 "which measures the evaluation sample only, not how much a result moves between runs:")
    lines += [f"{_cell_label(key, with_transfer)}: {'; '.join(texts)}." for key, texts in per_cell.items()]
    return lines


def _test_pairs(tests: pd.DataFrame, axis: str, reference, backbone_of=None) -> list[tuple[tuple, tuple, bool]]:
    """(cell keys, reference cell keys, significant) of every tested comparison of a :func:`paired_tests` result.

    ``axis`` is a :data:`CELL_KEYS` axis, or ``"train_mode"`` with ``backbone_of(backbone, mode)`` giving the
    backbone name the intervals use.
    """
    if tests is None or tests.empty:
        return []
    pairs = []
    for _, r in tests[tests["n_seeds"] > 0].iterrows():
        cell = {k: r[k] for k in CELL_KEYS if k != axis}
        if axis in CELL_KEYS:
            key = tuple({**cell, axis: r[axis]}[k] for k in CELL_KEYS)
            ref = tuple({**cell, axis: reference}[k] for k in CELL_KEYS)
        else:
            key = tuple({**cell, "backbone": backbone_of(r["backbone"], r[axis])}[k] for k in CELL_KEYS)
            ref = tuple({**cell, "backbone": backbone_of(r["backbone"], reference)}[k] for k in CELL_KEYS)
        pairs.append((key, ref, bool(r["significant"])))
    return pairs


def _disagreement_notes(pairs: list[tuple[tuple, tuple, bool]], intervals: pd.DataFrame, reference_label: str,
                        n_comparisons: int) -> list[str]:
    """One sentence for each way ± and † disagree in a table, only when they do: † with overlapping intervals, or
    no † with intervals apart. The wording follows the intervals involved (t over seeds, patient bootstrap)."""
    lookup = _interval_lookup(intervals)
    overlap_sig, apart_not_sig = [], []
    for key, ref, significant in pairs:
        a, b = lookup.get(key), lookup.get(ref)
        if a is None or b is None or not all(map(math.isfinite, (a["low"], a["high"], b["low"], b["high"]))):
            continue
        overlap = a["low"] <= b["high"] and b["low"] <= a["high"]
        if significant == overlap:
            (overlap_sig if significant else apart_not_sig).append({a["method"], b["method"]})
    lines = []
    if overlap_sig:
        methods = set().union(*overlap_sig)
        spread = ("the spread of each cell on its own across seeds" if methods == {"t"} else
                  "each cell's own patient-bootstrap interval" if methods == {"bootstrap"} else
                  "each cell's own interval (its spread across seeds, or with one seed its patient bootstrap)")
        k = len(overlap_sig)
        lines.append(f"± and {SIGNIFICANT} disagree for {k} cell{'s' if k != 1 else ''} here (marked {SIGNIFICANT} "
                     f"although its interval overlaps that of the {reference_label}): ± is {spread}, while "
                     f"{SIGNIFICANT} is a paired test of the difference on the same evaluation images, which cancels "
                     "what both cells share (the same patients, and the same split in each seed), so a difference that "
                     "holds image by image and seed by seed can be significant while the two intervals overlap.")
    if apart_not_sig:
        seeds = "t" in set().union(*apart_not_sig)
        k = len(apart_not_sig)
        lines.append(f"± and {SIGNIFICANT} disagree for {k} cell{'s' if k != 1 else ''} here (no {SIGNIFICANT} "
                     f"although its interval does not overlap that of the {reference_label}): {SIGNIFICANT} is a "
                     f"paired test with Holm's correction over the {n_comparisons} comparison"
                     f"{'s' if n_comparisons != 1 else ''} of this table"
                     + (", and it counts the sampling noise of the evaluation images, which a spread over seeds "
                        "scored on the same images does not show" if seeds else "")
                     + ", while two separate 95 % intervals are neither corrected nor a test of the difference.")
    return lines


def _significance_note(tests: pd.DataFrame, reference_label: str, axis_word: str) -> list[str]:
    if tests.empty:
        return [f"{SIGNIFICANT}: no comparison with {reference_label} was possible in this table."]
    n, n_sig = len(tests), int(tests["significant"].sum())
    seeds = sorted(set(tests["n_seeds"]))
    lines = [(f"{SIGNIFICANT} = differs from the {reference_label} {axis_word} (two-sided DeLong test for correlated "
             f"AUCs on the same evaluation images, per seed; seeds combined by the mean of their signed z; Holm "
             f"correction over the {n} comparison{'s' if n != 1 else ''} of this table, α = {ALPHA}); "
             f"{n_sig} of {n} significant; seeds per comparison: {', '.join(map(str, seeds))}.")]
    untested = tests[tests["n_untested"] > 0]
    for r in untested.itertuples():
        lines.append(f"Not tested: {r.backbone}, {r.source}, {_fraction_label(r.ft_fraction)}, {r.transfer}: "
                     f"{r.note}.")
    return lines


def _falconi_flags(df: pd.DataFrame) -> set:
    """Cells whose mean training accuracy over seeds exceeds the mean evaluation accuracy by > 10 points."""
    ok = df[(df["status"] == "ok") & np.isfinite(df["train_acc"].to_numpy(dtype=float))]
    if ok.empty:
        return set()
    gap = (ok["train_acc"] - ok["val_acc"]).groupby([ok[k] for k in CELL_KEYS], sort=False).mean()
    return {key for key, value in gap.items() if value > FALCONI_GAP}


def _reference_line(suite: str, reference: str | None) -> list:
    """A synthetic twin of a seed study says, in one line, that it reproduces no published number."""
    from bench.references import twin_of

    study = None if reference else twin_of(suite)
    if study is None:
        return []
    return [("p", (f"**Published numbers:** none. `{suite}` is the synthetic twin of `{study}`: it reproduces no "
                   f"published number, so nothing here is compared with the paper (the real suite `{study}` is)."))]


def _records_tta(records: list[dict]) -> str | None:
    """The test-time augmentation the records were scored with (``config.tta``), or None."""
    return next((str(t) for rec in records if (t := (rec.get("config") or {}).get("tta")) not in (None, "none")),
                None)


def _hybrid_cells(intervals: pd.DataFrame, both: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``intervals`` that the full-vs-hybrid table of one target (records ``both``) shows."""
    hybrid = both[both["transfer"] == "hybrid"]
    rows = set(zip(hybrid["target"], hybrid["backbone"], hybrid["source"]))
    iv = intervals[intervals["transfer"].isin(["full", "hybrid"]) & (intervals["ft_fraction"] > 0)]
    return iv[[key in rows for key in zip(iv["target"], iv["backbone"], iv["source"])]]


def _report_blocks(records: list[dict], suite: str, svcca_records: list[dict] | None, figure: str | None,
                   stale: int = 0, reference: str | None = None) -> list:
    df = records_frame(records)
    blocks: list = [("h1", f"Suite `{suite}`: transfer-learning report")]
    if df.empty and not svcca_records:
        return [*blocks, ("p", "_No records._")]
    if not df.empty:
        preds = predictions_frame(records)
        env = environment_line(records)
        blocks += [*_how_to_read(df), ("p", _counts_line(df)), *([("p", env)] if env else []),
                   *_reference_line(suite, reference)]
        if stale:
            blocks.append(("p", f"**Stale records:** {stale} record(s) in the results folder were computed under an "
                                "earlier configuration of this suite (for instance before BatchNorm re-estimation) "
                                "and are not shown; `bench run` of the suite computes the current cells."))
        auc_iv = cell_intervals(df, preds, metric="auc", confidence=CONFIDENCE, n_resamples=N_RESAMPLES,
                                seed=BOOTSTRAP_SEED)
        beta_iv = cell_intervals(df, None, metric="beta", confidence=CONFIDENCE)
        auc_boot = seed_bootstraps(df, preds, auc_iv, confidence=CONFIDENCE, n_resamples=N_RESAMPLES,
                                   seed=BOOTSTRAP_SEED)
        flags, checks = _falconi_flags(df), table_marks(df)
        for target in _unique(df["target"]):
            blocks.append(("h2", f"Target `{target}`"))
            sub = df[(df["target"] == target) & (df["transfer"] == "full")]
            tests = paired_tests(sub, preds, axis="source", reference="random", keys=list(CELL_KEYS[:1] + CELL_KEYS[2:]),
                                 alpha=ALPHA)
            table = _transfer_table(df, target, "auc", "full", intervals=auc_iv, tests=tests, checks=checks)
            if isinstance(table, _Table):
                shown = auc_iv[(auc_iv["target"] == target) & (auc_iv["transfer"] == "full")]
                table.notes = [_interval_rule(shown, "auc"), *_few_seeds_notes(shown, auc_boot),
                               *_significance_note(tests, "Random init", "row of the same column"),
                               *_disagreement_notes(_test_pairs(tests, "source", "random"), shown, "Random init row",
                                                    len(tests)),
                               marks_note(sub)]
                if (sub["ft_fraction"] == 0).any() and (sub["ft_fraction"] > 0).any():
                    table.notes.append("No FT is the source network on the whole target; the FT columns evaluate what "
                                       "remains after their fine-tune share. *Fine-tuning gain* below rescores the "
                                       "No-FT network on each FT column's own images.")
            blocks += [("p", (f"**{metric_caption('auc')}** (transfer = full; rows: backbone × pre-training source, "
                             "columns: share of the target used for fine-tuning)")), ("table", table),
                       *_sens_spec_blocks(sub, target), *gain_blocks(df, preds, target, alpha=ALPHA)]
            if {"full", "hybrid"} <= set(df.loc[df["target"] == target, "transfer"].dropna()):
                both = df[df["target"] == target]
                htests = paired_tests(both, preds, axis="transfer", reference="full", keys=list(CELL_KEYS[:4]),
                                      alpha=ALPHA)
                htable = _hybrid_table(both, "auc", intervals=auc_iv, tests=htests, checks=checks)
                shown = _hybrid_cells(auc_iv, both)
                htable.notes = [_interval_rule(shown, "auc"),
                                *_few_seeds_notes(shown, auc_boot, with_transfer=True),
                                *_significance_note(htests, "full-transfer side", "of the same cell"),
                                *_disagreement_notes(_test_pairs(htests, "transfer", "full"), shown,
                                                     "full-transfer side", len(htests)),
                                marks_note(both[both["ft_fraction"] > 0])]
                blocks += [("p", (f"**{metric_caption('auc')}: all weights vs hybrid** (full vs hybrid; "
                                 f"{_hybrid_note(records, df, target)})")), ("table", htable)]
            mtests = mode_tests(df, preds, target, alpha=ALPHA)
            mtable = _modes_table(df, target, "auc", intervals=auc_iv, tests=mtests)
            if isinstance(mtable, _Table):
                first = _fine_tuned_modes(df, target)[1][0]
                shown = auc_iv[(auc_iv["target"] == target) & (auc_iv["transfer"] == "full")
                               & (auc_iv["ft_fraction"] > 0)]
                mtable.notes = [_interval_rule(shown, "auc"), *_few_seeds_notes(shown, auc_boot),
                                *_significance_note(mtests, f"train mode `{first}`", "cell of the same backbone, "
                                                    "source and column"),
                                *_disagreement_notes(_test_pairs(mtests, "train_mode", first,
                                                                 backbone_of=lambda b, m: f"{b} [{m}]"),
                                                     shown, f"train mode `{first}` cell", len(mtests))]
                blocks += [("p", (f"**{metric_caption('auc')}: train modes compared** (transfer = full; the same "
                                  "cells as above, one row per train mode; fine-tuned columns only)")),
                           ("table", mtable)]
            btable = _transfer_table(df, target, "beta", "full", intervals=beta_iv, flags=flags, checks=checks)
            if isinstance(btable, _Table):
                shown = beta_iv[(beta_iv["target"] == target) & (beta_iv["transfer"] == "full")]
                btable.notes = [_interval_rule(shown, "beta"), *_few_seeds_notes(shown),
                                (f"{OVERFIT} = Falconi's flag: the mean training accuracy over seeds is more than "
                                f"{FALCONI_GAP * 100:.0f} points above the mean evaluation accuracy. Training accuracy "
                                "is the final network's, in eval mode, on its own fine-tune images."),
                                marks_note(sub[sub["ft_fraction"] > 0])]
            blocks += [("p", (f"**{metric_caption('beta')}** (Falconi et al., eq. 7; transfer = full; about 1 = no "
                             "overfitting, above 1 = overfitting; columns without fine-tuning are left out)")),
                       ("table", btable)]
        if reference:
            from bench.report_paper import paper_blocks, paper_vs_ours

            blocks += paper_blocks(paper_vs_ours(df, preds, reference, intervals={"auc": auc_iv}), reference,
                                   tta=_records_tta(records))
        blocks += _flagged_section(df)
        blocks += _failed_section(df)
    if svcca_records:
        blocks += _svcca_blocks(svcca_records, figure)
    return blocks


def _svcca_blocks(svcca_records: list[dict], figure: str | None) -> list:
    frame = svcca_frame(svcca_records)
    ok = [r for r in svcca_records if r.get("status") == "ok"]
    failed = [r for r in svcca_records if r.get("status") == "failed"]
    blocks: list = [("h2", "Representations: per-layer SVCCA before vs after fine-tuning")]
    settings = (ok[0].get("config") or {}) if ok else {}
    blocks.append(("p", ("Per target, a stratified, patient-grouped split into "
                        f"{settings.get('ft_share', 0.2):g} / {1 - settings.get('ft_share', 0.2):g}. Network A = the "
                        "source-pretrained network; B = A fine-tuned on the small share "
                        f"({((settings.get('cell') or {}).get('finetune') or {}).get('epochs', '?')} epochs); "
                        "B′ = A with only its "
                        "BatchNorm statistics re-estimated on the small share (no gradient step). All are fed the "
                        "large share; each layer's output is compared with A's by SVCCA (keep "
                        f"{settings.get('keep', 0.99):g} of the spectrum, rule `{settings.get('rule', '?')}`), "
                        f"datapoints = {_pooling_text(settings)}. "
                        "1 = fine-tuning left the layer's representation unchanged (up to a linear map).")))
    if not frame.empty:
        table = _svcca_table(frame, "svcca")
        if isinstance(table, _Table):
            n_seeds = frame.groupby(["backbone", "source", "target"])["seed"].nunique()
            summary = seed_intervals(frame, "svcca", keys=["backbone", "source", "target", "reference", "layer"],
                                     confidence=CONFIDENCE)
            table.notes = [("Interval: ± = half-width of the 95 % t interval of the mean over seeds (t(0.975, n − 1) · s / "
                           f"√n); seeds per target: {', '.join(map(str, sorted(set(n_seeds))))}."
                            + (f" Where mean ± half-width would reach past {_range_text('svcca')}, the cell shows "
                               "the interval's bounds instead, cut at that range: mean (low–high)."
                               if any(_leaves_range(r.mean, r.half_width, metric_range("svcca"))
                                      for r in summary.itertuples()) else "")),
                           *_few_seeds_notes(summary)]
        blocks += [("p", (f"**{metric_caption('svcca')}** (A vs B and A vs B′; rows: target × network, columns: "
                         "layer)")), ("table", table)]
        if "cka" in frame.columns:
            blocks += [("p", f"**{metric_caption('cka')}** (companion measure, same activations)"),
                       ("table", _svcca_table(frame, "cka"))]
        few = frame[frame["datapoints"] < 5 * frame["neurons"]]
        if not few.empty:
            layers = ", ".join(sorted(set(few["layer"]), key=lambda x: SVCCA_LAYERS.index(x) if x in SVCCA_LAYERS
                                      else 99))
            blocks.append(("p", (f"Caution: layer(s) {layers} had fewer than 5 datapoints per neuron for some runs; "
                                "canonical correlations are then biased upwards.")))
    if figure:
        blocks.append(("image", figure, "Per-layer SVCCA similarity, one line per target"))
    if failed:
        blocks.append(("p", f"{len(failed)} SVCCA run(s) failed: " + "; ".join(
            f"{(r.get('job') or {}).get('target')} seed {(r.get('job') or {}).get('seed')}: {_one_line(r.get('reason'))}"
            for r in failed)))
    return blocks


def _pooling_text(settings: dict) -> str:
    if settings.get("pooling") == "mean":
        return "one per image (spatially averaged maps)"
    return (f"every spatial position of every image, subsampled to at most {settings.get('max_datapoints', '?'):,} "
            "per layer" if isinstance(settings.get("max_datapoints"), int) else "spatial positions")


# --------------------------------------------------------------------------- Markdown

def _markdown(blocks: list) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            lines += [f"# {block[1]}", ""]
        elif kind == "h2":
            lines += [f"## {block[1]}", ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "list":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            table = block[1]
            lines += [_render(table), ""]
            if isinstance(table, _Table) and table.notes:
                lines += ["  \n".join(table.notes), ""]  # one note per line (Markdown hard breaks)
        elif kind == "image":
            lines += [f"![{block[2]}]({block[1]})", ""]
    return "\n".join(lines).rstrip() + "\n"


def render_report(records: list[dict], *, suite: str, svcca_records: list[dict] | None = None,
                  figure: str | None = None, stale: int = 0, reference: str | None = None) -> str:
    """The suite's Markdown report: per target, Table-1-style AUC, full-vs-hybrid, beta; then SVCCA.

    Args:
        records: the suite's cell records (see :mod:`bench.records`); their order sets backbone and target order.
        suite: suite name, used in the title.
        svcca_records: the suite's SVCCA records (:mod:`bench.runner.svcca`), if any.
        figure: path of the SVCCA figure relative to the report, to link (see :func:`svcca_figure`).
        stale: how many records of the results folder were left out as stale (said in the report).
        reference: the study the suite reproduces (its ``reference:``, :mod:`bench.references`): adds the
            paper-vs-ours tables (:mod:`bench.report_paper`).

    Returns:
        A Markdown document ending with a newline.
    """
    return _markdown(_report_blocks(list(records), suite, svcca_records, figure, stale, reference))


# --------------------------------------------------------------------------- LaTeX

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"±": r"$\pm$", SIGNIFICANT: r"$^{\dagger}$", OVERFIT: r"$^{\ddagger}$", DEGENERATE: r"$^{!}$",
                  UNCALIBRATED: r"$^{\diamond}$", PARTIAL: r"$^{\ominus}$", "—": "---", "–": "--",
                  "β": r"$\beta$", "α": r"$\alpha$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "×": r"$\times$",
                  "≥": r"$\geq$", "≤": r"$\leq$", "−": "-", "·": r"$\cdot$", "√": r"$\surd$", "…": r"\dots{}",
                  "₀": r"$_0$", "₁": r"$_1$", "′": "$'$", "✗": r"$\times$"}


def _latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    for uni, tex in _LATEX_UNICODE.items():
        out = out.replace(uni, tex)
    return out


def _latex_inline(text: str) -> str:
    """Markdown inline markup (**bold**, `code`, _emphasis_) to LaTeX, escaping everything else."""
    if text.startswith("_") and text.endswith("_") and len(text) > 2:
        return r"\emph{" + _latex_inline(text[1:-1]) + "}"
    parts = re.split(r"(\*\*.+?\*\*|`[^`]+`|\*[^*]+\*)", text)
    out = []
    for part in parts:
        if part.startswith("**") and part.endswith("**") and len(part) > 4:
            out.append(r"\textbf{" + _latex_inline(part[2:-2]) + "}")
        elif part.startswith("`") and part.endswith("`") and len(part) > 2:
            out.append(r"\texttt{" + _latex_escape(part[1:-1]) + "}")
        elif part.startswith("*") and part.endswith("*") and len(part) > 2:
            out.append(r"\emph{" + _latex_escape(part[1:-1]) + "}")
        else:
            out.append(_latex_escape(part))
    return "".join(out)


def _latex_table(table: _Table) -> str:
    """A booktabs tabular via pandas' Styler.to_latex; cells escaped here (Styler does not escape)."""
    frame = pd.DataFrame([[_latex_escape(c) for c in row] for row in table.rows],
                         columns=[_latex_escape(h) for h in table.headers])
    n_label = sum(1 for h in table.headers if h in ("Backbone", "Pre-training", "Target", "Network", "Network A",
                                                    "Column", "Metric"))
    column_format = "l" * n_label + "r" * (len(table.headers) - n_label)
    return frame.style.hide(axis="index").to_latex(hrules=True, column_format=column_format)


def render_report_latex(records: list[dict], *, suite: str, svcca_records: list[dict] | None = None,
                        figure: str | None = None, stale: int = 0, reference: str | None = None) -> str:
    """The same report as :func:`render_report` as a standalone LaTeX document (booktabs tables).

    Every table is built by the same code as the Markdown one, so both show the same numbers; "±", "†" and "‡"
    become ``$\\pm$``, ``$^{\\dagger}$`` and ``$^{\\ddagger}$``. Compiles with pdflatex (packages booktabs,
    graphicx).
    """
    out = [r"\documentclass{article}", r"\usepackage[utf8]{inputenc}", r"\usepackage[T1]{fontenc}",
           r"\usepackage{booktabs}", r"\usepackage{graphicx}", r"\usepackage[margin=2cm,landscape]{geometry}",
           r"\begin{document}", ""]
    for block in _report_blocks(list(records), suite, svcca_records, figure, stale, reference):
        kind = block[0]
        if kind == "h1":
            out += [r"\section*{" + _latex_inline(block[1]) + "}", ""]
        elif kind == "h2":
            out += [r"\subsection*{" + _latex_inline(block[1]) + "}", ""]
        elif kind == "p":
            out += [_latex_inline(block[1]), ""]
        elif kind == "list":
            out += [r"\begin{itemize}", *(r"\item " + _latex_inline(i) for i in block[1]), r"\end{itemize}", ""]
        elif kind == "table":
            table = block[1]
            if isinstance(table, str):
                out += [_latex_inline(table), ""]
                continue
            out += [r"\begin{center}", _latex_table(table).rstrip(), r"\end{center}", ""]
            out += [r"{\footnotesize " + _latex_inline(n) + r"\par}" for n in table.notes] + [""]
        elif kind == "image":
            out += [r"\begin{center}", r"\includegraphics[width=0.9\linewidth]{" + block[1] + "}", r"\end{center}",
                    ""]
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- files

def write_report(records: list[dict], out: str | Path, *, suite: str, svcca_records: list[dict] | None = None,
                 stale: int = 0, reference: str | None = None) -> Path:
    """Write the report folder: ``report.md``, ``report.tex``, ``cells.csv``; with SVCCA records also
    ``svcca.png`` (the figure) and ``svcca.csv`` (one row per run x layer x network); with a ``reference`` study
    also ``paper_vs_ours.csv`` (one row per published value, :func:`bench.report_paper.paper_vs_ours`). Returns
    the Markdown path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figure = None
    frame = svcca_frame(svcca_records or [])
    if not frame.empty:
        svcca_figure(frame, out / "svcca.png")
        frame.to_csv(out / "svcca.csv", index=False)
        figure = "svcca.png"
    (out / "report.md").write_text(render_report(records, suite=suite, svcca_records=svcca_records, figure=figure,
                                                 stale=stale, reference=reference))
    (out / "report.tex").write_text(render_report_latex(records, suite=suite, svcca_records=svcca_records, stale=stale,
                                                        figure=figure, reference=reference))
    df = records_frame(records)
    df.to_csv(out / "cells.csv", index=False)
    if reference:
        from bench.report_paper import paper_vs_ours

        paper_vs_ours(df, predictions_frame(records), reference).to_csv(out / "paper_vs_ours.csv", index=False)
    return out / "report.md"


def accuracy_curves_figure(records: list[dict], path: str | Path) -> Path | None:
    """Training-accuracy curves per cell (on request: ``bench report --curves``), one panel per target.

    Solid lines: the running training accuracy of each fine-tuning epoch (mean over seeds, 95 % t interval as a
    band), one colour per source, one line style per fine-tune fraction. Dashed horizontal lines: the final
    evaluation accuracy (``val_acc``) of the same cells, mean over seeds. Per-epoch accuracy on the evaluation
    images is not recorded (the evaluation set is never looked at during training), so the gap between the two is
    shown at the end of training only, as in Falconi's beta. Returns None when no record has a history.
    """
    rows, finals = [], []
    for rec in records:
        cell = rec.get("cell") or {}
        if rec.get("status") != "ok" or not rec.get("history"):
            continue
        label = {"target": cell.get("target"), "source": _source_label(cell.get("source")),
                 "fine-tune": _fraction_label(float(cell.get("ft_fraction") or 0))
                 + (f" ({cell.get('transfer')})" if cell.get("transfer") != "full" else ""), "seed": cell.get("seed")}
        for entry in rec["history"]:
            if entry.get("running_train_acc") is not None:
                rows.append({**label, "epoch": entry.get("epoch"), "accuracy": entry["running_train_acc"]})
        finals.append({**label, "val_acc": _as_float((rec.get("metrics") or {}).get("val_acc"))})
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from bench.analysis.stats import seed_summary

    def t_interval(values) -> tuple[float, float]:
        s = seed_summary(np.asarray(values, dtype=float), confidence=CONFIDENCE, value_range=metric_range("accuracy"))
        return (s["low"], s["high"]) if s["n"] >= 2 else (s["mean"], s["mean"])

    data, final = pd.DataFrame(rows), pd.DataFrame(finals)
    sources = _unique(data["source"])
    palette = dict(zip(sources, sns.color_palette(n_colors=len(sources))))
    sns.set_theme(style="whitegrid")
    grid = sns.relplot(data=data, x="epoch", y="accuracy", hue="source", style="fine-tune", col="target",
                       kind="line", palette=palette, errorbar=t_interval, height=3.4, aspect=1.2)
    for target, ax in grid.axes_dict.items():
        means = final[final["target"] == target].groupby(["source", "fine-tune"])["val_acc"].mean()
        for (source, _), value in means.items():
            if math.isfinite(value):
                ax.axhline(value, color=palette[source], linestyle=":", linewidth=1.2)
        ax.set_ylim(0, 1.02)
    grid.set_axis_labels("fine-tuning epoch", "accuracy (solid: training, dotted: final evaluation)")
    grid.set_titles("{col_name}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.savefig(path, dpi=110)
    plt.close(grid.figure)
    return path
