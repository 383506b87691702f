"""bench.analysis.metrics: closed forms, agreement with scikit-learn, invariances, edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from bench.analysis import accuracy, binary_metrics, overfit_ratio

KEYS = {"auc", "accuracy", "balanced_accuracy", "f1", "sensitivity", "specificity", "n", "n_pos", "n_neg"}


@pytest.fixture
def random_scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=200)
    scores = rng.normal(size=200) + 0.8 * labels  # informative but imperfect margins
    return labels, scores


# --------------------------------------------------------------------------- AUC closed forms

def test_auc_perfect_separation_is_one():
    assert binary_metrics([0, 0, 0, 1, 1], [-3, -1, 0.5, 0.6, 9])["auc"] == 1.0


def test_auc_reversed_ranking_is_zero():
    assert binary_metrics([1, 1, 0, 0], [-3.0, -1.0, 0.5, 2.0])["auc"] == 0.0


def test_auc_all_tied_scores_is_half():
    assert binary_metrics([0, 1, 0, 1, 1], np.zeros(5))["auc"] == 0.5


def test_auc_counts_ties_between_classes_as_half():
    # negatives score {0, 1}, positives {1, 2}: of the 4 (neg, pos) pairs, 3 are ranked right and
    # (1, 1) is a tie, worth 1/2 -> AUC = 3.5 / 4 (Mann-Whitney U / (n_pos * n_neg))
    assert binary_metrics([0, 0, 1, 1], [0.0, 1.0, 1.0, 2.0])["auc"] == pytest.approx(3.5 / 4)


def test_auc_single_class_is_nan_not_an_error():
    for labels in ([1, 1, 1], [0, 0]):
        m = binary_metrics(labels, np.linspace(-1, 1, len(labels)))
        assert math.isnan(m["auc"])
    only_pos = binary_metrics([1, 1, 1], [1.0, -1.0, 2.0])
    assert only_pos["sensitivity"] == pytest.approx(2 / 3) and math.isnan(only_pos["specificity"])
    only_neg = binary_metrics([0, 0], [1.0, -1.0])
    assert only_neg["specificity"] == 0.5 and math.isnan(only_neg["sensitivity"])


def test_auc_invariant_to_monotone_transforms(random_scores):
    labels, scores = random_scores
    auc = binary_metrics(labels, scores)["auc"]
    for transformed in (3 * scores - 7, np.exp(scores), 1 / (1 + np.exp(-scores)), np.arctan(scores) ** 3):
        assert binary_metrics(labels, transformed)["auc"] == pytest.approx(auc, abs=1e-12)


def test_auc_does_not_depend_on_threshold(random_scores):
    labels, scores = random_scores
    aucs = {binary_metrics(labels, scores, threshold=t)["auc"] for t in (-1.0, 0.0, 0.5, 2.0)}
    assert len(aucs) == 1


def test_auc_negating_scores_gives_one_minus_auc(random_scores):
    labels, scores = random_scores
    assert binary_metrics(labels, -scores)["auc"] == pytest.approx(1 - binary_metrics(labels, scores)["auc"])


# --------------------------------------------------------------------------- threshold metrics

def test_confusion_matrix_metrics_by_hand():
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    scores = [2.0, 0.3, -0.1, -2.0, 0.5, -0.5, -1.0, -3.0, -0.2, 0.0]
    # predicted positive (score > 0): 2.0, 0.3 | 0.5  -> TP=2, FN=2, FP=1, TN=5 (0.0 is not > 0)
    m = binary_metrics(labels, scores)
    assert m["sensitivity"] == 2 / 4
    assert m["specificity"] == 5 / 6
    assert m["accuracy"] == 7 / 10
    assert m["balanced_accuracy"] == pytest.approx((2 / 4 + 5 / 6) / 2)  # Falconi's eq. 13 "AUC"
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert (m["n"], m["n_pos"], m["n_neg"]) == (10, 4, 6)
    assert set(m) == KEYS


def test_threshold_moves_the_decision():
    labels = [0, 0, 1, 1]
    scores = [-1.0, 0.5, 1.0, 3.0]
    assert binary_metrics(labels, scores)["specificity"] == 0.5
    strict = binary_metrics(labels, scores, threshold=0.5)  # 0.5 is not > 0.5
    assert strict["specificity"] == 1.0 and strict["sensitivity"] == 1.0 and strict["accuracy"] == 1.0


def test_matches_scikit_learn(random_scores):
    labels, scores = random_scores
    m = binary_metrics(labels, scores, threshold=0.3)
    pred = (scores > 0.3).astype(int)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert m["accuracy"] == pytest.approx(np.mean(pred == labels))
    assert m["f1"] == pytest.approx(f1_score(labels, pred))
    assert m["sensitivity"] == pytest.approx(np.mean(pred[labels == 1] == 1))
    assert m["specificity"] == pytest.approx(np.mean(pred[labels == 0] == 0))
    assert accuracy(labels, scores, threshold=0.3) == m["accuracy"]


def test_f1_zero_division_is_zero():
    assert binary_metrics([0, 0, 0], [-1.0, -2.0, -3.0])["f1"] == 0.0
    assert binary_metrics([1, 0], [-1.0, -2.0])["f1"] == 0.0


def test_types_and_inputs_accepted():
    m = binary_metrics(np.array([True, False, True]), (0.2, -0.1, 0.0))
    assert all(isinstance(m[k], float) for k in ("auc", "accuracy", "f1", "sensitivity", "specificity"))
    assert all(isinstance(m[k], int) for k in ("n", "n_pos", "n_neg"))
    assert accuracy([0.0, 1.0], [-1, 1]) == 1.0


@pytest.mark.parametrize("labels, scores, match", [
    ([0, 1], [0.1], "same length"),
    ([], [], "empty"),
    ([0, 2], [0.1, 0.2], "binary 0/1"),
    ([[0, 1]], [[0.1, 0.2]], "1-D"),
    ([0, 1], [0.1, float("nan")], "finite"),
    ([0, 1], [0.1, float("inf")], "finite"),
])
def test_bad_inputs_raise_value_error(labels, scores, match):
    with pytest.raises(ValueError, match=match):
        binary_metrics(labels, scores)
    with pytest.raises(ValueError, match=match):
        accuracy(labels, scores)


# --------------------------------------------------------------------------- overfit ratio

def test_overfit_ratio_is_train_over_val():
    assert overfit_ratio(0.9, 0.6) == pytest.approx(1.5)
    assert overfit_ratio(0.8, 0.8) == 1.0
    assert overfit_ratio(0.5, 1.0) == 0.5
    assert overfit_ratio(90, 60) == pytest.approx(1.5)  # scale-free: percentages work too


def test_overfit_ratio_none_when_nothing_was_fine_tuned():
    assert overfit_ratio(None, 0.7) is None
    assert overfit_ratio(0.7, None) is None


def test_overfit_ratio_edge_cases():
    assert overfit_ratio(0.4, 0.0) == math.inf
    assert math.isnan(overfit_ratio(0.0, 0.0))
    assert math.isnan(overfit_ratio(float("nan"), 0.5))
    assert math.isnan(overfit_ratio(0.5, float("nan")))
    assert overfit_ratio(0.0, 0.5) == 0.0


def test_overfit_ratio_rejects_negative_accuracy():
    with pytest.raises(ValueError, match="must be >= 0"):
        overfit_ratio(-0.1, 0.5)


def test_accuracy_balanced_accuracy_and_f1_equal_sklearns_bit_for_bit():
    """binary_metrics derives them from the confusion matrix (for speed); they must stay sklearn's values."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    rng = np.random.default_rng(1)
    for t in range(400):
        n = int(rng.integers(2, 200))
        y = rng.integers(0, 2, n)
        s = rng.normal(size=n) + (0 if t % 5 == 0 else y)
        if t % 7 == 0:
            s = -np.abs(s) - 1  # no positive prediction
        pred = (s > 0).astype(int)
        m = binary_metrics(y, s)
        assert m["accuracy"] == accuracy_score(y, pred)
        assert m["f1"] == f1_score(y, pred, labels=[0, 1], pos_label=1, zero_division=0)
        if 0 < y.sum() < n:
            assert m["balanced_accuracy"] == balanced_accuracy_score(y, pred)


def test_rates_equal_binary_metrics_sensitivity_and_specificity():
    from bench.analysis.metrics import rates

    rng = np.random.default_rng(2)
    for t in range(200):
        n = int(rng.integers(1, 120))
        y = rng.integers(0, 2, n)
        s = rng.normal(size=n) - (3 if t % 6 == 0 else 0)
        m, r = binary_metrics(y, s), rates(y, s)
        for k in ("sensitivity", "specificity"):
            assert r[k] == m[k] or (math.isnan(r[k]) and math.isnan(m[k]))
