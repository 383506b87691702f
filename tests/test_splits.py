"""bench.data.splits.finetune_split: leak-free, stratified, deterministic fine-tune / evaluation splits."""
from __future__ import annotations

import numpy as np
import pytest

from bench.data import load_dataset
from bench.data.splits import class_counts, finetune_split


def _patients(n_patients: int = 120, per_patient: int = 2, malignant: float = 0.35, seed: int = 0):
    """Labels and groups of a mammography-like set: every patient's images share the label."""
    rng = np.random.default_rng(seed)
    patient_label = (rng.permutation(n_patients) < round(malignant * n_patients)).astype(np.int64)
    groups = np.repeat(np.array([f"P{i:04d}" for i in range(n_patients)]), per_patient)
    return np.repeat(patient_label, per_patient), groups


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3, 0.25, 0.5, 0.8])
def test_partition_without_group_leak(fraction):
    labels, groups = _patients()
    ft, ev = finetune_split(labels, groups, fraction, seed=0)
    assert ft.dtype.kind == "i" and ev.dtype.kind == "i"
    assert np.all(np.diff(ft) > 0) and np.all(np.diff(ev) > 0)  # sorted, unique
    np.testing.assert_array_equal(np.sort(np.concatenate([ft, ev])), np.arange(len(labels)))
    assert not set(groups[ft]) & set(groups[ev])


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3, 1 / 3, 0.45, 0.7])
def test_achieved_fraction_and_class_proportions(fraction):
    labels, groups = _patients(n_patients=200)
    ft, ev = finetune_split(labels, groups, fraction, seed=3)
    assert abs(len(ft) / len(labels) - fraction) <= 1 / 200  # exact up to one patient
    assert abs(labels[ft].mean() - labels.mean()) < 0.03
    assert abs(labels[ev].mean() - labels.mean()) < 0.03


def test_deterministic_and_seed_sensitive():
    labels, groups = _patients()
    a = finetune_split(labels, groups, 0.2, seed=0)
    b = finetune_split(labels, groups, 0.2, seed=0)
    c = finetune_split(labels, groups, 0.2, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_independent_of_row_order():
    """The same patients go to fine-tuning whatever order the adapter listed the images in."""
    labels, groups = _patients()
    perm = np.random.default_rng(7).permutation(len(labels))
    ft, _ = finetune_split(labels, groups, 0.2, seed=5)
    ft_perm, _ = finetune_split(labels[perm], groups[perm], 0.2, seed=5)
    assert set(groups[ft]) == set(groups[perm][ft_perm])


def test_groups_none_means_one_image_per_group():
    labels = np.array([0] * 160 + [1] * 80)
    ft, ev = finetune_split(labels, None, 0.1, seed=0)
    assert len(ft) == 24 and class_counts(labels[ft]) == {0: 16, 1: 8}


def test_mixed_label_patients_are_kept_whole_and_spread():
    """Film pairs where one breast is malignant: patients with labels {0, 1} are a stratum of their own."""
    d = load_dataset("synth-mias", {"n_images": 240}, image_size=32)
    ft, ev = finetune_split(d.labels, d.groups, 0.2, seed=0)
    assert not set(d.groups[ft]) & set(d.groups[ev])
    assert abs(len(ft) / len(d) - 0.2) < 0.01
    assert abs(d.labels[ft].mean() - d.labels.mean()) < 0.03


def test_synthetic_target_split():
    d = load_dataset("synth-inbreast", None, image_size=32)
    ft, ev = finetune_split(d.labels, d.groups, 0.1, seed=0)
    assert len(ft) == 24 and len(ev) == 216
    assert set(class_counts(d.labels[ft])) == {0, 1}


def test_vanished_class_in_finetune_part():
    labels = np.array([0] * 95 + [1] * 5)
    with pytest.raises(ValueError) as err:
        finetune_split(labels, None, 0.02, seed=0)
    msg = str(err.value)
    assert "class 1" in msg and "fine-tune" in msg and "fraction=0.02" in msg and "100 images" in msg
    assert "larger fraction" in msg


def test_vanished_class_in_evaluation_part():
    labels = np.array([0] * 95 + [1] * 5)
    with pytest.raises(ValueError, match=r"class 1 has no image in the evaluation part.*smaller fraction"):
        finetune_split(labels, None, 0.99, seed=0)


def test_class_in_a_single_group_cannot_be_split():
    labels = np.array([0] * 10 + [1] * 2)
    groups = np.array([f"P{i}" for i in range(10)] + ["P99", "P99"])
    with pytest.raises(ValueError, match="class 1 occurs in only 1 group"):
        finetune_split(labels, groups, 0.5, seed=0)


@pytest.mark.parametrize("fraction", [0, 0.0])
def test_zero_fraction_is_the_callers_job(fraction):
    labels, groups = _patients()
    with pytest.raises(ValueError, match="No FT"):
        finetune_split(labels, groups, fraction, seed=0)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, 2.5])
def test_fraction_out_of_range(fraction):
    labels, groups = _patients()
    with pytest.raises(ValueError, match=r"must be in \(0, 1\)"):
        finetune_split(labels, groups, fraction, seed=0)


def test_mismatched_groups():
    with pytest.raises(ValueError, match="one group per image"):
        finetune_split(np.zeros(10, int), np.arange(9), 0.5, seed=0)


def test_class_counts():
    assert class_counts(np.array([1, 0, 0, 1, 0])) == {0: 3, 1: 2}


def test_whole_number_is_an_absolute_patient_count():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(60), 2)
    labels = np.repeat(rng.permutation([0] * 36 + [1] * 24), 2)
    ft, ev = finetune_split(labels, groups, 20, seed=3)
    assert len(np.unique(groups[ft])) == 20 and len(ft) == 40
    assert set(groups[ft]).isdisjoint(groups[ev])
    with pytest.raises(ValueError, match="leave none"):
        finetune_split(labels, groups, 60, seed=0)
    with pytest.raises(ValueError, match="whole number of patients"):
        finetune_split(labels, groups, 2.5, seed=0)
