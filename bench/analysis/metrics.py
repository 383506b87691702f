"""Per-cell classification metrics: arrays in, numbers out.

Pure functions in scikit-learn's style: data arguments are positional, options keyword-only,
no I/O and no torch, so every number in a report can be recomputed on a laptop from the
``predictions`` stored in a record (``label``, ``score``).

Scores are *logit margins* (``logit1 - logit0``), never softmax probabilities: probabilities
saturate out of domain, tie, and turn a real ranking into a fake AUC of exactly 0.5. A margin
of 0 is the decision boundary, so the default threshold is ``0.0``; the predicted class is
``score > threshold`` (a tie at the threshold is predicted negative).
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    roc_auc_score,
)

__all__ = ["FALCONI_GAP", "accuracy", "binary_metrics", "falconi_flag", "overfit_ratio", "rates"]


def check_binary(labels, scores, caller: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``labels`` (0/1) and ``scores`` (finite floats) to 1-D arrays."""
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=float)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"{caller}: 'labels' and 'scores' must be 1-D; got shapes {y.shape} and {s.shape}. "
                         "Flatten them first, e.g. with np.ravel.")
    if len(y) != len(s):
        raise ValueError(f"{caller}: 'labels' and 'scores' must have the same length; got {len(y)} and {len(s)}.")
    if len(y) == 0:
        raise ValueError(f"{caller}: 'labels' and 'scores' are empty; there is nothing to score.")
    if not np.all(np.isin(y, (0, 1))):
        bad = [v for v in np.unique(y).tolist() if v not in (0, 1)]
        raise ValueError(f"{caller}: 'labels' must be binary 0/1 (1 = malignant); got other values {bad[:5]!r}.")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{caller}: 'scores' must be finite logit margins; got {int((~np.isfinite(s)).sum())} "
                         "NaN or infinite values. A NaN margin usually means the network diverged.")
    return y.astype(np.int64), s


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def binary_metrics(labels, scores, *, threshold: float = 0.0) -> dict[str, float | int]:
    """AUC, accuracy, F1, sensitivity and specificity of binary predictions from logit margins.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        True labels, 1 = malignant (positive), 0 = benign or normal.
    scores : array-like of shape (n_samples,)
        Logit margins ``logit1 - logit0``; larger means more likely malignant.
    threshold : float, default=0.0
        A sample is predicted positive when ``score > threshold``. AUC does not depend on it.

    Returns
    -------
    dict
        ``auc, accuracy, balanced_accuracy, f1, sensitivity, specificity`` (floats) and ``n, n_pos, n_neg`` (ints).
        ``balanced_accuracy`` is (sensitivity + specificity) / 2 = (1 + TPR - FPR) / 2 at the threshold: the
        quantity Falconi et al. call "AUC" (their eq. 13), NaN unless both classes are present.
        ``auc`` is NaN when only one class is present (the ROC curve is undefined);
        ``sensitivity`` is NaN without positives and ``specificity`` NaN without negatives;
        ``f1`` is 0 when there is no positive prediction and no positive label (``zero_division=0``).

    Raises
    ------
    ValueError
        If the inputs are not 1-D of equal, non-zero length, labels are not 0/1, or a score is not finite.

    Examples
    --------
    >>> m = binary_metrics([0, 0, 1, 1], [-2.0, 0.5, 1.0, 3.0])
    >>> m["auc"], m["accuracy"], m["sensitivity"], m["specificity"], m["balanced_accuracy"]
    (1.0, 0.75, 1.0, 0.5, 0.75)
    >>> binary_metrics([1, 1], [0.3, 2.0])["auc"]
    nan
    """
    y, s = check_binary(labels, scores, "binary_metrics")
    pred = (s > threshold).astype(np.int64)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    n_pos, n_neg = tp + fn, tn + fp
    auc = float(roc_auc_score(y, s)) if n_pos and n_neg else math.nan
    # accuracy, balanced accuracy and F1 from the confusion matrix: the values of sklearn's accuracy_score,
    # balanced_accuracy_score and f1_score(zero_division=0) bit for bit (tests/test_metrics.py compares them), at a
    # third of the cost (their input checks dominate on evaluation-sized arrays; the report scores every record)
    return {
        "auc": auc,
        "accuracy": (tp + tn) / len(y),
        "balanced_accuracy": (tn / n_neg + tp / n_pos) / 2 if n_pos and n_neg else math.nan,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "sensitivity": _ratio(tp, n_pos),
        "specificity": _ratio(tn, n_neg),
        "n": len(y),
        "n_pos": n_pos,
        "n_neg": n_neg,
    }


def rates(labels, scores, *, threshold: float = 0.0) -> dict[str, float]:
    """Sensitivity and specificity at ``threshold``: the values of :func:`binary_metrics` without its other
    metrics (no input check; the report scores every record with it). NaN without positives / negatives.

    >>> rates([0, 0, 1, 1], [-2.0, 0.5, 1.0, 3.0])
    {'sensitivity': 1.0, 'specificity': 0.5}
    """
    y = np.asarray(labels) == 1
    pred = np.asarray(scores, dtype=float) > threshold
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return {"sensitivity": _ratio(int((pred & y).sum()), n_pos), "specificity": _ratio(int((~pred & ~y).sum()), n_neg)}


def accuracy(labels, scores, *, threshold: float = 0.0) -> float:
    """Share of samples whose predicted class (``score > threshold``) equals the label.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        True labels, 0/1.
    scores : array-like of shape (n_samples,)
        Logit margins ``logit1 - logit0``.
    threshold : float, default=0.0
        Decision threshold on the margin.

    Returns
    -------
    float
        Accuracy in [0, 1].

    Examples
    --------
    >>> accuracy([0, 1, 1, 0], [-1.0, 2.0, -0.5, 0.0])
    0.75
    >>> accuracy([0, 1, 1, 0], [-1.0, 2.0, -0.5, 0.0], threshold=-1.0)
    0.75
    """
    y, s = check_binary(labels, scores, "accuracy")
    return float(accuracy_score(y, (s > threshold).astype(np.int64)))


def overfit_ratio(train_acc: float | None, val_acc: float | None) -> float | None:
    """Overfitting ratio ``beta = train_acc / val_acc`` (Falconi et al. 2020, eq. 7).

    ``beta`` close to 1 means little overfitting; ``beta > 1`` means training accuracy runs ahead of
    validation accuracy, i.e. the model overfitted. The two accuracies must be on the same scale
    (both fractions or both percentages); the ratio itself has no unit.

    Parameters
    ----------
    train_acc : float or None
        Accuracy on the fine-tuning (training) set; None when nothing was fine-tuned.
    val_acc : float or None
        Accuracy on the evaluation (validation) set.

    Returns
    -------
    float or None
        - None if ``train_acc`` or ``val_acc`` is None (nothing was fine-tuned, or nothing evaluated);
        - NaN if either accuracy is NaN, or both are 0 (0/0 is undefined);
        - ``inf`` if ``val_acc`` is 0 and ``train_acc > 0`` (the most extreme overfitting);
        - ``train_acc / val_acc`` otherwise.

    Raises
    ------
    ValueError
        If an accuracy is negative.

    Examples
    --------
    >>> overfit_ratio(0.9, 0.75)
    1.2
    >>> overfit_ratio(None, 0.8) is None
    True
    >>> overfit_ratio(0.5, 0.0), overfit_ratio(0.0, 0.0)
    (inf, nan)
    """
    if train_acc is None or val_acc is None:
        return None
    t, v = float(train_acc), float(val_acc)
    if math.isnan(t) or math.isnan(v):
        return math.nan
    if t < 0 or v < 0:
        raise ValueError(f"overfit_ratio: accuracies must be >= 0; got train_acc={train_acc!r}, val_acc={val_acc!r}.")
    if v == 0:
        return math.inf if t > 0 else math.nan
    return t / v


#: Falconi et al.'s overfitting flag: training accuracy more than this many (fraction) points above validation accuracy.
FALCONI_GAP = 0.10


def falconi_flag(train_acc: float | None, val_acc: float | None, *, gap: float = FALCONI_GAP) -> bool:
    """True when ``train_acc`` exceeds ``val_acc`` by more than ``gap`` (default 10 points): Falconi's overfit flag.

    Parameters
    ----------
    train_acc, val_acc : float or None
        Accuracies as fractions in [0, 1]; None or NaN (nothing fine-tuned) gives False.
    gap : float, default=0.10
        The margin, as a fraction (0.10 = 10 percentage points).

    Returns
    -------
    bool

    Examples
    --------
    >>> falconi_flag(0.95, 0.80), falconi_flag(0.85, 0.80), falconi_flag(None, 0.8)
    (True, False, False)
    """
    if train_acc is None or val_acc is None:
        return False
    t, v = float(train_acc), float(val_acc)
    return bool(not (math.isnan(t) or math.isnan(v)) and t - v > gap)
