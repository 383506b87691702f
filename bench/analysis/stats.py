"""How sure a number is: AUC intervals, paired AUC tests, multiplicity correction and summaries over seeds.

Pure functions in scikit-learn's style: data arguments are positional, options keyword-only, no I/O, no torch and
no GPU. Everything is recomputed from the ``predictions`` stored in records (``label``, ``score`` -- a logit margin
-- and the patient id), so a report never needs to retrain or re-run a network.

- :func:`bootstrap_auc_ci`: percentile bootstrap interval of an AUC that resamples *patients* (groups) rather than
  images, since images of one patient are not independent.
- :func:`delong_test`: DeLong, DeLong & Clarke-Pearson (1988) test for two correlated AUCs measured on the same
  images, with the O(n log n) midrank algorithm of Sun & Xu (2014). :func:`delong_variance` and
  :func:`delong_auc_ci` give the variance and a normal interval of a single AUC. DeLong's variance treats images as
  independent; use the patient bootstrap when patients contribute several images.
- :func:`holm`: Holm (1979) step-down adjusted p-values, for the comparisons within one table.
- :func:`seed_summary`: mean, standard deviation and t interval of a metric over training seeds.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from bench.analysis.metrics import check_binary

__all__ = ["bootstrap_auc_ci", "delong_auc_ci", "delong_test", "delong_variance", "holm", "seed_summary"]

# Resamples drawn per batch. Fixed, so that results depend only on ``seed``, never on the data size.
_BATCH = 100


def _check_confidence(confidence: float, caller: str) -> float:
    c = float(confidence)
    if not 0 < c < 1:
        raise ValueError(f"The 'confidence' parameter of {caller} must be in (0, 1), e.g. 0.95. "
                         f"Got {confidence!r} instead.")
    return c


def _check_range(value_range, caller: str) -> tuple[float, float]:
    """``(lowest, highest)`` of a metric, (-inf, inf) for None."""
    if value_range is None:
        return -math.inf, math.inf
    try:
        lowest, highest = (float(x) for x in value_range)
    except (TypeError, ValueError):
        lowest, highest = math.nan, math.nan
    if not lowest < highest:  # also False for NaN
        raise ValueError(f"The 'value_range' parameter of {caller} must be (lowest, highest) with lowest < highest, "
                         f"e.g. (0, 1). Got {value_range!r} instead.")
    return lowest, highest


# ----------------------------------------------------------------------------------------------------------------
# Bootstrap
# ----------------------------------------------------------------------------------------------------------------

def bootstrap_auc_ci(labels, scores, groups=None, *, n_resamples: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> dict[str, float | int]:
    """Percentile bootstrap confidence interval of the AUC, resampling patients (groups) instead of images.

    Each resample draws as many groups as there are, with replacement, and keeps every image of each drawn group
    (a group drawn twice counts twice). Without ``groups`` every image is its own group. Resamples that contain
    only one class have no AUC: they are skipped and counted in ``n_skipped``; the interval is then conditional on
    both classes being present.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        True labels, 1 = malignant (positive), 0 = benign or normal.
    scores : array-like of shape (n_samples,)
        Logit margins ``logit1 - logit0`` (any monotone score gives the same AUC).
    groups : array-like of shape (n_samples,), optional
        Patient id of each image (any hashable values). None treats images as independent.
    n_resamples : int, default=2000
        Number of bootstrap resamples.
    confidence : float, default=0.95
        Coverage of the interval.
    seed : int, default=0
        Seed of ``numpy.random.default_rng``; the same seed gives the same interval.

    Returns
    -------
    dict
        ``auc`` (on all the data), ``low`` and ``high`` (percentiles ``(1 - confidence) / 2`` and
        ``(1 + confidence) / 2`` of the resampled AUCs, linearly interpolated), ``std`` (bootstrap standard
        error), ``confidence``, ``n_resamples``, ``n_skipped``, ``n_groups``. All floats are NaN when the data hold
        only one class, or when every resample was skipped.

    Raises
    ------
    ValueError
        If the inputs are not 1-D of equal, non-zero length, labels are not 0/1, a score is not finite,
        ``groups`` has another length, ``n_resamples < 1``, or ``confidence`` is not in (0, 1).

    Warns
    -----
    UserWarning
        When more than 5 % of the resamples had a single class (too few patients of one class for a reliable
        interval).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 100)
    >>> scores = rng.normal(size=200) + 1.5 * labels
    >>> ci = bootstrap_auc_ci(labels, scores)
    >>> round(ci["auc"], 3), round(ci["low"], 3), round(ci["high"], 3), ci["n_skipped"]
    (0.836, 0.78, 0.89, 0)
    >>> patients = np.arange(200) // 4            # four images per patient
    >>> bootstrap_auc_ci(labels, scores, patients)["n_groups"]
    50
    """
    caller = "bootstrap_auc_ci"
    y, s = check_binary(labels, scores, caller)
    confidence = _check_confidence(confidence, caller)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"The 'n_resamples' parameter of {caller} must be an int >= 1. Got {n_resamples!r} instead.")
    if groups is None:
        codes, n_groups = np.arange(len(y)), len(y)
    else:
        g = np.asarray(groups)
        if g.shape != y.shape:
            raise ValueError(f"{caller}: 'groups' must have one patient id per image, shape {y.shape}; got shape "
                             f"{g.shape}.")
        _, codes = np.unique(g, return_inverse=True)
        codes = codes.ravel()
        n_groups = int(codes.max()) + 1
    out: dict[str, float | int] = {"auc": math.nan, "low": math.nan, "high": math.nan, "std": math.nan,
                                   "confidence": confidence, "n_resamples": int(n_resamples), "n_skipped": 0,
                                   "n_groups": n_groups}
    if y.min() == y.max():
        out["n_skipped"] = int(n_resamples)
        return out
    out["auc"] = float(roc_auc_score(y, s))

    # Weighted Mann-Whitney statistic: sort once; each resample only changes the images' multiplicities.
    order = np.argsort(s, kind="mergesort")
    s_sorted, pos, code = s[order], y[order].astype(bool), codes[order]
    tie_starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    rng = np.random.default_rng(seed)
    aucs = []
    for start in range(0, n_resamples, _BATCH):
        b = min(_BATCH, n_resamples - start)
        draws = rng.integers(0, n_groups, size=(b, n_groups))
        counts = np.bincount((draws + n_groups * np.arange(b)[:, None]).ravel(), minlength=b * n_groups)
        weights = counts.reshape(b, n_groups)[:, code].astype(np.float64)        # (b, n) image multiplicities
        w_pos = np.add.reduceat(np.where(pos, weights, 0.0), tie_starts, axis=1)  # per tied score level
        w_neg = np.add.reduceat(np.where(pos, 0.0, weights), tie_starts, axis=1)
        below = np.cumsum(w_neg, axis=1) - w_neg                                 # negatives strictly below
        wins = np.sum(w_pos * (below + 0.5 * w_neg), axis=1)
        n_pos, n_neg = w_pos.sum(axis=1), w_neg.sum(axis=1)
        ok = (n_pos > 0) & (n_neg > 0)
        aucs.append(wins[ok] / (n_pos[ok] * n_neg[ok]))
    auc_samples = np.concatenate(aucs)
    out["n_skipped"] = int(n_resamples - len(auc_samples))
    if out["n_skipped"] > 0.05 * n_resamples:
        warnings.warn(f"{caller}: {out['n_skipped']} of {n_resamples} resamples held a single class and were "
                      f"skipped; with so few {'patients' if groups is not None else 'images'} of one class the "
                      "interval is unreliable.", UserWarning, stacklevel=2)
    if len(auc_samples):
        alpha = 1 - confidence
        low, high = np.quantile(auc_samples, [alpha / 2, 1 - alpha / 2])
        out.update(low=float(low), high=float(high),
                   std=float(auc_samples.std(ddof=1)) if len(auc_samples) > 1 else math.nan)
    return out


# ----------------------------------------------------------------------------------------------------------------
# DeLong
# ----------------------------------------------------------------------------------------------------------------

def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, ties sharing their average rank, in O(n log n)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(xs)]
    ranks = np.empty(len(x))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def _delong(y: np.ndarray, score_rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """AUCs and their DeLong covariance matrix for several scores of the same images (Sun & Xu 2014)."""
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    aucs, v10, v01 = [], [], []
    for s in score_rows:
        sp, sn = s[pos], s[neg]
        tz = _midranks(np.concatenate([sp, sn]))
        tx, ty = _midranks(sp), _midranks(sn)
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((tz[:m] - tx) / n)          # per positive: share of negatives ranked below it (ties count 1/2)
        v01.append(1.0 - (tz[m:] - ty) / m)    # per negative: share of positives ranked above it
    k = len(score_rows)
    if m < 2 or n < 2:
        return np.array(aucs), np.full((k, k), math.nan), m, n
    cov = np.cov(np.array(v10), ddof=1).reshape(k, k) / m + np.cov(np.array(v01), ddof=1).reshape(k, k) / n
    return np.array(aucs), cov, m, n


def _check_scores_pair(labels, scores_a, scores_b, caller: str):
    y, a = check_binary(labels, scores_a, caller)
    _, b = check_binary(labels, scores_b, caller)
    return y, a, b


def delong_variance(labels, scores) -> float:
    """DeLong's estimate of the variance of an empirical AUC.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        True labels, 0/1.
    scores : array-like of shape (n_samples,)
        Logit margins (any monotone score).

    Returns
    -------
    float
        ``var(AUC) = S10 / n_pos + S01 / n_neg``, the sample variances of the structural components (placement
        values) of the positives and negatives; NaN with fewer than 2 images of a class.

    Raises
    ------
    ValueError
        As :func:`bench.analysis.metrics.binary_metrics`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 100)
    >>> scores = rng.normal(size=200) + 1.5 * labels
    >>> round(delong_variance(labels, scores) ** 0.5, 4)   # standard error of the AUC
    0.0278
    """
    y, s = check_binary(labels, scores, "delong_variance")
    return float(_delong(y, [s])[1][0, 0])


def delong_auc_ci(labels, scores, *, confidence: float = 0.95) -> dict[str, float | int]:
    """AUC with DeLong's standard error and the normal interval ``auc -/+ z * se``, clipped to [0, 1].

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        True labels, 0/1.
    scores : array-like of shape (n_samples,)
        Logit margins (any monotone score).
    confidence : float, default=0.95
        Coverage of the interval.

    Returns
    -------
    dict
        ``auc, se, low, high, confidence`` (floats) and ``n_pos, n_neg``; the floats other than ``confidence``
        are NaN when a class has fewer than 2 images (``auc`` when it has none).

    Raises
    ------
    ValueError
        As :func:`bench.analysis.metrics.binary_metrics`, or if ``confidence`` is not in (0, 1).

    Notes
    -----
    The normal interval usually reported with DeLong's variance (as by pROC's ``ci.auc(method="delong")``). It
    treats images as independent: when patients contribute several images, prefer :func:`bootstrap_auc_ci` with
    ``groups``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 100)
    >>> ci = delong_auc_ci(labels, rng.normal(size=200) + 1.5 * labels)
    >>> round(ci["auc"], 3), round(ci["low"], 3), round(ci["high"], 3)
    (0.836, 0.782, 0.891)
    """
    caller = "delong_auc_ci"
    confidence = _check_confidence(confidence, caller)
    y, s = check_binary(labels, scores, caller)
    m, n = int(y.sum()), int(len(y) - y.sum())
    out: dict[str, float | int] = {"auc": math.nan, "se": math.nan, "low": math.nan, "high": math.nan,
                                   "confidence": confidence, "n_pos": m, "n_neg": n}
    if m == 0 or n == 0:
        return out
    aucs, cov, _, _ = _delong(y, [s])
    se = math.sqrt(cov[0, 0]) if np.isfinite(cov[0, 0]) else math.nan
    half = sps.norm.ppf(0.5 + confidence / 2) * se
    out.update(auc=float(aucs[0]), se=se, low=float(max(0.0, aucs[0] - half)), high=float(min(1.0, aucs[0] + half)))
    return out


def delong_test(labels, scores_a, scores_b) -> dict[str, float | int]:
    """DeLong's test for the difference between two correlated AUCs measured on the same images.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        True labels, 0/1.
    scores_a : array-like of shape (n_samples,)
        Logit margins of model A (e.g. DDSM-pretrained) on the images.
    scores_b : array-like of shape (n_samples,)
        Logit margins of model B (e.g. randomly initialised) on the *same* images, in the same order.

    Returns
    -------
    dict
        ``auc_a, auc_b``; ``difference = auc_a - auc_b``; ``se``, its standard error (``var_a + var_b -
        2 cov_ab`` under DeLong's covariance); ``z = difference / se``; two-sided ``p_value``; ``n_pos, n_neg``.
        When ``se`` is 0 (e.g. both models separate the classes perfectly) ``z`` is 0 and ``p_value`` 1 for equal
        AUCs, ``z`` is +-inf and ``p_value`` 0 otherwise. Everything but the counts is NaN with fewer than 2 images
        of a class.

    Raises
    ------
    ValueError
        As :func:`bench.analysis.metrics.binary_metrics`, for either score vector.

    Notes
    -----
    The covariance of the two AUCs comes from the structural components of DeLong et al. (1988), computed with
    midranks in O(n log n) as in Sun & Xu (2014): the test of pROC's ``roc.test(method="delong", paired=TRUE)``.
    Like the DeLong variance it treats images as independent.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 150)
    >>> signal = rng.normal(size=300) + 1.2 * labels
    >>> t = delong_test(labels, signal + 0.5 * rng.normal(size=300), signal + 1.5 * rng.normal(size=300))
    >>> round(t["auc_a"], 3), round(t["auc_b"], 3), round(t["z"], 2), round(t["p_value"], 4)
    (0.722, 0.661, 2.06, 0.0392)
    """
    caller = "delong_test"
    y, a, b = _check_scores_pair(labels, scores_a, scores_b, caller)
    m, n = int(y.sum()), int(len(y) - y.sum())
    out: dict[str, float | int] = {"auc_a": math.nan, "auc_b": math.nan, "difference": math.nan, "se": math.nan,
                                   "z": math.nan, "p_value": math.nan, "n_pos": m, "n_neg": n}
    if m == 0 or n == 0:
        return out
    aucs, cov, _, _ = _delong(y, [a, b])
    diff = float(aucs[0] - aucs[1])
    out.update(auc_a=float(aucs[0]), auc_b=float(aucs[1]), difference=diff)
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    if not np.isfinite(var):
        return out
    se = math.sqrt(max(var, 0.0))
    # Tiny negative or positive rounding of var when the two score vectors rank identically is treated as 0.
    if se <= 1e-12 * max(1.0, abs(diff)):
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        se = 0.0
    else:
        z = diff / se
    out.update(se=se, z=float(z), p_value=float(2 * sps.norm.sf(abs(z))))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Multiplicity and seeds
# ----------------------------------------------------------------------------------------------------------------

def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (Holm 1979).

    With the ``m`` p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted values are
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``, returned in the input order. A comparison is significant at
    family-wise level ``alpha`` when its adjusted p-value is ``<= alpha``. Holm controls the family-wise error
    under any dependence between the tests and is uniformly more powerful than Bonferroni.

    Parameters
    ----------
    pvalues : array-like of shape (m,)
        Raw p-values in [0, 1]. NaN marks a comparison that was not made: it stays NaN and is not counted in
        ``m``.

    Returns
    -------
    ndarray of shape (m,)
        Adjusted p-values, float64.

    Raises
    ------
    ValueError
        If ``pvalues`` is not 1-D or a value lies outside [0, 1].

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005])
    array([0.03, 0.06, 0.06, 0.02])
    >>> holm([0.2, float("nan"), 0.01])
    array([0.2 ,  nan, 0.02])
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"holm: 'pvalues' must be 1-D; got shape {p.shape}.")
    tested = ~np.isnan(p)
    if np.any((p[tested] < 0) | (p[tested] > 1)):
        raise ValueError(f"holm: p-values must lie in [0, 1]; got {p[tested][(p[tested] < 0) | (p[tested] > 1)][:5]}.")
    pv = p[tested]
    m = len(pv)
    order = np.argsort(pv, kind="mergesort")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * pv[order]))
    out = np.full(p.shape, np.nan)
    ranked = np.empty(m)
    ranked[order] = adjusted
    out[tested] = ranked
    return out


def seed_summary(values, *, confidence: float = 0.95,
                 value_range: tuple[float, float] | None = None) -> dict[str, float | int | bool]:
    """Mean, standard deviation and t interval of one metric over training seeds.

    Parameters
    ----------
    values : array-like of shape (n_seeds,)
        One value per seed (e.g. the AUC of each seed's run). NaN marks a missing run and is left out.
    confidence : float, default=0.95
        Coverage of the interval.
    value_range : tuple of float, optional
        ``(lowest, highest)`` value the metric can take, e.g. ``(0, 1)`` for an AUC or ``(0, inf)`` for a ratio.
        ``low`` and ``high`` are cut at it; None leaves them unbounded.

    Returns
    -------
    dict
        ``mean``; ``std`` (sample standard deviation, ddof=1); ``n`` (non-NaN values); ``n_missing`` (NaNs);
        ``half_width = t_{(1 + confidence) / 2, n - 1} * std / sqrt(n)``; ``low = mean - half_width`` and ``high =
        mean + half_width``, each cut at ``value_range``; ``clipped`` (bool), True when a bound was cut.
        ``half_width`` is never cut. With one value ``std``, ``half_width``, ``low`` and ``high`` are NaN; with
        none, all floats are NaN.

    Raises
    ------
    ValueError
        If ``values`` is not 1-D, ``confidence`` is not in (0, 1) or ``value_range`` is not ``(lowest, highest)``
        with ``lowest < highest``.

    Notes
    -----
    The interval is for the mean over seeds (the expected result of one more training run is far wider); it
    assumes the seeds' results are roughly normal, which few seeds cannot check. With two seeds
    ``t_{0.975, 1} = 12.7``: the interval is 12.7 standard errors wide on each side, and easily reaches past
    what the metric can take; ``value_range`` keeps it inside.

    Examples
    --------
    >>> s = seed_summary([0.80, 0.84, 0.79, 0.85, 0.82])
    >>> round(s["mean"], 3), round(s["std"], 4), s["n"], round(s["half_width"], 4)
    (0.82, 0.0255, 5, 0.0317)
    >>> seed_summary([0.8, float("nan")])["half_width"]
    nan
    >>> s = seed_summary([0.3, 0.7], value_range=(0, 1))      # two seeds: 0.5 +- 2.54, cut at [0, 1]
    >>> round(s["half_width"], 2), s["low"], s["high"], s["clipped"]
    (2.54, 0.0, 1.0, True)
    """
    confidence = _check_confidence(confidence, "seed_summary")
    lowest, highest = _check_range(value_range, "seed_summary")
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"seed_summary: 'values' must be 1-D (one value per seed); got shape {v.shape}.")
    present = v[~np.isnan(v)]
    n = len(present)
    mean = float(present.mean()) if n else math.nan
    std = float(present.std(ddof=1)) if n >= 2 else math.nan
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)) if n >= 2 else math.nan
    low, high = mean - half, mean + half
    clipped = bool(low < lowest or high > highest)  # False for NaN bounds
    return {"mean": mean, "std": std, "n": n, "n_missing": int(len(v) - n), "half_width": half,
            "low": max(low, lowest) if clipped else low, "high": min(high, highest) if clipped else high,
            "clipped": clipped}
