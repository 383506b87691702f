"""bench.data.synthetic: the contract of the synthetic datasets (no training; see the module docstring)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from bench.data import DATASETS, load_dataset

MAMMO = ["synth-ddsm", "synth-inbreast", "synth-mias"]
ALL = MAMMO + ["synth-ultrasound"]
SMALL = {"n_images": 120}


@pytest.mark.parametrize("name", ALL)
def test_registered_with_options(name):
    spec = DATASETS.get(name)
    fields = spec.options.model_fields
    assert {"n_images", "seed", "malignant_fraction"} <= set(fields)
    assert spec.modality == ("ultrasound" if name == "synth-ultrasound" else "mammography")
    with pytest.raises(ValidationError):
        spec.options(not_an_option=1)


def test_default_sizes():
    assert DATASETS.get("synth-ddsm").options().n_images == 1200
    for name in ["synth-inbreast", "synth-mias", "synth-ultrasound"]:
        assert DATASETS.get(name).options().n_images == 240


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [32, 64])
def test_shapes_dtypes_ids(name, size):
    d = load_dataset(name, SMALL, image_size=size)
    n = SMALL["n_images"]
    assert d.name == name and len(d) == n
    assert d.images.shape == (n, size, size) and d.images.dtype == np.uint8
    assert d.labels.shape == (n,) and d.labels.dtype == np.int64 and set(np.unique(d.labels)) == {0, 1}
    assert d.masks.shape == d.images.shape and d.masks.dtype == bool
    assert d.image_ids.dtype.kind == "U" and len(set(d.image_ids)) == n
    assert d.image_ids[7] == f"{name}/000007"
    assert d.images.std() > 10  # not a blank image
    assert d.meta["options"]["n_images"] == n and d.meta["image_size"] == size
    assert len(d.meta["lesion_kind"]) == n


@pytest.mark.parametrize("name", ALL)
def test_deterministic_and_seed_sensitive(name):
    a = load_dataset(name, SMALL, image_size=32)
    b = load_dataset(name, SMALL, image_size=32)
    c = load_dataset(name, {**SMALL, "seed": 1}, image_size=32)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, c.images)
    assert not np.array_equal(a.labels, c.labels)


def test_datasets_differ_at_the_same_seed():
    a, b = (load_dataset(n, SMALL, image_size=32) for n in ("synth-inbreast", "synth-mias"))
    assert not np.array_equal(a.labels, b.labels)


@pytest.mark.parametrize("name", ALL)
def test_scene_does_not_depend_on_image_size(name):
    """Labels, patients and lesion layout come from the parameter stream: the same at any size."""
    a, b = load_dataset(name, SMALL, image_size=32), load_dataset(name, SMALL, image_size=64)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.meta["lesion_kind"] == b.meta["lesion_kind"]
    # Mask area as a share of the image agrees to within a few pixels' worth of rounding.
    frac_a, frac_b = a.masks.mean(axis=(1, 2)), b.masks.mean(axis=(1, 2))
    assert np.corrcoef(frac_a, frac_b)[0, 1] > 0.9


@pytest.mark.parametrize("name,expected", [("synth-ddsm", 0.4), ("synth-inbreast", 0.35), ("synth-mias", 0.3),
                                           ("synth-ultrasound", 0.35)])
def test_default_label_balance(name, expected):
    d = load_dataset(name, {"n_images": 240}, image_size=32)
    assert abs(d.labels.mean() - expected) < 0.02


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.8])
def test_malignant_fraction_is_respected(frac):
    d = load_dataset("synth-ddsm", {"n_images": 200, "malignant_fraction": frac}, image_size=32)
    assert abs(d.labels.mean() - frac) < 0.02


@pytest.mark.parametrize("name", MAMMO)
def test_two_images_per_patient(name):
    d = load_dataset(name, SMALL, image_size=32)
    _, counts = np.unique(d.patient_ids, return_counts=True)
    assert np.all(counts == 2)
    assert d.patient_ids.dtype.kind == "U" and d.patient_ids[0].startswith("P") and len(d.patient_ids[0]) == 5


def test_odd_image_count_leaves_one_single_image_patient():
    d = load_dataset("synth-inbreast", {"n_images": 121}, image_size=32)
    _, counts = np.unique(d.patient_ids, return_counts=True)
    assert len(d) == 121 and sorted(counts)[0] == 1 and np.all(sorted(counts)[1:] == np.array(2))


def test_ddsm_views_of_a_patient_share_the_lesion():
    d = load_dataset("synth-ddsm", SMALL, image_size=32)
    kinds = np.array(d.meta["lesion_kind"]).reshape(-1, 2)
    assert np.all(kinds[:, 0] == kinds[:, 1])
    views = np.array(d.meta["view"]).reshape(-1, 2)
    assert all(v.endswith("CC") for v in views[:, 0]) and all(v.endswith("MLO") for v in views[:, 1])
    assert all(a[0] == b[0] for a, b in views)  # same breast side


def test_mias_film_pairs_show_at_most_one_lesion():
    d = load_dataset("synth-mias", SMALL, image_size=32)
    lesion = (np.array(d.meta["lesion_kind"]) != "normal").reshape(-1, 2)
    assert lesion.sum(axis=1).max() == 1
    assert np.all(d.labels.reshape(-1, 2).sum(axis=1) <= 1)


def test_ultrasound_has_no_patient_ids():
    d = load_dataset("synth-ultrasound", SMALL, image_size=32)
    assert d.patient_ids is None
    np.testing.assert_array_equal(d.groups, d.image_ids)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [32, 64])
def test_masks_non_empty_exactly_for_lesion_images(name, size):
    d = load_dataset(name, SMALL, image_size=size)
    has_lesion = np.array(d.meta["lesion_kind"]) != "normal"
    assert has_lesion.any() and (~has_lesion).any()
    np.testing.assert_array_equal(d.masks.any(axis=(1, 2)), has_lesion)
    assert np.all(has_lesion[d.labels == 1])  # every malignant image shows its lesion
    assert d.masks[has_lesion].mean() < 0.1  # lesions are small


@pytest.mark.parametrize("name", MAMMO)
def test_lesions_are_brighter_than_their_surroundings(name):
    """The mask marks something visible: mean intensity inside it exceeds a ring around it."""
    d = load_dataset(name, SMALL, image_size=64)
    from scipy import ndimage
    diffs = []
    for img, m in zip(d.images[d.masks.any(axis=(1, 2))], d.masks[d.masks.any(axis=(1, 2))]):
        ring = ndimage.binary_dilation(m, iterations=4) & ~ndimage.binary_dilation(m, iterations=1)
        diffs.append(img[m].mean() - img[ring].mean())
    assert np.median(diffs) > 5


def test_ultrasound_lesions_are_dark():
    d = load_dataset("synth-ultrasound", SMALL, image_size=64)
    lesion = d.masks.any(axis=(1, 2))
    inside = np.array([img[m].mean() for img, m in zip(d.images[lesion], d.masks[lesion])])
    assert np.median(inside) < 0.7 * np.median(d.images[lesion].mean(axis=(1, 2)))


def test_ultrasound_brightness_does_not_depend_on_label():
    """Otherwise a mammography model could 'transfer' through overall brightness (a fake result)."""
    d = load_dataset("synth-ultrasound", {"n_images": 600}, image_size=32)
    means = d.images.reshape(len(d), -1).mean(axis=1)
    stds = d.images.reshape(len(d), -1).std(axis=1)
    pos, neg = means[d.labels == 1], means[d.labels == 0]
    assert abs(pos.mean() - neg.mean()) < 0.25 * means.std()
    assert 0.4 < roc_auc_score(d.labels, means) < 0.6
    assert 0.4 < roc_auc_score(d.labels, stds) < 0.6


def test_ultrasound_shape_cue_is_present():
    """Benign lesions are wider than tall, malignant ones taller than wide (measured on the masks)."""
    d = load_dataset("synth-ultrasound", SMALL, image_size=64)
    lesion = d.masks.any(axis=(1, 2))
    width = d.masks.any(axis=1).sum(axis=1)
    height = d.masks.any(axis=2).sum(axis=1)
    ratio = width / np.maximum(height, 1)
    assert np.median(ratio[lesion & (d.labels == 0)]) > 1.1
    assert np.median(ratio[d.labels == 1]) < 0.95


def test_target_profiles_blur_and_noise():
    """The targets' acquisition look: inbreast blurs more than the source film, mias more than inbreast and
    with more noise, which is what decides whether fine cues (spicules, calcifications) survive."""
    opts = {n: DATASETS.get(n).options() for n in MAMMO}
    assert opts["synth-ddsm"].blur < opts["synth-inbreast"].blur < opts["synth-mias"].blur
    assert opts["synth-inbreast"].noise < opts["synth-ddsm"].noise < opts["synth-mias"].noise
    assert opts["synth-mias"].grain > opts["synth-ddsm"].grain > opts["synth-inbreast"].grain == 0


def test_blur_knob_smooths_the_same_scene():
    def gradient(blur: float) -> float:
        d = load_dataset("synth-inbreast", {**SMALL, "blur": blur, "noise": 0.0}, image_size=64)
        return float(np.abs(np.diff(d.images.astype(np.float32), axis=2)).mean())

    assert gradient(0.0) > 1.2 * gradient(0.02)


def test_malignant_masses_are_irregular():
    """Solidity (mask area over its convex hull) is lower for irregular malignant masses than for oval benign ones."""
    from scipy.spatial import ConvexHull
    d = load_dataset("synth-ddsm", {"n_images": 200}, image_size=128)
    kinds = np.array(d.meta["lesion_kind"])

    def solidity(m: np.ndarray) -> float:
        return m.sum() / ConvexHull(np.argwhere(m)).volume  # hull of pixel centres: > 1 for convex shapes

    benign = [solidity(m) for m in d.masks[kinds == "benign_mass"]]
    malignant = [solidity(m) for m in d.masks[kinds == "spiculated_mass"]]
    assert np.median(benign) > np.median(malignant) + 0.02


def test_bilateral_rejects_impossible_fraction():
    with pytest.raises(ValidationError, match="bilateral"):
        DATASETS.get("synth-mias").options(malignant_fraction=0.7)


def test_bad_image_size():
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("synth-inbreast", SMALL, image_size=8)


@pytest.mark.parametrize("size", [32, 128, 256])
def test_image_sizes(size):
    d = load_dataset("synth-mias", {"n_images": 8}, image_size=size)
    assert d.images.shape == (8, size, size) and d.masks.any(axis=(1, 2)).sum() > 0


def test_generation_speed():
    """The source at its default size renders in well under 5 s on one core (the budget is 5 s)."""
    t = time.process_time()
    d = load_dataset("synth-ddsm", None, image_size=64)
    elapsed = time.process_time() - t
    assert len(d) == 1200
    assert elapsed < 5.0, f"synth-ddsm 1200 x 64 px took {elapsed:.1f} s of CPU"
