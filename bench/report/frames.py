"""Records to frames: the per-seed rows every table of the report reads, and the per-cell statistics computed once
for the whole report (:class:`ReportData`). Record dicts in, DataFrames out; no I/O, no torch, nothing rescored
but the intervals of :mod:`bench.analysis.intervals`."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analysis.intervals import AXES as INTERVAL_AXES
from bench.analysis.intervals import CELL_KEYS, cell_intervals, seed_bootstraps
from bench.analysis.metrics import FALCONI_GAP
from bench.registry import closest
from bench.report.checks import record_check, table_marks
from bench.report.table import BOOTSTRAP_SEED, CONFIDENCE, N_RESAMPLES

__all__ = ["AXES", "CHECK_COLUMNS", "RECORD_METRICS", "SVCCA_LAYERS", "SVCCA_REFERENCES", "ReportData", "as_float",
           "check_metric", "overfit_cells", "predictions_frame", "records_frame", "svcca_frame"]

AXES = INTERVAL_AXES
RECORD_METRICS = ("auc", "accuracy", "f1", "sensitivity", "specificity", "train_acc", "running_train_acc", "val_acc",
                  "beta", "n_finetune", "n_eval")
CHECK_COLUMNS = ("flags", "uncalibrated", "partial_weights", "auc_low", "auc_high")  # bench.report.checks.record_check
SVCCA_LAYERS = ("conv1", "block1", "block2", "block3", "block4")
SVCCA_REFERENCES = {"finetuned": "fine-tuned (B)", "bn_only": "BN-only reference (B′)"}


def as_float(value) -> float:
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
    :func:`bench.report.checks.record_check`: ``flags`` (degenerate-cell flags, comma-joined), ``uncalibrated``,
    ``partial_weights``, ``auc_low``, ``auc_high`` (the DeLong interval behind the flag).

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
                     **{name: as_float(metrics.get(name)) for name in metric_cols}, **check})
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
                             **{k: as_float(v) for k, v in scores.items()}})
    columns = ["analysis_id", "backbone", "source", "target", "seed", "reference", "layer", "module", "neurons",
               "datapoints"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=[*columns, "svcca"])


def check_metric(df: pd.DataFrame, metric: str) -> None:
    """Raise ValueError, with the closest names, when ``metric`` is not a metric column of a records frame."""
    names = [c for c in df.columns if c not in ("cell_id", "status", "reason", *AXES)]
    if metric not in names:
        hint = closest(metric, names)
        did_you_mean = f" Did you mean: {', '.join(map(repr, hint))}?" if hint else ""
        raise ValueError(f"unknown metric {metric!r}.{did_you_mean} Available: {', '.join(names)}.")


def overfit_cells(df: pd.DataFrame) -> set:
    """Cells (:data:`CELL_KEYS` tuples) whose mean training accuracy over seeds exceeds the mean evaluation accuracy
    by more than :data:`bench.analysis.metrics.FALCONI_GAP` (Falconi's flag)."""
    ok = df[(df["status"] == "ok") & np.isfinite(df["train_acc"].to_numpy(dtype=float))]
    if ok.empty:
        return set()
    gap = (ok["train_acc"] - ok["val_acc"]).groupby([ok[k] for k in CELL_KEYS], sort=False).mean()
    return {key for key, value in gap.items() if value > FALCONI_GAP}


@dataclass(frozen=True)
class ReportData:
    """What the tables of one report read: the records' frames and the per-cell statistics, computed once.

    Attributes:
        records: the cell records, in report order.
        df: :func:`records_frame` of them.
        predictions: :func:`predictions_frame` of them.
        auc_intervals: :func:`bench.analysis.intervals.cell_intervals` of the AUC (t over seeds, or the patient
            bootstrap of a single seed).
        beta_intervals: the same for β (t over seeds only).
        auc_bootstraps: :func:`bench.analysis.intervals.seed_bootstraps`: each seed's own AUC interval, for the
            cells whose t interval rests on few seeds.
        overfit: :func:`overfit_cells` (‡ in the β table).
        marks: :func:`bench.report.checks.table_marks` (⚑, ◊, ◐ after a cell's number).
    """

    records: list[dict]
    df: pd.DataFrame
    predictions: pd.DataFrame
    auc_intervals: pd.DataFrame
    beta_intervals: pd.DataFrame
    auc_bootstraps: pd.DataFrame
    overfit: set
    marks: dict[tuple, str]

    @classmethod
    def from_records(cls, records: list[dict]) -> ReportData:
        """Frames and statistics of ``records`` (non-empty), with the report's fixed confidence and bootstrap."""
        df, preds = records_frame(records), predictions_frame(records)
        auc_iv = cell_intervals(df, preds, metric="auc", confidence=CONFIDENCE, n_resamples=N_RESAMPLES,
                                seed=BOOTSTRAP_SEED)
        beta_iv = cell_intervals(df, None, metric="beta", confidence=CONFIDENCE)
        auc_boot = seed_bootstraps(df, preds, auc_iv, confidence=CONFIDENCE, n_resamples=N_RESAMPLES,
                                   seed=BOOTSTRAP_SEED)
        return cls(records, df, preds, auc_iv, beta_iv, auc_boot, overfit_cells(df), table_marks(df))
