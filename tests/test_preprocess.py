"""Preprocessing (non-square sizes, masks, Falconi's ROI pipeline) and near-duplicate grouping."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.data import cache as cache_mod
from bench.data import load_dataset
from bench.data.dedup import near_duplicate_groups
from bench.data.items import Item, Scan
from bench.data.preprocess import RoiRejected, as_hw, falconi_roi, place_mask, size_label, to_uint8
from fixtures_cbis import build_cbis


def test_sizes_square_and_height_width():
    assert as_hw(64) == (64, 64) and as_hw([1152, 896]) == (1152, 896)
    assert size_label(64) == "64" and size_label((72, 56)) == "72x56"


def test_non_square_pad_and_stretch():
    wide = np.ones((50, 100), np.float32)
    wide[0, 0] = 0
    pad = to_uint8(wide, (40, 20), resize="pad")  # 100 wide -> 20 wide: 10 rows of image, centred
    assert pad.shape == (40, 20)
    assert pad[:15].max() == 0 and pad[25:].max() == 0 and pad[16:24].min() > 200
    stretch = to_uint8(wide, (40, 20), resize="stretch")
    assert stretch.shape == (40, 20) and stretch[2:, 2:].min() > 200


@pytest.mark.parametrize("resize", ["pad", "stretch"])
def test_mask_follows_the_image_geometry(resize):
    img = np.zeros((90, 60), np.float32)
    img[30:50, 10:25] = 1.0  # a bright lesion exactly where the mask is
    mask = img > 0
    small, m = to_uint8(img, (36, 36), resize=resize), place_mask(mask, (36, 36), resize=resize)
    assert m.shape == small.shape and m.any()
    assert small[m].mean() > 200 and small[~m].mean() < 30


def _mammogram(h=200, w=160, box=(60, 100, 50, 90), seed=0):
    rng = np.random.default_rng(seed)
    img = rng.normal(2000, 300, (h, w)).astype(np.float32)
    mask = np.zeros((h, w), bool)
    t, b, left, r = box
    img[t:b, left:r] += 4000
    mask[t:b, left:r] = True
    return img, mask


def test_falconi_roi_crops_the_mask_box_and_denoises():
    img, mask = _mammogram()
    out, m = falconi_roi(img, mask, 32)
    assert out.shape == (32, 32) and out.dtype == np.uint8 and m.shape == (32, 32)
    # the crop is the 40x40 lesion box: after the 8-px margin crop most of it is lesion
    assert m.mean() > 0.9
    noisy, _ = falconi_roi(img, mask, 32, denoise=False)
    assert np.std(np.diff(out.astype(float), axis=1)) < np.std(np.diff(noisy.astype(float), axis=1))


def test_falconi_roi_rejects_empty_masks_and_extreme_aspect_ratios():
    img, mask = _mammogram()
    with pytest.raises(RoiRejected, match="empty"):
        falconi_roi(img, np.zeros_like(mask), 32)
    _, thin = _mammogram(box=(20, 180, 50, 60))  # w/h = 10/160
    with pytest.raises(RoiRejected, match="aspect ratio"):
        falconi_roi(img, thin, 32)


def test_cbis_roi_mode_with_falconi_pipeline(tmp_path):
    build_cbis(tmp_path, "classic")
    crop = load_dataset("cbis-ddsm", {"mode": "roi"}, image_size=24, root=tmp_path)
    fal = load_dataset("cbis-ddsm", {"mode": "roi", "roi_pipeline": "falconi"}, image_size=24, root=tmp_path)
    assert len(fal) == len(crop) == 7 and fal.images.shape == (7, 24, 24)
    assert fal.masks is not None and fal.masks.reshape(7, -1).mean(1).min() > 0.5  # ROI crops are mostly lesion
    assert not np.array_equal(fal.images, crop.images)


def test_cbis_image_mode_carries_lesion_masks(tmp_path):
    build_cbis(tmp_path, "classic")
    d = load_dataset("cbis-ddsm", {}, image_size=(32, 24), root=tmp_path)
    assert d.images.shape[1:] == (32, 24) and d.masks is not None and d.masks.shape == d.images.shape
    assert all(m.any() for m in d.masks)  # every view of the fixture has an abnormality


def test_near_duplicates_share_a_group_distinct_images_do_not():
    rng = np.random.default_rng(0)
    base = [np.kron(rng.integers(0, 256, (8, 8)), np.ones((8, 8))).astype(np.uint8) for _ in range(5)]
    noisy = np.clip(base[0] + rng.normal(0, 4, base[0].shape), 0, 255).astype(np.uint8)
    images = np.stack(base + [noisy, base[2].copy()])
    groups, info = near_duplicate_groups(images)
    assert groups[5] == groups[0] and groups[6] == groups[2]
    assert len(set(groups[:5])) == 5
    assert info["groups"] == 5 and info["linked_images"] == 4 and info["largest_group"] == 2


def test_datasets_without_patients_split_by_near_duplicate_group(tmp_path):
    rng = np.random.default_rng(1)
    items = []
    for i in range(6):
        arr = np.kron(rng.integers(0, 256, (6, 6)), np.ones((8, 8))).astype(np.uint8)
        for copy in range(2):  # each image twice, the copy slightly noisy: one "patient" each
            p = tmp_path / f"img{i}_{copy}.png"
            Image.fromarray(np.clip(arr + rng.normal(0, 3 * copy, arr.shape), 0, 255).astype(np.uint8)).save(p)
            items.append(Item(image_id=p.stem, label=i % 2, path=p))
    scan = lambda o, r: Scan(dataset="fake", root=tmp_path, items=list(items), has_patients=False)  # noqa: E731
    d = cache_mod.load_scanned("fake", scan, None, image_size=32, root=tmp_path)
    assert d.patient_ids is None and d.group_ids is not None
    assert len(set(d.groups)) == 6 and all(d.groups[2 * i] == d.groups[2 * i + 1] for i in range(6))
    assert d.meta["near_duplicates"]["linked_images"] == 12


def test_suite_image_size_height_width_and_square_ids_unchanged():
    from bench.suite import SuiteError, build_suite

    axes = {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0], "target": ["synth-mias"]}
    hw = build_suite({"axes": axes, "image_size": [48, 32]})
    assert hw.cells[0].config["image_size"] == [48, 32]
    assert build_suite({"axes": axes, "image_size": [40, 40]}).cells[0].cell_id == \
        build_suite({"axes": axes, "image_size": 40}).cells[0].cell_id
    with pytest.raises(SuiteError, match="image_size"):
        build_suite({"axes": axes, "image_size": [8, 48]})


def test_synthetic_height_width():
    d = load_dataset("synth-mias", {"n_images": 30}, image_size=(48, 32))
    assert d.images.shape == (30, 48, 32) and d.masks.shape == (30, 48, 32)
