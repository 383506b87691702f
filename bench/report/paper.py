"""Paper vs ours: the published values of a suite's reference study beside our cells, in the report and its CSV.

A suite that names its paper (``reference: <study>``, see :mod:`bench.references`) gets one table per table of the
paper: one row per published value whose key (backbone, source, ft_fraction, target, transfer, train_mode) is a cell
of the records, with the paper's value, our mean over seeds ± the half-width of its 95 % interval (the rule of the
report's other tables: :func:`bench.analysis.intervals.cell_intervals`), the difference ours − paper, and
:data:`OUTSIDE` where the paper's value lies outside our interval. Under each table: how many cells agree within
the interval and the mean absolute difference.

Each published metric is compared with one record metric (:data:`bench.references.OURS`): Falconi's "AUC" (eq. 13, a
balanced accuracy) with ``balanced_accuracy``, never with our ROC AUC; records without that metric make those rows
"not comparable". Like the rest of the report: records in, text and a frame out, no torch, nothing recomputed but
the intervals.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.analysis.intervals import CELL_KEYS, cell_intervals, metric_range
from bench.references import COLUMNS, METRICS, OURS, load_references, table_notes
from bench.report.blocks import Block, Heading, Paragraph, Table
from bench.report.table import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    N_RESAMPLES,
    NO_RECORD,
    bare_backbones,
    format_value,
    fraction_label,
    source_label,
    unique,
)

__all__ = ["OUTSIDE", "agreement", "paper_blocks", "paper_vs_ours"]

OUTSIDE = "✗"
"""Marks a cell whose 95 % interval does not contain the paper's value."""

NOT_COMPARABLE = "not comparable"
FRAME_COLUMNS = [*COLUMNS[:-1], "paper", "paper_printed", "ours_metric", "status", "n_seeds", "ours", "half_width",
                 "low", "high", "interval", "difference", "within_interval"]
_KEYS = [*CELL_KEYS, "train_mode"]


def paper_vs_ours(df: pd.DataFrame, predictions: pd.DataFrame | None, reference: str, *,
                  intervals: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per published value of ``reference``, with our matching cell.

    Args:
        df: :func:`bench.report.frames.records_frame` of the suite's records.
        predictions: :func:`bench.report.frames.predictions_frame` of them (the single-seed AUC bootstrap); may be None.
        reference: a study of :func:`bench.references.studies`.
        intervals: already computed :func:`cell_intervals` of ``df`` by record metric (e.g. ``{"auc": ...}``);
            the others are computed here, for the referenced cells only.

    Returns:
        Columns :data:`FRAME_COLUMNS`: the reference key and metric, ``paper`` (float, NaN for the paper's NA) and
        ``paper_printed``, ``ours_metric``, ``status`` (``ok``, ``no record``, ``NA``, ``failed``, ``n/a``,
        ``not comparable``), ``n_seeds``, ``ours`` (mean over seeds), ``half_width``, ``low``, ``high``,
        ``interval`` (``t``, ``bootstrap`` or ``none``), ``difference`` (ours − paper) and ``within_interval``
        (True / False, None when not judged).
    """
    refs = load_references(reference)
    printed = [r["value"] for r in load_references(reference, printed=True)]
    bare = bare_backbones(df) if not df.empty else df
    match = pd.Series(False, index=df.index)
    masks = []
    for r in refs:
        m = pd.Series(True, index=df.index)
        for k in _KEYS:
            m &= np.isclose(bare[k].astype(float), float(r[k])) if k == "ft_fraction" else bare[k] == r[k]
        masks.append(m)
        match |= m
    cells = df[match]  # intervals (and bootstraps) for the referenced cells only
    preds = None if predictions is None else predictions[predictions["cell_id"].isin(set(cells["cell_id"]))]
    lookup: dict[str, dict] = {}
    for metric in dict.fromkeys(_ours(r["metric"], df) for r in refs):
        if metric not in cells.columns:
            continue
        iv = (intervals or {}).get(metric)
        if iv is None:
            iv = cell_intervals(cells, preds if metric == "auc" else None, metric=metric, confidence=CONFIDENCE,
                                n_resamples=N_RESAMPLES, seed=BOOTSTRAP_SEED)
        lookup[metric] = {tuple(row[k] for k in CELL_KEYS): row for _, row in iv.iterrows()}
    rows = []
    for r, text, m in zip(refs, printed, masks):
        ours_metric = _ours(r["metric"], df)
        paper = math.nan if r["value"] is None else float(r["value"])
        row = {**{k: r[k] for k in COLUMNS[:-1]}, "paper": paper, "paper_printed": text, "ours_metric": ours_metric,
               "status": "ok", "n_seeds": 0, "ours": math.nan, "half_width": math.nan, "low": math.nan,
               "high": math.nan, "interval": "none", "difference": math.nan, "within_interval": None}
        mine = df[m]
        if mine.empty:
            row["status"] = "no record"
        elif ours_metric not in df.columns:
            row["status"] = NOT_COMPARABLE
        else:
            ok = mine[(mine["status"] == "ok") & np.isfinite(mine[ours_metric].to_numpy(dtype=float))]
            if ok.empty:
                statuses = set(mine["status"])
                row["status"] = ("NA" if statuses == {"na"} else "failed" if statuses == {"failed"} else "n/a")
            else:
                key = tuple(ok.iloc[0][k] for k in CELL_KEYS)  # the frame's backbone ("resnet50 [tl]")
                iv = lookup.get(ours_metric, {}).get(key)
                values = ok[ours_metric].to_numpy(dtype=float)
                row.update(n_seeds=len(values), ours=float(values.mean()))
                if iv is not None and iv["method"] in ("t", "bootstrap") and math.isfinite(iv["half_width"]):
                    row.update(ours=float(iv["mean"]), half_width=float(iv["half_width"]), low=float(iv["low"]),
                               high=float(iv["high"]), interval=iv["method"])
                if math.isfinite(paper):
                    row["difference"] = row["ours"] - paper
                    if row["interval"] != "none":
                        row["within_interval"] = bool(row["low"] <= paper <= row["high"])
        rows.append(row)
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def _outside(within) -> bool:
    """True when the paper's value was judged and lies outside our interval (None / NaN: not judged)."""
    return within is not None and not pd.isna(within) and not bool(within)


def _ours_text(row) -> str:
    if row["status"] == "no record":
        return NO_RECORD
    if row["status"] != "ok":
        return row["status"]
    return format_value(row["ours"], row["half_width"] if row["interval"] != "none" else None, low=row["low"],
                         high=row["high"], value_range=metric_range(row["ours_metric"]))


def _column_label(row, *, transfers: int) -> str:
    label = fraction_label(float(row["ft_fraction"]))
    if transfers > 1:
        label += f", {row['transfer']}"
    if row["train_mode"] != "default":
        label += f" [{row['train_mode']}]"
    return label


def agreement(sub: pd.DataFrame, label: str = "Agreement") -> str:
    """How many of the cells of a paper-vs-ours frame (:func:`paper_vs_ours`, or rows of it) agree with the paper
    within our 95 % interval, the mean absolute difference, and the published values that could not be judged: one
    sentence, beginning with ``**label:**``."""
    judged = sub[sub["within_interval"].notna()]
    agree = int(judged["within_interval"].astype(bool).sum())
    both = sub[np.isfinite(sub["difference"].to_numpy(dtype=float))]
    published = sub[np.isfinite(sub["paper"].to_numpy(dtype=float))]
    if len(judged):
        text = (f"**{label}:** {agree} of {len(judged)} cells agree within our 95 % interval (it contains the "
                f"paper's value)" + (f"; {OUTSIDE} marks the {len(judged) - agree} that do not" if agree < len(judged)
                                     else ""))
    else:
        text = f"**{label}:** no cell could be judged"
    text += (f"; mean absolute difference |ours − paper| = {np.abs(both['difference']).mean():.3f} over "
             f"{len(both)} cells" if len(both) else "; no cell has both the paper's value and ours")
    unjudged = len(published) - len(judged)
    if unjudged:
        reasons = published.loc[published["within_interval"].isna()].apply(
            lambda r: "no interval (one seed)" if r["status"] == "ok" else r["status"], axis=1).value_counts()
        text += (f"; {unjudged} published value{'s' if unjudged != 1 else ''} not judged ("
                 + ", ".join(f"{n} {why}" for why, n in reasons.items()) + ")")
    return text + "."


def _ours(paper_metric: str, df: pd.DataFrame) -> str:
    """The record metric a paper metric is compared with: with test-time augmentation records keep both scores
    (``auc_plain``, ``auc_tta``), so a plain per-image AUC is compared with ``auc_plain`` and an A-AUC with
    ``auc_tta``; otherwise :data:`bench.references.OURS`."""
    both = {"auc": "auc_plain", "a_auc": "auc_tta"}
    if paper_metric in both and both[paper_metric] in df.columns and df[both[paper_metric]].notna().any():
        return both[paper_metric]
    return OURS[paper_metric]


def _notes(sub: pd.DataFrame, tta: str | None) -> list[str]:
    notes = [agreement(sub),
             ("Ours = mean over seeds ± the half-width of its 95 % interval, as in the tables above (t over seeds "
              "with ≥ 2 seeds; with one seed the patient bootstrap for AUC and no interval otherwise). The paper "
              "reports one run per cell, without an interval; the difference is ours − paper.")]
    fresh = sub[(sub["source"] == "random") & (sub["ft_fraction"].astype(float) == 0)
                & np.isfinite(sub["paper"].to_numpy(dtype=float))]
    if not fresh.empty:
        notes.append("The paper's random-init No-FT values are single draws: one randomly initialised network, never "
                     "trained, scored once; another draw can land anywhere around 0.5, so a difference there says "
                     "nothing about the reproduction.")
    metrics = set(sub["metric"])
    if "falconi_auc" in metrics:
        comparable = not (sub.loc[sub["metric"] == "falconi_auc", "status"] == NOT_COMPARABLE).all()
        notes.append("Falconi's \"AUC\" is their eq. 13, (1 + TPR − FPR) / 2, a balanced accuracy at the decision "
                     "threshold, so it is compared with our balanced_accuracy, never with our ROC AUC"
                     + ("." if comparable else "; these records carry no balanced_accuracy, so those rows are not "
                        "comparable (records of a bench that stores it are)."))
    if metrics & {"train_acc", "test_acc"}:
        notes.append("Their test_acc is compared with our val_acc (accuracy on the cell's evaluation images), their "
                     "train_acc with ours (the final network on its own fine-tune images), β with ours.")
    if tta and metrics & {"auc"} and set(sub.loc[sub["metric"] == "auc", "ours_metric"]) == {"auc_plain"}:
        notes.append(f"Our cells were scored with flipped copies of each image (tta: {tta}); their records also keep "
                     "the plain per-image scores, and those (auc_plain) are compared with the paper's per-image AUC.")
    elif tta and metrics & {"auc"}:
        notes.append(f"Our AUC averages the scores of flipped copies of each image (tta: {tta}); the paper's value is "
                     "a per-image AUC without augmented prediction.")
    if tta in (None, "none") and metrics & {"a_auc"}:
        notes.append("The paper's A-AUC averages flipped copies of each image; our cells were scored without it.")
    return notes


def paper_blocks(frame: pd.DataFrame, reference: str, *, tta: str | None = None) -> list[Block]:
    """Report blocks: a section with one table per paper table (rows: published values), notes under each."""
    where = table_notes(reference)
    blocks: list[Block] = [Heading(f"Paper vs ours: {reference}"),
                           Paragraph(f"The published values of `{reference}` (`bench references {reference}`; the "
                                     "paper's numbers as printed, keyed by this suite's cells) beside ours. A row per "
                                     "published value; NA = the paper prints NA; — = no record of that cell here.")]
    for table in unique(frame["table"]):
        sub = frame[frame["table"] == table]
        metrics = unique(sub["metric"])
        transfers = sub["transfer"].nunique()
        headers = ["Backbone", "Pre-training", "Column", *(["Metric"] if len(metrics) > 1 else []), "Paper",
                   "Ours", "Ours − paper", "Mark"]
        rows, last = [], None
        for _, r in sub.iterrows():
            head = (r["backbone"], r["source"])
            rows.append([r["backbone"] if last is None or head[0] != last[0] else "",
                         source_label(r["source"]) if head != last else "",
                         _column_label(r, transfers=transfers),
                         *([METRICS[r["metric"]]] if len(metrics) > 1 else []),
                         r["paper_printed"], _ours_text(r),
                         f"{r['difference']:+.3f}" if math.isfinite(r["difference"]) else "",
                         OUTSIDE if _outside(r["within_interval"]) else ""])
            last = head
        targets = ", ".join(unique(sub["target"]))
        title = (f"**Paper vs ours: Table {table}** ({targets}"
                 + (f"; {METRICS[metrics[0]]}" if len(metrics) == 1 else "") + ")")
        if table in where:
            title += f". In the paper: {where[table]}"
        blocks += [Paragraph(title), Table(headers, rows, _notes(sub, tta))]
    return blocks
