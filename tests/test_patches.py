"""S10-style patch sampling (bench.data.patches) on hand-made images with known lesions."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bench.data import ArrayDataset, load_dataset
from bench.data.patches import (
    PATCH_CLASSES_3,
    PATCH_CLASSES_5,
    MissingMasksError,
    balanced_order,
    lesion_types,
    sample_patches,
)

P = 8  # patch size


def _dataset(*, kinds: bool = True, masks: bool = True) -> ArrayDataset:
    """Four 32 px images: tissue (150) in columns 0-27, black beyond.

    0: malignant calcification, ROI rows 8-11, cols 20-23;
    1: benign mass, ROI rows 18-23, cols 6-11;
    2: normal;
    3: two malignant masses, ROIs rows 4-6 / cols 4-6 and rows 24-26 / cols 18-20.
    """
    images = np.zeros((4, 32, 32), np.uint8)
    images[:, :, :28] = 150
    m = np.zeros((4, 32, 32), bool)
    m[0, 8:12, 20:24] = True
    m[1, 18:24, 6:12] = True
    m[3, 4:7, 4:7] = True
    m[3, 24:27, 18:21] = True
    images[m] = 230
    meta = {"lesion_kind": ["calcification", "benign_mass", "normal", "spiculated_mass"]} if kinds else {}
    return ArrayDataset(name="hand", images=images, labels=np.array([1, 0, 0, 1]),
                        image_ids=np.array([f"i{k}" for k in range(4)]), masks=m if masks else None, meta=meta)


def _window(a: np.ndarray, r: int, c: int) -> np.ndarray:
    """The P x P window centred at (r, c) of a zero-padded copy of ``a`` (as the sampler crops)."""
    pad = np.pad(a, ((P // 2, P - P // 2),) * 2)
    return pad[r:r + P, c:c + P]


def test_lesion_patches_have_known_labels_centres_and_overlap():
    ds = _dataset()
    ps = sample_patches(ds, patch_size=P, per_lesion=4, background_per_image=3, seed=0)
    assert ps.classes == PATCH_CLASSES_5
    lesion = ps.labels > 0
    # one label per ROI: 4 patches per lesion, two lesions in image 3
    got = sorted(zip(ps.image_index[lesion].tolist(), ps.labels[lesion].tolist()))
    want = sorted([(0, PATCH_CLASSES_5.index("calc_malignant"))] * 4 + [(1, PATCH_CLASSES_5.index("mass_benign"))] * 4
                  + [(3, PATCH_CLASSES_5.index("mass_malignant"))] * 8)
    assert got == want
    for k in np.flatnonzero(lesion):
        i, (r, c) = ps.image_index[k], ps.centres[k]
        # the centre lies in the bounding box of the ROI it covers, which it covers at >= 90 %
        comps, _ = ndimage.label(ds.masks[i], structure=np.ones((3, 3)))
        inside = _window(comps, r, c)
        roi = comps == np.bincount(inside[inside > 0]).argmax()
        rows, cols = np.nonzero(roi)
        assert rows.min() <= r <= rows.max() and cols.min() <= c <= cols.max()
        assert _window(roi, r, c).sum() >= 0.9 * roi.sum()
        np.testing.assert_array_equal(ps.images[k], _window(ds.images[i], r, c))


def test_background_patches_never_touch_a_lesion_and_lie_on_tissue():
    ds = _dataset()
    ps = sample_patches(ds, patch_size=P, per_lesion=2, background_per_image=6, seed=3)
    bg = np.flatnonzero(ps.labels == 0)
    assert np.bincount(ps.image_index[bg], minlength=4).tolist() == [6, 6, 6, 6]
    for k in bg:
        i, (r, c) = ps.image_index[k], ps.centres[k]
        assert not _window(ds.masks[i], r, c).any()
        assert (_window(ds.images[i], r, c) > 15).mean() >= 0.5
        np.testing.assert_array_equal(ps.images[k], _window(ds.images[i], r, c))


def test_sampling_is_deterministic_per_image_and_seed():
    ds = _dataset()
    a = sample_patches(ds, patch_size=P, seed=1)
    b = sample_patches(ds, patch_size=P, seed=1)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.centres, b.centres)
    assert not np.array_equal(a.centres, sample_patches(ds, patch_size=P, seed=2).centres)
    # an image's patches do not depend on which other images are sampled
    only1 = sample_patches(ds, [1], patch_size=P, seed=1)
    np.testing.assert_array_equal(only1.centres, a.centres[a.image_index == 1])


def test_three_classes_without_lesion_kinds():
    ds = _dataset(kinds=False)
    assert lesion_types(ds) is None
    ps = sample_patches(ds, patch_size=P, per_lesion=3, background_per_image=1, seed=0)
    assert ps.classes == PATCH_CLASSES_3
    lesion = ps.labels > 0
    assert dict(zip(ps.image_index[lesion].tolist(), ps.labels[lesion].tolist())) == {0: 2, 1: 1, 3: 2}
    with pytest.raises(ValueError, match="n_classes=3"):
        sample_patches(ds, patch_size=P, n_classes=5)


def test_a_dataset_without_masks_is_a_clear_error():
    with pytest.raises(MissingMasksError, match=r"'hand' has no lesion masks.*patch_cnn"):
        sample_patches(_dataset(masks=False), patch_size=P)
    with pytest.raises(ValueError, match="patch_size"):
        sample_patches(_dataset(), patch_size=40)


def test_balanced_order_equalises_the_present_classes():
    labels = np.array([0] * 10 + [2] * 3 + [4] * 1)
    order = balanced_order(labels, seed=0)
    assert np.bincount(labels[order]).tolist() == [10, 0, 10, 0, 10]
    assert set(np.flatnonzero(labels == 0)) <= set(order.tolist())


def test_synthetic_ddsm_kinds_give_five_classes():
    ds = load_dataset("synth-ddsm", {"n_images": 40}, image_size=32)
    types = lesion_types(ds)
    kinds = np.array(ds.meta["lesion_kind"])
    assert set(types[kinds == "calcification"]) == {"calc"} and set(types[kinds == "benign_mass"]) == {"mass"}
    ps = sample_patches(ds, patch_size=8, per_lesion=2, background_per_image=2, seed=0)
    assert ps.classes == PATCH_CLASSES_5
    # pathology follows the image label; calcifications are only malignant in synth-ddsm
    lab = ps.labels[ps.labels > 0]
    img_lab = ds.labels[ps.image_index[ps.labels > 0]]
    assert set(lab[img_lab == 0]) <= {1, 3} and set(lab[img_lab == 1]) <= {2, 4}
    assert (ps.labels == 0).sum() > 0 and (lab == 4).sum() > 0
