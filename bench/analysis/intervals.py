"""Intervals of table cells: one interval per group of seeds, from a frame of per-seed results.

Pure functions: DataFrames in, DataFrames out, no I/O, no torch. A *table cell* is every seed of one combination of
the other axes (backbone x source x ft_fraction x target x transfer); its interval follows one rule, stated in the
report under every table:

- two or more seeds with a value: the t-based interval of the mean over seeds,
  ``mean +- t_{(1 + confidence) / 2, n - 1} * s / sqrt(n)`` (:func:`bench.analysis.stats.seed_summary`): it
  measures how much the result moves between training runs (initialisation, batch order, split);
- one seed: the percentile bootstrap interval of that run's AUC, resampling *patients* with a fixed seed
  (:func:`bench.analysis.stats.bootstrap_auc_ci`): it measures only the evaluation sample. Only the AUC has this
  fallback; other metrics of a single seed have no interval.

The ``half_width`` column is what a report prints after "±": the t half-width, or ``(high - low) / 2`` of the
bootstrap interval, which can be asymmetric (``low`` and ``high`` are exact).

Every interval stays inside what its metric can take (:data:`METRIC_RANGES`: [0, 1] for AUC, accuracy,
sensitivity, specificity, balanced accuracy and the similarity measures; [0, inf) for the overfit ratio β): a t
interval that reaches past the range has ``low`` and ``high`` cut at it and ``clipped`` True (``half_width`` is
the t half-width, never cut). With two seeds that is common: ``t_{0.975, 1} = 12.7``, so the interval spans 12.7
standard errors each side of the mean. For such cells (t interval, fewer than :data:`FEW_SEEDS` seeds)
:func:`seed_bootstraps` gives each seed's own patient-bootstrap AUC interval, which measures the evaluation sample
only (not how much the result moves between runs) but does not depend on how many seeds ran.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.analysis.stats import bootstrap_auc_ci, seed_summary

__all__ = ["CELL_KEYS", "FEW_SEEDS", "METRIC_DIRECTION", "METRIC_RANGES", "cell_intervals", "metric_range",
           "seed_bootstraps", "seed_intervals"]

#: The axes that identify one table cell (everything but the seed).
CELL_KEYS = ("backbone", "source", "ft_fraction", "target", "transfer")
#: Every axis of a cell record (``record["cell"]``): the table cell's, the train mode and the seed.
AXES = (*CELL_KEYS, "train_mode", "seed")

#: A t interval from fewer seeds than this says little (two seeds: ``t_{0.975, 1} = 12.7``).
FEW_SEEDS = 3

_UNIT = (0.0, 1.0)
#: ``(lowest, highest)`` value of each metric; intervals are cut at it. Metrics not listed are unbounded.
METRIC_RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1", "train_acc",
                     "running_train_acc", "val_acc", "svcca", "pwcca", "cka"), _UNIT),
    "beta": (0.0, math.inf),  # train_acc / val_acc
}

#: Which way each metric is better: ``"higher"`` or ``"lower"`` (the report's ↑ / ↓). Metrics not listed have no
#: direction (counts such as ``n_eval``).
METRIC_DIRECTION: dict[str, str] = {
    **dict.fromkeys(("auc", "accuracy", "balanced_accuracy", "f1", "sensitivity", "specificity", "train_acc",
                     "val_acc"), "higher"),
    "beta": "lower",  # train_acc / val_acc: about 1 is no overfitting, above 1 is overfitting
    # similarity before vs after fine-tuning: higher = fine-tuning changed the layer less
    **dict.fromkeys(("svcca", "pwcca", "cka"), "higher"),
}

_COLUMNS = ["n", "mean", "std", "half_width", "low", "high", "method", "clipped"]


def metric_range(metric: str) -> tuple[float, float]:
    """``(lowest, highest)`` value ``metric`` can take: :data:`METRIC_RANGES`, else ``(-inf, inf)``.

    Examples
    --------
    >>> metric_range("auc"), metric_range("beta"), metric_range("n_eval")
    ((0.0, 1.0), (0.0, inf), (-inf, inf))
    """
    return METRIC_RANGES.get(metric, (-math.inf, math.inf))


def seed_intervals(frame: pd.DataFrame, value: str, *, keys: Sequence[str], confidence: float = 0.95,
                   value_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """Mean, std and t interval of ``value`` over the rows of each ``keys`` group (one row per seed).

    Parameters
    ----------
    frame : DataFrame
        One row per seed run; NaN values of ``value`` are left out (a failed or undefined run).
    value : str
        The column to summarise.
    keys : sequence of str
        The columns that define a group.
    confidence : float, default=0.95
        Coverage of the interval.
    value_range : tuple of float, optional
        ``(lowest, highest)`` value of ``value``; ``low`` and ``high`` are cut at it. None:
        :func:`metric_range` of the column name (unbounded for a name it does not know).

    Returns
    -------
    DataFrame
        One row per group: ``keys``, ``n``, ``mean``, ``std``, ``half_width``, ``low``, ``high``, ``method``
        (``"t"`` with two or more values, ``"single"`` with one, ``"none"`` without any) and ``clipped`` (bool:
        ``low`` or ``high`` was cut at the range; ``half_width`` never is).

    Examples
    --------
    >>> df = pd.DataFrame({"layer": ["a", "a", "a", "b"], "sim": [0.8, 0.9, 1.0, 0.5]})
    >>> out = seed_intervals(df, "sim", keys=["layer"])
    >>> out[["layer", "n", "mean", "method"]].to_numpy().tolist()
    [['a', 3, 0.9, 't'], ['b', 1, 0.5, 'single']]
    >>> round(float(out.loc[0, "half_width"]), 4)           # t_{0.975, 2} * 0.1 / sqrt(3)
    0.2484
    >>> auc = pd.DataFrame({"cell": ["a", "a"], "auc": [0.3, 0.7]})   # two seeds: 0.5 +- 2.54
    >>> seed_intervals(auc, "auc", keys=["cell"])[["low", "high", "clipped"]].to_numpy().tolist()
    [[0.0, 1.0, True]]
    """
    keys = list(keys)
    value_range = metric_range(value) if value_range is None else value_range
    rows = []
    for group, sub in frame.groupby(keys, sort=False, dropna=False):
        summary = seed_summary(sub[value].to_numpy(dtype=float), confidence=confidence, value_range=value_range)
        method = "t" if summary["n"] >= 2 else ("single" if summary["n"] == 1 else "none")
        rows.append({**dict(zip(keys, group if isinstance(group, tuple) else (group,))),
                     **{k: summary[k] for k in ("n", "mean", "std", "half_width", "low", "high")}, "method": method,
                     "clipped": summary["clipped"]})
    out = pd.DataFrame(rows, columns=[*keys, *_COLUMNS])
    out["clipped"] = out["clipped"].astype(bool)
    return out


def cell_intervals(frame: pd.DataFrame, predictions: pd.DataFrame | None = None, *, metric: str = "auc",
                   keys: Sequence[str] = CELL_KEYS, confidence: float = 0.95, n_resamples: int = 2000,
                   seed: int = 0) -> pd.DataFrame:
    """The interval of every table cell, following the rule in the module docstring.

    Parameters
    ----------
    frame : DataFrame
        One row per record, as :func:`bench.report.records_frame` gives: ``cell_id``, ``status``, the axes and the
        metrics. Only rows with status ``"ok"`` and a finite ``metric`` count.
    predictions : DataFrame, optional
        Per-image predictions of the records: ``cell_id``, ``label``, ``score`` and ``group`` (the patient id, or
        the image id for datasets without patients). Needed only for the single-seed AUC bootstrap; without it a
        single seed gets no interval.
    metric : str, default="auc"
        The metric column.
    keys : sequence of str, default=CELL_KEYS
        The columns that identify a table cell.
    confidence : float, default=0.95
        Coverage of the intervals.
    n_resamples : int, default=2000
        Bootstrap resamples for a single-seed AUC.
    seed : int, default=0
        Seed of the bootstrap (fixed: the same records always give the same report).

    Returns
    -------
    DataFrame
        One row per table cell with a value: ``keys``, ``n`` (seeds with a value), ``mean``, ``std``,
        ``half_width``, ``low``, ``high``, ``method`` (``"t"``, ``"bootstrap"`` or ``"single"``: one seed, no
        interval) and ``clipped`` (a t interval cut at :func:`metric_range` of ``metric``; a bootstrap interval
        of the AUC never needs it).

    Examples
    --------
    >>> df = pd.DataFrame({"cell_id": ["x0", "x1"], "status": "ok", "backbone": "b", "source": "s",
    ...                    "ft_fraction": 0.0, "target": "t", "transfer": "full", "auc": [0.1, 0.9]})
    >>> iv = cell_intervals(df)
    >>> iv[["n", "mean", "low", "high", "method", "clipped"]].to_numpy().tolist()
    [[2, 0.5, 0.0, 1.0, 't', True]]
    """
    ok = frame[(frame["status"] == "ok") & np.isfinite(frame[metric].to_numpy(dtype=float))]
    out = seed_intervals(ok, metric, keys=keys, confidence=confidence)
    if metric != "auc" or predictions is None or predictions.empty or out.empty:
        return out
    by_cell = dict(tuple(predictions.groupby("cell_id", sort=False)))
    for i in np.flatnonzero((out["method"] == "single").to_numpy()):
        match = np.ones(len(ok), dtype=bool)
        for k in keys:
            match &= (ok[k] == out.iloc[i][k]).to_numpy()
        if not match.any():  # a key that does not compare equal to itself (NaN axis): no predictions to use
            continue
        preds = by_cell.get(ok.loc[match, "cell_id"].iloc[0])
        if preds is None or preds.empty:
            continue
        ci = bootstrap_auc_ci(preds["label"].to_numpy(), preds["score"].to_numpy(), preds["group"].to_numpy(),
                              n_resamples=n_resamples, confidence=confidence, seed=seed)
        if math.isfinite(ci["low"]):
            out.loc[out.index[i], ["low", "high", "half_width", "method"]] = [
                ci["low"], ci["high"], (ci["high"] - ci["low"]) / 2, "bootstrap"]
    return out


def seed_bootstraps(frame: pd.DataFrame, predictions: pd.DataFrame, intervals: pd.DataFrame, *,
                    keys: Sequence[str] = CELL_KEYS, few: int = FEW_SEEDS, confidence: float = 0.95,
                    n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Each seed's patient-bootstrap AUC interval, for the cells whose t interval rests on fewer than ``few`` seeds.

    A t interval from two seeds is ``t_{0.975, 1} * s / sqrt(2) = 12.7 * s / sqrt(2)`` each side of the mean and
    says little. The alternative shown beside it is per seed, not pooled: every seed's network is scored on its own
    evaluation images, and :func:`bench.analysis.stats.bootstrap_auc_ci` resamples those images' patients. Pooling
    the seeds' scores into one AUC would rank one network's scores against another's, which is not the cell's
    mean AUC. A seed's interval measures the evaluation sample only, not how much the result moves between runs.

    Parameters
    ----------
    frame : DataFrame
        One row per record, as for :func:`cell_intervals`.
    predictions : DataFrame
        Per-image predictions: ``cell_id``, ``label``, ``score``, ``group`` (patient id).
    intervals : DataFrame
        :func:`cell_intervals` of ``frame`` for the AUC; its rows with ``method == "t"`` and ``n < few`` are the
        cells bootstrapped.
    keys : sequence of str, default=CELL_KEYS
        The columns that identify a table cell.
    few : int, default=FEW_SEEDS
        Cells with fewer seeds than this get the per-seed bootstrap.
    confidence : float, default=0.95
        Coverage of the intervals.
    n_resamples : int, default=2000
        Bootstrap resamples per seed.
    seed : int, default=0
        Seed of every bootstrap (fixed: the same records always give the same report).

    Returns
    -------
    DataFrame
        One row per bootstrapped seed, cells in the order of ``intervals`` and seeds in the order of ``frame``:
        ``keys``, ``seed``, ``auc`` (the seed's AUC on all its images), ``low``, ``high``. A seed without stored
        predictions, or whose resamples never held both classes, gets no row.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 50)
    >>> preds = pd.DataFrame({"cell_id": np.repeat(["x0", "x1"], 100), "label": np.tile(labels, 2),
    ...                       "score": rng.normal(size=200) + np.tile(labels, 2), "group": np.tile(np.arange(100), 2)})
    >>> df = pd.DataFrame({"cell_id": ["x0", "x1"], "status": "ok", "backbone": "b", "source": "s", "seed": [0, 1],
    ...                    "ft_fraction": 0.0, "target": "t", "transfer": "full", "auc": [0.1, 0.9]})
    >>> out = seed_bootstraps(df, preds, cell_intervals(df))
    >>> out["seed"].tolist(), bool(((out["low"] < out["auc"]) & (out["auc"] < out["high"])).all())
    ([0, 1], True)
    """
    keys = list(keys)
    columns = [*keys, "seed", "auc", "low", "high"]
    if predictions is None or predictions.empty or intervals.empty:
        return pd.DataFrame(columns=columns)
    ok = frame[(frame["status"] == "ok") & np.isfinite(frame["auc"].to_numpy(dtype=float))]
    by_cell = dict(tuple(predictions.groupby("cell_id", sort=False)))
    few_cells = intervals[(intervals["method"] == "t") & (intervals["n"] < few)]
    rows = []
    for _, cell in few_cells.iterrows():
        match = np.ones(len(ok), dtype=bool)
        for k in keys:
            match &= (ok[k] == cell[k]).to_numpy()
        for rec in ok[match].itertuples():
            preds = by_cell.get(rec.cell_id)
            if preds is None or preds.empty:
                continue
            ci = bootstrap_auc_ci(preds["label"].to_numpy(), preds["score"].to_numpy(), preds["group"].to_numpy(),
                                  n_resamples=n_resamples, confidence=confidence, seed=seed)
            if math.isfinite(ci["low"]):
                rows.append({**{k: cell[k] for k in keys}, "seed": rec.seed, "auc": ci["auc"], "low": ci["low"],
                             "high": ci["high"]})
    return pd.DataFrame(rows, columns=columns)
