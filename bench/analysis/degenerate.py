"""Degenerate cells: numbers that say "nothing happened" are checked before they are believed.

A cell whose network predicts one class for every image of a class, whose AUC is significantly *below*
chance, or whose network scores its own fine-tune images in eval mode far below what it scored on them while
training, most likely describes a broken network (wrong BatchNorm statistics, a diverged run, a class that
vanished), not an effect of pre-training. Such cells are flagged in their records and marked in the report.

Pure functions on labels, scores and accuracies (and record dicts): no I/O, no torch.

The flags
---------
``one_class``
    At the decision threshold (margin 0) the network recognises no image of one class: sensitivity or
    specificity is 0 (this includes predicting the same class for every image).
``auc_below_chance``
    The upper end of the AUC's 95 % DeLong interval (images treated as independent) is below 0.5: the scores
    rank the classes the wrong way round more than chance explains.
``eval_below_running``
    Eval-mode accuracy on the network's own training images is more than ``gap`` (10 points) below the running
    training accuracy of the epoch that was kept (the last one, or the one early stopping restored). The running
    accuracy is measured with batch statistics on augmented images while the weights move, so a few points
    either way are normal; ten points below means the evaluated network is not the one that trained.
"""
from __future__ import annotations

import math

import numpy as np

from bench.analysis.metrics import rates
from bench.analysis.stats import delong_auc_ci

__all__ = ["EVAL_GAP", "FLAGS", "WEAK_SOURCE_AUC", "degenerate_flags", "kept_epoch", "record_flags", "weak_source"]

EVAL_GAP = 0.10
"""Largest drop (a fraction) of eval-mode train accuracy below the running train accuracy before it is flagged."""

FLAGS: dict[str, str] = {
    "one_class": "one class: sensitivity or specificity is 0 at the decision threshold",
    "auc_below_chance": "AUC below chance: the 95 % DeLong interval lies below 0.5",
    "eval_below_running": f"eval < train: eval-mode accuracy on the training images more than {EVAL_GAP * 100:.0f} "
                          "points below the running training accuracy",
}
"""Each flag's name and its one-line meaning (the report prints these)."""

WEAK_SOURCE_AUC = 0.70
"""Held-out source AUC below which a pre-trained source network is called weak: it did not learn its source, so a
cell that starts from it cannot show transfer (``benchmarks/known_answer.md``: 12 optimiser steps left resnet50 and
MorphHR at 0.47-0.57, which then scored like random init on the target)."""


def weak_source(held_out_auc: float | None) -> bool:
    """True when a source network's held-out AUC is known and below :data:`WEAK_SOURCE_AUC`.

    >>> weak_source(0.56), weak_source(0.9), weak_source(None)
    (True, False, False)
    """
    return held_out_auc is not None and not math.isnan(held_out_auc) and held_out_auc < WEAK_SOURCE_AUC


def degenerate_flags(labels, scores, *, train_acc: float | None = None, running_train_acc: float | None = None,
                     gap: float = EVAL_GAP, confidence: float = 0.95) -> dict:
    """The flags of one evaluated network, with the numbers behind them.

    Parameters
    ----------
    labels, scores : array-like of shape (n_samples,)
        Evaluation labels (0/1) and logit margins.
    train_acc : float, optional
        Eval-mode accuracy on the images the network trained on (None without fine-tuning).
    running_train_acc : float, optional
        Training accuracy of the kept epoch, as measured during training.
    gap : float, default=0.10
        See ``eval_below_running``.
    confidence : float, default=0.95
        Coverage of the AUC interval.

    Returns
    -------
    dict
        ``flags`` (the names set, in :data:`FLAGS` order), ``auc_low``, ``auc_high``, ``sensitivity``,
        ``specificity``, ``train_acc``, ``running_train_acc``.

    Examples
    --------
    >>> import numpy as np
    >>> degenerate_flags(np.array([0, 0, 1, 1]), np.array([-1.0, -2.0, -0.5, -0.1]))["flags"]
    ['one_class']
    >>> degenerate_flags(np.array([0, 1, 0, 1]), np.array([-1.0, 1.0, -2.0, 2.0]), train_acc=0.6,
    ...                  running_train_acc=0.9)["flags"]
    ['eval_below_running']
    """
    ci = delong_auc_ci(labels, scores, confidence=confidence)  # checks the inputs (0/1 labels, finite scores)
    m = rates(labels, scores)
    one_class = m["sensitivity"] == 0 or m["specificity"] == 0
    below = math.isfinite(ci["high"]) and ci["high"] < 0.5
    drop = (train_acc is not None and running_train_acc is not None
            and float(train_acc) < float(running_train_acc) - gap)
    flags = [name for name, on in (("one_class", one_class), ("auc_below_chance", below),
                                   ("eval_below_running", drop)) if on]
    return {"flags": flags, "auc_low": ci["low"], "auc_high": ci["high"], "sensitivity": m["sensitivity"],
            "specificity": m["specificity"], "train_acc": train_acc, "running_train_acc": running_train_acc}


def kept_epoch(history: list[dict]) -> dict | None:
    """The history entry of the epoch whose weights were evaluated: the one early stopping restored, else the last."""
    if not history:
        return None
    return next((e for e in history if e.get("selected")), history[-1])


def record_flags(record: dict, *, gap: float = EVAL_GAP) -> dict | None:
    """:func:`degenerate_flags` of a stored record (None unless it is ``ok`` with predictions).

    Works on records written before the flags existed: everything is recomputed from the record's predictions,
    its ``metrics.train_acc`` and its training history.
    """
    preds = record.get("predictions")
    if record.get("status") != "ok" or not preds or not preds.get("label"):
        return None
    labels = np.asarray(preds["label"])
    if len(np.unique(labels)) < 2:
        return None
    kept = kept_epoch(record.get("history") or [])
    running = kept.get("running_train_acc") if kept else None
    return degenerate_flags(labels, np.asarray(preds["score"], dtype=float),
                            train_acc=(record.get("metrics") or {}).get("train_acc"), running_train_acc=running,
                            gap=gap)
