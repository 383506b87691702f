"""Fine-tune / evaluation splits of a target dataset: stratified by label, grouped by patient.

A cell with ``ft_fraction = f > 0`` fine-tunes on about ``f`` of the target and evaluates on the rest;
a whole ``f >= 1`` is a number of patients instead (Shen et al.; a suite writes it ``20 patients``).
The split depends only on ``(labels, groups, fraction, seed)``, so every backbone and every source at a
given (target, fraction, seed) sees the identical fine-tune and evaluation images, and paired
comparisons between cells are paired on the same images. ``ft_fraction = 0`` ("No FT") is not a split:
the caller evaluates on the whole target and must not call :func:`finetune_split`.

How: the split is drawn over *groups* (patients), not images, with scikit-learn's
``StratifiedShuffleSplit`` (``train_size = round(fraction * n_groups)`` groups, ``random_state=seed``).
Each group is stratified by the set of classes its images carry ("0", "1", or "0+1" for a patient
with both a benign and a malignant image), so mixed patients are spread as evenly as pure ones.
Unlike ``StratifiedGroupKFold(n_splits=round(1 / fraction))``, which can only produce fractions
1/k (0.3 would become 1/3), this takes any fraction in (0, 1). The fraction is exact in groups; in
images it is exact when all groups have the same size (the synthetic mammography sets, or any
dataset without patient ids) and close to it otherwise.
"""
from __future__ import annotations

import numbers

import numpy as np


def class_counts(labels: np.ndarray) -> dict[int, int]:
    """Number of images per class, e.g. ``{0: 156, 1: 84}``."""
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def _check_args(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> None:
    if not isinstance(fraction, numbers.Real) or isinstance(fraction, bool):
        raise TypeError(f"The 'fraction' parameter of finetune_split must be a float in (0, 1). Got {fraction!r}.")
    if fraction == 0:
        raise ValueError("The 'fraction' parameter of finetune_split must be in (0, 1). Got 0: ft_fraction = 0 "
                         "means 'No FT', which evaluates on the whole target; the caller handles it without a split.")
    if not (0 < fraction < 1 or (fraction >= 1 and float(fraction).is_integer())):
        raise ValueError(f"The 'fraction' parameter of finetune_split must be in (0, 1), or a whole number of "
                         f"patients >= 1 (Shen et al.: 20, 30, ...; a suite writes '20 patients'). Got {fraction!r}.")
    if not isinstance(seed, numbers.Integral) or not 0 <= seed < 2 ** 32:
        raise ValueError(f"The 'seed' parameter of finetune_split must be an int in [0, 2**32). Got {seed!r}.")
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"finetune_split needs a non-empty 1-d array of labels. Got shape {labels.shape}.")
    if groups.shape != labels.shape:
        raise ValueError(f"finetune_split: {len(groups)} groups for {len(labels)} labels; pass one group per image.")


def _group_strata(labels: np.ndarray, group_index: np.ndarray, n_groups: int) -> np.ndarray:
    """One stratum per group: a bit mask of the classes among its images.

    A stratum with a single group cannot be split (``StratifiedShuffleSplit`` needs two members),
    so it joins the stratum of its highest class alone, e.g. a lone "0+1" patient counts as "1".
    """
    classes, class_index = np.unique(labels, return_inverse=True)
    present = np.zeros((n_groups, len(classes)), bool)
    present[group_index, class_index] = True
    strata = present @ (1 << np.arange(len(classes)))
    keys, counts = np.unique(strata, return_counts=True)
    for key in keys[counts < 2]:
        lone = strata == key
        strata[lone] = 1 << (int(key).bit_length() - 1)
    return strata


def _vanished(cls: int, side: str, fraction: float, labels: np.ndarray, n_groups: int) -> ValueError:
    hint = "a larger fraction" if side == "fine-tune" else "a smaller fraction"
    return ValueError(
        f"finetune_split: class {cls} has no image in the {side} part (fraction={fraction}, {len(labels)} images "
        f"in {n_groups} groups, class counts {class_counts(labels)}). Use {hint} or a larger dataset.")


def finetune_split(labels: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Split a target into a fine-tune part of about ``fraction`` of its images and an evaluation part.

    Args:
        labels: ``(N,)`` class of each image.
        groups: ``(N,)`` group (patient) of each image; no group ends up on both sides. None means
            every image is its own group (datasets without patient ids).
        fraction: share of the groups used for fine-tuning, in (0, 1); or, when a whole number >= 1, the
            number of groups (patients) used for fine-tuning (Shen et al.'s 20, 30, ... patients).
        seed: the split's seed; the split depends on nothing else (not on the row order either).

    Returns:
        ``(finetune_idx, eval_idx)``: sorted int64 index arrays that partition ``range(N)``.

    Raises:
        ValueError: ``fraction`` is not in (0, 1) (0 is the caller's "No FT" case), or a class would
            have no image in one of the two parts (the message names the class, the fraction and the
            dataset size).
    """
    from sklearn.model_selection import (
        StratifiedShuffleSplit,  # 0.5 s to import: only when splitting
    )

    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    _check_args(labels, groups, fraction, seed)
    group_names, group_index = np.unique(groups, return_inverse=True)  # sorted: row order does not matter
    n_groups = len(group_names)
    strata = _group_strata(labels, group_index, n_groups)

    # A class in a single group (after merging) can only be on one side, whatever the fraction.
    for cls in np.unique(labels):
        owners = np.unique(group_index[labels == cls])
        if len(owners) < 2:
            raise ValueError(
                f"finetune_split: class {cls} occurs in only {len(owners)} group (patient) of {n_groups}, so it "
                f"cannot be in both the fine-tune and the evaluation part (fraction={fraction}, {len(labels)} "
                f"images, class counts {class_counts(labels)}). Use a larger dataset.")

    # fraction >= 1 is an absolute number of patients (groups) for fine-tuning, as in Shen et al. (a suite writes
    # it '20 patients'; bench.suite refuses a bare 1.0 there, which could mean a share of 100 % or one patient)
    n_ft = int(fraction) if fraction >= 1 else round(fraction * n_groups)
    if n_ft >= n_groups:
        raise ValueError(f"finetune_split: {n_ft} fine-tune patients leave none of the {n_groups} patients "
                         f"({len(labels)} images) for evaluation. Use fewer patients (at most {n_groups - 1}; "
                         f"written 'N patients' in a suite's ft_fraction) or a share in (0, 1).")
    n_strata = len(np.unique(strata))
    if n_ft < n_strata or n_groups - n_ft < n_strata:
        side = "fine-tune" if n_ft < n_strata else "evaluation"
        # The smallest class is the one that cannot get a group on the short side.
        smallest = min(class_counts(labels).items(), key=lambda kv: kv[1])[0]
        raise _vanished(smallest, side, fraction, labels, n_groups)

    splitter = StratifiedShuffleSplit(n_splits=1, train_size=n_ft, test_size=n_groups - n_ft, random_state=seed)
    ft_groups, _ = next(splitter.split(np.zeros((n_groups, 1)), strata))
    in_ft = np.isin(group_index, ft_groups)
    ft_idx, eval_idx = np.flatnonzero(in_ft), np.flatnonzero(~in_ft)

    for cls in np.unique(labels):
        for side, idx in (("fine-tune", ft_idx), ("evaluation", eval_idx)):
            if not np.any(labels[idx] == cls):
                raise _vanished(cls, side, fraction, labels, n_groups)
    return ft_idx, eval_idx
