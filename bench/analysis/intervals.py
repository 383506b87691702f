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
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.analysis.stats import bootstrap_auc_ci, seed_summary

__all__ = ["CELL_KEYS", "cell_intervals", "seed_intervals"]

#: The axes that identify one table cell (everything but the seed).
CELL_KEYS = ("backbone", "source", "ft_fraction", "target", "transfer")

_COLUMNS = ["n", "mean", "std", "half_width", "low", "high", "method"]


def seed_intervals(frame: pd.DataFrame, value: str, *, keys: Sequence[str], confidence: float = 0.95
                   ) -> pd.DataFrame:
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

    Returns
    -------
    DataFrame
        One row per group: ``keys``, ``n``, ``mean``, ``std``, ``half_width``, ``low``, ``high``, ``method``
        (``"t"`` with two or more values, ``"single"`` with one, ``"none"`` without any).

    Examples
    --------
    >>> df = pd.DataFrame({"layer": ["a", "a", "a", "b"], "sim": [0.8, 0.9, 1.0, 0.5]})
    >>> out = seed_intervals(df, "sim", keys=["layer"])
    >>> out[["layer", "n", "mean", "method"]].to_numpy().tolist()
    [['a', 3, 0.9, 't'], ['b', 1, 0.5, 'single']]
    >>> round(float(out.loc[0, "half_width"]), 4)           # t_{0.975, 2} * 0.1 / sqrt(3)
    0.2484
    """
    keys = list(keys)
    rows = []
    for group, sub in frame.groupby(keys, sort=False, dropna=False):
        summary = seed_summary(sub[value].to_numpy(dtype=float), confidence=confidence)
        method = "t" if summary["n"] >= 2 else ("single" if summary["n"] == 1 else "none")
        rows.append({**dict(zip(keys, group if isinstance(group, tuple) else (group,))),
                     **{k: summary[k] for k in ("n", "mean", "std", "half_width", "low", "high")}, "method": method})
    return pd.DataFrame(rows, columns=[*keys, *_COLUMNS])


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
        ``half_width``, ``low``, ``high`` and ``method``: ``"t"``, ``"bootstrap"`` or ``"single"`` (one seed, no
        interval).
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
