"""Paired comparisons of table cells evaluated on the same images: DeLong per seed, seeds combined, Holm.

Pure functions: DataFrames in, DataFrames out, no I/O, no torch, no GPU; nothing is retrained or re-scored. Two
cells are compared when they differ in one axis only (e.g. ``source``: DDSM vs random initialisation; ``transfer``:
hybrid vs full) and were evaluated on the same images, which the harness guarantees for cells of the same target,
fine-tune fraction and seed (the split depends on nothing else) and this module checks from the stored image ids.

Combining seeds
---------------
Each seed gives one DeLong z (:func:`bench.analysis.stats.delong_test`, signed: positive when the compared cell has
the higher AUC). The seeds are combined by the **mean of their z values**, ``z = mean(z_i)``, with the two-sided
normal p-value of that mean (:func:`combine_seed_z`). Why not the alternatives:

- Stouffer's ``sum(z_i) / sqrt(k)`` assumes independent tests, but the seeds of one column are evaluated on the
  same images (No FT: the whole target; fine-tuning: overlapping 80 % shares), so their z values are positively
  correlated and Stouffer would count the same images k times (anti-conservative). Under the null each ``z_i`` is
  standard normal whatever the dependence, so ``Var(mean z_i) <= 1``: the mean is valid under any dependence, exact
  under complete dependence and conservative (by up to ``sqrt(k)``) under independence.
- A paired t-test over seeds uses only the k seed-level differences: with the usual 3 seeds it has 2 degrees of
  freedom and little power, and it ignores the evaluation images' sampling noise, which DeLong measures.

With one seed the combined test is that seed's DeLong test. Holm's step-down correction (:func:`bench.analysis.
stats.holm`) is applied across every comparison passed in one call: pass one table's comparisons at a time.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench.analysis.stats import delong_test, holm

__all__ = ["align_predictions", "combine_seed_z", "paired_tests"]

_OUT = ["n_seeds", "n_untested", "auc", "auc_reference", "difference", "z", "p_value", "p_holm", "significant",
        "note"]


def combine_seed_z(z) -> tuple[float, float]:
    """Combine per-seed signed DeLong z values: their mean and its two-sided normal p-value.

    Parameters
    ----------
    z : array-like of shape (n_seeds,)
        Signed z of each seed's paired test; NaN values (untested seeds) are left out. ``+-inf`` (both models
        separate the classes perfectly, unequal AUCs) is allowed.

    Returns
    -------
    tuple of float
        ``(z_mean, p_value)``; both NaN when no seed was tested. Opposite infinite values give NaN.

    Examples
    --------
    >>> z, p = combine_seed_z([2.0, 2.5, 1.5])
    >>> z, round(p, 4)
    (2.0, 0.0455)
    >>> combine_seed_z([float("nan")])
    (nan, nan)
    """
    values = np.asarray(z, dtype=float).ravel()
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    mean = float(np.mean(values))
    if math.isnan(mean):
        return math.nan, math.nan
    return mean, float(2 * sps.norm.sf(abs(mean)))


def align_predictions(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Labels and the two score vectors of two cells on the same images, or None if the images differ.

    Parameters
    ----------
    a, b : DataFrame
        Per-image predictions of two cells with columns ``image_id``, ``label``, ``score``.

    Returns
    -------
    tuple of ndarray or None
        ``(labels, scores_a, scores_b)`` ordered by image id; None when the two sets of image ids differ, an id
        repeats, or an image has different labels in the two cells.
    """
    if len(a) != len(b) or a["image_id"].duplicated().any() or b["image_id"].duplicated().any():
        return None
    ids_a, ids_b = a["image_id"].to_numpy(), b["image_id"].to_numpy()
    order_a, order_b = np.argsort(ids_a, kind="stable"), np.argsort(ids_b, kind="stable")
    if not np.array_equal(ids_a[order_a], ids_b[order_b]):
        return None
    labels = a["label"].to_numpy()[order_a]
    if not np.array_equal(labels, b["label"].to_numpy()[order_b]):
        return None
    return (labels.astype(np.int64), a["score"].to_numpy(dtype=float)[order_a],
            b["score"].to_numpy(dtype=float)[order_b])


def paired_tests(frame: pd.DataFrame, predictions: pd.DataFrame, *, axis: str, reference, keys: Sequence[str],
                 alpha: float = 0.05) -> pd.DataFrame:
    """Test every cell against the ``reference`` cell of its column, seed by seed, then over seeds and the table.

    Parameters
    ----------
    frame : DataFrame
        One row per record: ``cell_id``, ``status``, ``seed``, the ``keys`` columns and ``axis``. Pass one table's
        records: Holm's correction runs over every comparison found here.
    predictions : DataFrame
        Per-image predictions: ``cell_id``, ``image_id``, ``label``, ``score``.
    axis : str
        The axis the compared cells differ in, e.g. ``"source"`` or ``"transfer"``.
    reference : object
        The value of ``axis`` compared against, e.g. ``"random"`` or ``"full"``.
    keys : sequence of str
        The other axes that define a column/row together (e.g. backbone, target, ft_fraction, transfer); a
        comparison pairs cells equal on ``keys`` and ``seed``.
    alpha : float, default=0.05
        Family-wise level for ``significant`` (Holm-adjusted p-value ``<= alpha``).

    Returns
    -------
    DataFrame
        One row per compared cell (``keys``, ``axis`` and the columns below), in order of first appearance:
        ``n_seeds`` (seeds tested), ``n_untested`` (seeds where both ran but the evaluation images differ),
        ``auc`` and ``auc_reference`` (means over tested seeds), ``difference`` (their difference), ``z`` and
        ``p_value`` (:func:`combine_seed_z`), ``p_holm``, ``significant`` (bool) and ``note`` (why a cell was not
        tested). A cell whose reference did not run (NA, failed, missing) gets no row.
    """
    keys = list(keys)
    ok = frame[frame["status"] == "ok"]
    by_cell = dict(tuple(predictions.groupby("cell_id", sort=False))) if not predictions.empty else {}
    rows = []
    for column, sub in ok.groupby(keys, sort=False, dropna=False):
        column = column if isinstance(column, tuple) else (column,)
        refs = {r.seed: r.cell_id for r in sub[sub[axis] == reference].itertuples()}
        if not refs:
            continue
        for value, cells in sub[sub[axis] != reference].groupby(axis, sort=False):
            z, auc_a, auc_b, untested = [], [], [], 0
            for rec in cells.itertuples():
                if rec.seed not in refs:
                    continue
                pa, pb = by_cell.get(rec.cell_id), by_cell.get(refs[rec.seed])
                aligned = None if pa is None or pb is None else align_predictions(pa, pb)
                if aligned is None:
                    untested += 1
                    continue
                t = delong_test(*aligned)
                if math.isnan(t["z"]):
                    untested += 1
                    continue
                z.append(t["z"])
                auc_a.append(t["auc_a"])
                auc_b.append(t["auc_b"])
            if not z and not untested:
                continue
            zc, p = combine_seed_z(z)
            note = ""
            if untested:
                note = (f"{untested} seed(s) not tested: the two cells were not evaluated on the same images "
                        "(or an AUC is undefined)")
            mean_a = float(np.mean(auc_a)) if auc_a else math.nan
            mean_b = float(np.mean(auc_b)) if auc_b else math.nan
            rows.append({**dict(zip(keys, column)), axis: value, "n_seeds": len(z), "n_untested": untested,
                         "auc": mean_a, "auc_reference": mean_b, "difference": mean_a - mean_b, "z": zc,
                         "p_value": p, "note": note})
    out = pd.DataFrame(rows, columns=[*keys, axis, *[c for c in _OUT if c not in ("p_holm", "significant")]])
    adjusted = holm(out["p_value"].to_numpy(dtype=float)) if len(out) else np.zeros(0)
    out["p_holm"] = adjusted
    out["significant"] = np.nan_to_num(adjusted, nan=np.inf) <= alpha
    return out[[*keys, axis, *_OUT]]
