"""bench.analysis.stats: agreement with scikit-learn and direct formulas, calibration in simulation, edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from bench.analysis import stats as st
from bench.analysis.stats import (
    bootstrap_auc_ci,
    delong_auc_ci,
    delong_test,
    delong_variance,
    holm,
    seed_summary,
)


def binormal(rng, n_pos, n_neg, separation):
    """Labels and scores with true AUC Phi(separation / sqrt(2))."""
    labels = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return labels, rng.normal(size=n_pos + n_neg) + separation * labels


def quadratic_delong(labels, a, b):
    """DeLong et al. (1988) with explicit O(n_pos * n_neg) placement values, for checking the midrank version."""
    y = np.asarray(labels)

    def placements(s):
        psi = (s[y == 1][:, None] > s[y == 0][None, :]) + 0.5 * (s[y == 1][:, None] == s[y == 0][None, :])
        return psi.mean(axis=1), psi.mean(axis=0), psi.mean()

    (va, wa, auc_a), (vb, wb, auc_b) = placements(a), placements(b)
    m, n = len(va), len(wa)
    cov = np.cov(np.vstack([va, vb])) / m + np.cov(np.vstack([wa, wb])) / n
    return auc_a, auc_b, cov


# --------------------------------------------------------------------------- DeLong: exactness

def test_delong_auc_equals_sklearn_roc_auc_score_with_ties():
    rng = np.random.default_rng(0)
    labels, scores = binormal(rng, 70, 130, 1.0)
    tied = np.round(scores, 1)                       # many ties, within and across classes
    assert delong_auc_ci(labels, tied)["auc"] == pytest.approx(roc_auc_score(labels, tied), abs=1e-14)
    t = delong_test(labels, tied, scores)
    assert t["auc_a"] == pytest.approx(roc_auc_score(labels, tied), abs=1e-14)
    assert t["auc_b"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-14)


def test_midranks_equal_scipy_average_ranks():
    x = np.random.default_rng(1).integers(0, 20, size=500).astype(float)
    np.testing.assert_allclose(st._midranks(x), sps.rankdata(x, method="average"))


def test_fast_delong_equals_quadratic_definition():
    rng = np.random.default_rng(2)
    labels, a = binormal(rng, 60, 90, 1.0)
    b = np.round(a + rng.normal(size=150), 1)
    auc_a, auc_b, cov = quadratic_delong(labels, a, b)
    t = delong_test(labels, a, b)
    assert (t["auc_a"], t["auc_b"]) == (pytest.approx(auc_a, abs=1e-14), pytest.approx(auc_b, abs=1e-14))
    assert t["se"] == pytest.approx(math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), rel=1e-10)
    assert delong_variance(labels, b) == pytest.approx(cov[1, 1], rel=1e-10)
    assert t["p_value"] == pytest.approx(2 * sps.norm.sf(abs(t["z"])), rel=1e-12)


def test_delong_test_is_antisymmetric_and_exact_for_identical_models():
    rng = np.random.default_rng(3)
    labels, a = binormal(rng, 50, 50, 1.0)
    b = a + rng.normal(size=100)
    ab, ba = delong_test(labels, a, b), delong_test(labels, b, a)
    assert ab["difference"] == pytest.approx(-ba["difference"]) and ab["z"] == pytest.approx(-ba["z"])
    assert ab["p_value"] == pytest.approx(ba["p_value"])
    same = delong_test(labels, a, 3 * a - 1)        # a monotone transform ranks identically
    assert same["difference"] == 0 and same["se"] == 0 and same["p_value"] == 1.0
    perfect = delong_test(labels, labels + 0.1 * rng.random(100), 2.0 * labels)
    assert perfect["auc_a"] == perfect["auc_b"] == 1.0 and perfect["p_value"] == 1.0


# --------------------------------------------------------------------------- DeLong and bootstrap: calibration

def test_delong_variance_agrees_with_bootstrap_and_sampling_variance():
    rng = np.random.default_rng(4)
    labels, scores = binormal(rng, 150, 150, 1.0)
    boot = bootstrap_auc_ci(labels, scores, n_resamples=2000, seed=1)
    assert boot["std"] ** 2 / delong_variance(labels, scores) == pytest.approx(1.0, abs=0.2)
    # and both estimate the variance of the AUC over repeated samples
    aucs, variances = [], []
    for _ in range(400):
        labels, scores = binormal(rng, 100, 100, 1.0)
        aucs.append(roc_auc_score(labels, scores))
        variances.append(delong_variance(labels, scores))
    assert np.var(aucs, ddof=1) / np.mean(variances) == pytest.approx(1.0, abs=0.2)


def test_delong_variance_of_a_paired_difference_agrees_with_paired_bootstrap():
    rng = np.random.default_rng(5)
    labels, signal = binormal(rng, 120, 180, 1.0)
    a, b = signal + 0.5 * rng.normal(size=300), signal + 1.0 * rng.normal(size=300)
    diffs = []
    for _ in range(600):
        idx = rng.integers(0, 300, size=300)
        if 0 < labels[idx].sum() < 300:
            diffs.append(roc_auc_score(labels[idx], a[idx]) - roc_auc_score(labels[idx], b[idx]))
    assert np.var(diffs, ddof=1) / delong_test(labels, a, b)["se"] ** 2 == pytest.approx(1.0, abs=0.25)


def test_intervals_cover_the_true_auc_about_95_percent_of_the_time():
    rng = np.random.default_rng(6)
    separation = 1.2
    true_auc = sps.norm.cdf(separation / math.sqrt(2))
    hits_boot = hits_delong = 0
    n_sim = 200
    for i in range(n_sim):
        labels, scores = binormal(rng, 80, 120, separation)
        boot = bootstrap_auc_ci(labels, scores, n_resamples=400, seed=i)
        hits_boot += boot["low"] <= true_auc <= boot["high"]
        ci = delong_auc_ci(labels, scores)
        hits_delong += ci["low"] <= true_auc <= ci["high"]
    # 95 % +- 3 binomial standard errors (1.5 %) of 200 simulations
    assert 0.90 <= hits_boot / n_sim <= 0.99
    assert 0.90 <= hits_delong / n_sim <= 0.99


def test_delong_test_holds_its_level_under_the_null():
    rng = np.random.default_rng(7)
    rejections = 0
    n_sim = 400
    for _ in range(n_sim):
        labels, signal = binormal(rng, 60, 90, 1.0)
        # two different but equally good models: same signal, independent noise of the same size
        t = delong_test(labels, signal + rng.normal(size=150), signal + rng.normal(size=150))
        rejections += t["p_value"] < 0.05
    assert 0.02 <= rejections / n_sim <= 0.09


# --------------------------------------------------------------------------- bootstrap details

def test_bootstrap_matches_explicit_resampling_with_roc_auc_score():
    # Rebuild the same resamples (same generator calls) and score each with scikit-learn.
    rng = np.random.default_rng(8)
    n = 90
    labels = rng.integers(0, 2, size=n)
    scores = np.round(rng.normal(size=n) + labels, 1)            # ties
    groups = np.sort(rng.integers(0, 30, size=n))                 # unequal group sizes, 30 patients at most
    ids, codes = np.unique(groups, return_inverse=True)
    got = bootstrap_auc_ci(labels, scores, groups, n_resamples=250, seed=3)
    draws = np.random.default_rng(3)
    aucs, skipped = [], 0
    for start in range(0, 250, st._BATCH):
        for row in draws.integers(0, len(ids), size=(min(st._BATCH, 250 - start), len(ids))):
            idx = np.concatenate([np.flatnonzero(codes == g) for g in row])
            if labels[idx].min() == labels[idx].max():
                skipped += 1
            else:
                aucs.append(roc_auc_score(labels[idx], scores[idx]))
    assert got["n_skipped"] == skipped and got["n_groups"] == len(ids)
    assert got["low"] == pytest.approx(np.quantile(aucs, 0.025), abs=1e-12)
    assert got["high"] == pytest.approx(np.quantile(aucs, 0.975), abs=1e-12)
    assert got["std"] == pytest.approx(np.std(aucs, ddof=1), abs=1e-12)
    assert got["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-14)


def test_bootstrap_resamples_patients_not_images():
    rng = np.random.default_rng(9)
    labels, scores = binormal(rng, 60, 90, 1.0)
    # every patient contributes four copies of (almost) the same image
    rep_labels, rep_scores = np.repeat(labels, 4), np.repeat(scores, 4) + 1e-6 * rng.normal(size=600)
    patients = np.repeat(np.arange(150), 4)

    def width(ci):
        return ci["high"] - ci["low"]

    by_patient = bootstrap_auc_ci(rep_labels, rep_scores, patients)
    by_image = bootstrap_auc_ci(rep_labels, rep_scores)
    one_each = bootstrap_auc_ci(labels, scores)
    assert width(by_image) < 0.65 * width(by_patient)         # treating copies as independent is overconfident
    assert width(by_patient) == pytest.approx(width(one_each), rel=0.2)
    strings = np.array([f"P{p:03d}" for p in patients])
    assert bootstrap_auc_ci(rep_labels, rep_scores, strings) == by_patient


def test_bootstrap_is_reproducible_and_groups_none_means_one_image_each():
    rng = np.random.default_rng(10)
    labels, scores = binormal(rng, 40, 60, 1.0)
    first = bootstrap_auc_ci(labels, scores, seed=5)
    assert bootstrap_auc_ci(labels, scores, seed=5) == first
    assert bootstrap_auc_ci(labels, scores, np.arange(100), seed=5) == first
    assert bootstrap_auc_ci(labels, scores, seed=6)["low"] != first["low"]
    assert bootstrap_auc_ci(labels, scores, confidence=0.5)["high"] < first["high"]


def test_bootstrap_skips_and_reports_resamples_with_one_class():
    labels, scores = np.array([0, 0, 0, 0, 0, 1]), np.array([0.1, 0.5, -1.0, 2.0, 0.0, 1.0])
    with pytest.warns(UserWarning, match="held a single class"):
        ci = bootstrap_auc_ci(labels, scores, n_resamples=2000)
    # a resample misses the single positive with probability (5/6)**6 = 0.335
    assert 0.30 * 2000 < ci["n_skipped"] < 0.37 * 2000
    assert 0 <= ci["low"] <= ci["high"] <= 1


def test_single_class_gives_nan_not_an_error():
    labels, scores = np.ones(5, int), np.linspace(-1, 1, 5)
    assert math.isnan(bootstrap_auc_ci(labels, scores)["auc"])
    assert math.isnan(delong_auc_ci(labels, scores)["auc"])
    t = delong_test(labels, scores, -scores)
    assert math.isnan(t["p_value"]) and t["n_pos"] == 5 and t["n_neg"] == 0
    assert math.isnan(delong_variance([0, 1, 1], [0.0, 1.0, 2.0]))   # one negative: no variance estimate


@pytest.mark.parametrize("call, match", [
    (lambda: bootstrap_auc_ci([0, 1, 1], [0.1, 0.2]), "same length"),
    (lambda: bootstrap_auc_ci([0, 1, 2], [0.1, 0.2, 0.3]), "binary"),
    (lambda: bootstrap_auc_ci([0, 1], [0.1, 0.2], groups=[1]), "one patient id per image"),
    (lambda: bootstrap_auc_ci([0, 1], [0.1, 0.2], n_resamples=0), "'n_resamples'"),
    (lambda: bootstrap_auc_ci([0, 1], [0.1, 0.2], confidence=95), "'confidence'"),
    (lambda: delong_test([0, 1], [0.1, 0.2], [0.1]), "same length"),
    (lambda: delong_auc_ci([0, 1], [0.1, np.nan]), "finite"),
    (lambda: holm([0.1, 1.2]), r"\[0, 1\]"),
    (lambda: holm([[0.1]]), "1-D"),
    (lambda: seed_summary([0.8, 0.9], confidence=0), "'confidence'"),
    (lambda: seed_summary([0.8, 0.9], value_range=(1, 0)), "'value_range'"),
    (lambda: seed_summary([0.8, 0.9], value_range=0.5), "'value_range'"),
])
def test_invalid_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- Holm and seeds

def test_holm_hand_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06 (monotone)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])
    np.testing.assert_allclose(holm([0.04]), [0.04])
    np.testing.assert_allclose(holm([0.01, np.nan, 0.02]), [0.02, np.nan, 0.02])
    assert holm([]).shape == (0,)


def test_holm_equals_its_definition_and_lies_between_raw_and_bonferroni():
    p = np.random.default_rng(11).uniform(0, 0.2, size=12)
    m = len(p)
    order = np.argsort(p)
    expected = np.empty(m)
    for rank, i in enumerate(order):
        expected[i] = min(1.0, max((m - j) * p[order[j]] for j in range(rank + 1)))
    got = holm(p)
    np.testing.assert_allclose(got, expected)
    assert np.all(p <= got) and np.all(got <= np.minimum(1, m * p))


def test_seed_summary_values():
    s = seed_summary([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["n"] == 4 and s["n_missing"] == 0
    assert s["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert s["half_width"] == pytest.approx(sps.t.ppf(0.975, 3) * s["std"] / 2)
    assert (s["low"], s["high"]) == (pytest.approx(2.5 - s["half_width"]), pytest.approx(2.5 + s["half_width"]))
    assert seed_summary([1.0, 2.0, 3.0, 4.0], confidence=0.9)["half_width"] < s["half_width"]


def test_seed_summary_is_nan_safe():
    s = seed_summary([0.8, np.nan, 0.9, np.nan])
    assert s["n"] == 2 and s["n_missing"] == 2 and s["mean"] == pytest.approx(0.85)
    assert s["half_width"] == pytest.approx(sps.t.ppf(0.975, 1) * np.std([0.8, 0.9], ddof=1) / math.sqrt(2))
    one = seed_summary([0.7])
    assert one["mean"] == 0.7 and one["n"] == 1
    assert all(math.isnan(one[k]) for k in ("std", "half_width", "low", "high"))
    none = seed_summary([np.nan, np.nan])
    assert none["n"] == 0 and math.isnan(none["mean"]) and math.isnan(none["std"])
    assert seed_summary([])["n"] == 0


def test_seed_summary_cuts_the_interval_at_the_metric_range_but_not_the_half_width():
    s = seed_summary([0.1, 0.9], value_range=(0, 1))
    assert s["half_width"] == pytest.approx(sps.t.ppf(0.975, 1) * np.std([0.1, 0.9], ddof=1) / math.sqrt(2))
    assert (s["low"], s["high"], s["clipped"]) == (0.0, 1.0, True)
    ratio = seed_summary([1.0, 3.0], value_range=(0, math.inf))              # beta: cut below only
    assert ratio["low"] == 0.0 and ratio["high"] == pytest.approx(2.0 + ratio["half_width"]) and ratio["clipped"]
    inside = seed_summary([0.80, 0.84, 0.79, 0.85, 0.82], value_range=(0, 1))
    assert not inside["clipped"] and inside == {**seed_summary([0.80, 0.84, 0.79, 0.85, 0.82]), "clipped": False}
    assert not seed_summary([0.7], value_range=(0, 1))["clipped"]           # no interval, nothing cut
