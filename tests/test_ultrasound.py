"""bench.data.ultrasound: ``busi`` and ``rodrigues-us`` on tiny format-exact fixture trees (DATASETS.md 4.1, 4.2)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

import bench.data.ultrasound  # noqa: F401  (registers busi, rodrigues-us)
from bench.data import ArrayDataset, DATASETS, load_dataset
from bench.data.generic import read_mask
from bench.data.items import DatasetFormatError, read_pixels


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))


def _img(h: int = 24, w: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def _png(path: Path, arr: np.ndarray, *, rgb: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.stack([arr] * 3, axis=-1) if rgb else arr).save(path)
    return path


def _mask(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[rows, cols] = 255
    return m


def make_busi(parent: Path) -> Path:
    """Dataset_BUSI_with_GT with 3 benign, 2 malignant, 2 normal images, masks next to them (4.1)."""
    root = parent / "Dataset_BUSI_with_GT"
    for i, n in enumerate([1, 2, 10]):
        _png(root / "benign" / f"benign ({n}).png", _img(seed=n), rgb=n == 2)  # (2): 3 identical channels
        _png(root / "benign" / f"benign ({n})_mask.png", _mask(24, 30, slice(2, 8), slice(2, 8)))
    _png(root / "benign" / "benign (2)_mask_1.png", _mask(24, 30, slice(15, 20), slice(20, 28)))
    for n in [1, 2]:
        _png(root / "malignant" / f"malignant ({n}).png", _img(seed=100 + n))
        _png(root / "malignant" / f"malignant ({n})_mask.png", _mask(24, 30, slice(0, 4), slice(0, 4)))
    _png(root / "malignant" / "malignant (2)_mask_2.png", _mask(24, 30, slice(10, 12), slice(10, 12)))
    _png(root / "malignant" / "malignant (2)_mask_1.png", _mask(24, 30, slice(5, 7), slice(5, 7)))
    for n in [1, 2]:
        _png(root / "normal" / f"normal ({n}).png", _img(seed=200 + n))
        _png(root / "normal" / f"normal ({n})_mask.png", np.zeros((24, 30), np.uint8))  # all zero, as in BUSI
    (root / "benign" / ".DS_Store").write_bytes(b"\0\1junk")
    (root / "benign" / "Thumbs.db").write_bytes(b"junk")
    return root


def _by_id(scan):
    return {it.image_id: it for it in scan.items}


def test_registered():
    for name in ["busi", "rodrigues-us"]:
        spec = DATASETS.get(name)
        assert spec.modality == "ultrasound" and spec.needs_root and spec.scan is not None
    with pytest.raises(ValidationError):
        DATASETS.get("busi").options(not_an_option=1)
    with pytest.raises(ValidationError):
        DATASETS.get("busi").options(normal="positive")


def test_busi_counts_labels_and_masks_are_not_samples(tmp_path):
    root = make_busi(tmp_path)
    scan = DATASETS.get("busi").scan(DATASETS.get("busi").options(), root)
    ids = [it.image_id for it in scan.items]
    assert ids == ["benign/benign (1).png", "benign/benign (2).png", "benign/benign (10).png",
                   "malignant/malignant (1).png", "malignant/malignant (2).png",
                   "normal/normal (1).png", "normal/normal (2).png"]  # natural order; no mask is a sample
    assert not any("_mask" in i for i in ids)
    s = scan.summary()
    assert (s["images"], s["positives"], s["negatives"], s["patients"]) == (7, 2, 5, None)
    assert s["problems"] == [] and s["warnings"] == [] and s["excluded"] == {}
    items = _by_id(scan)
    assert items["normal/normal (1).png"].label == 0 and items["normal/normal (1).png"].meta["class"] == "normal"
    assert all(it.patient_id is None and it.reader == "image" for it in scan.items)
    mal2 = items["malignant/malignant (2).png"]
    assert [p.name for p in mal2.mask_paths] == ["malignant (2)_mask.png", "malignant (2)_mask_1.png",
                                                 "malignant (2)_mask_2.png"]


def test_busi_masks_merged_by_max(tmp_path):
    root = make_busi(tmp_path)
    items = _by_id(DATASETS.get("busi").scan(DATASETS.get("busi").options(), root))
    merged = read_mask(items["benign/benign (2).png"])
    expected = (_mask(24, 30, slice(2, 8), slice(2, 8)) | _mask(24, 30, slice(15, 20), slice(20, 28))) > 0
    assert merged.dtype == bool and np.array_equal(merged, expected)
    assert not read_mask(items["normal/normal (1).png"]).any()


def test_busi_three_identical_channels_read_as_gray(tmp_path):
    root = make_busi(tmp_path)
    items = _by_id(DATASETS.get("busi").scan(DATASETS.get("busi").options(), root))
    px = read_pixels(items["benign/benign (2).png"])
    assert px.shape == (24, 30) and np.array_equal(px, _img(seed=2).astype(np.float32))


def test_busi_normal_policy_drop(tmp_path):
    root = make_busi(tmp_path)
    scan = DATASETS.get("busi").scan(DATASETS.get("busi").options(normal="drop"), root)
    s = scan.summary()
    assert (s["images"], s["positives"], s["negatives"]) == (5, 2, 3)
    assert s["excluded"] == {"normal (data.busi.normal: drop)": 2}
    assert not any(it.image_id.startswith("normal/") for it in scan.items)


def test_busi_root_may_be_the_archive_folder(tmp_path):
    base = make_busi(tmp_path / "download")
    (tmp_path / "download" / "README.txt").write_text("x")
    scan = DATASETS.get("busi").scan(DATASETS.get("busi").options(), tmp_path / "download")
    assert scan.root == base and len(scan.items) == 7
    assert scan.items[0].image_id == "benign/benign (1).png"


def test_busi_quirks_warn(tmp_path):
    root = make_busi(tmp_path)
    _png(root / "benign" / "benign (3).png", _img(seed=3))  # image without a mask
    _png(root / "benign" / "benign (99)_mask.png", _mask(24, 30, slice(0, 2), slice(0, 2)))  # mask without image
    _png(root / "benign" / "benign (1)_mask_1.png", _mask(10, 10, slice(0, 2), slice(0, 2)))  # size mismatch
    (root / "benign" / "notes.txt").write_text("x")
    _png(root / "benign" / "malignant (7).png", _img(seed=7))
    (root / "extra").mkdir()
    scan = DATASETS.get("busi").scan(DATASETS.get("busi").options(), root)
    assert len(scan.items) == 9 and "benign/benign (99)_mask.png" not in _by_id(scan)
    text = "\n".join(scan.warnings)
    for needle in ["2 image(s) without a mask file", "benign/benign (3).png", "1 mask(s) without their image",
                   "benign/benign (99)_mask.png", "1 mask(s) of another size than their image",
                   "benign/benign (1)_mask_1.png (10x10 vs image 30x24)", "notes.txt", "extra/",
                   "named after another class than their folder (label taken from the folder): benign/malignant (7)"]:
        assert needle in text, needle
    assert _by_id(scan)["benign/malignant (7).png"].label == 0


def test_busi_missing_normal_folder_warns(tmp_path):
    root = make_busi(tmp_path)
    for p in (root / "normal").iterdir():
        p.unlink()
    (root / "normal").rmdir()
    scan = DATASETS.get("busi").scan(DATASETS.get("busi").options(), root)
    assert len(scan.items) == 5 and any("no normal/ folder" in w for w in scan.warnings)
    assert DATASETS.get("busi").scan(DATASETS.get("busi").options(normal="drop"), root).warnings == []


def test_busi_corrupt_files_are_problems_one_line_each(tmp_path):
    root = make_busi(tmp_path)
    (root / "malignant" / "malignant (3).png").write_bytes(b"\x89PNG not really")
    (root / "benign" / "benign (4).png").write_bytes(b"")
    (root / "benign" / "benign (1)_mask.png").write_bytes(b"garbage")
    scan = DATASETS.get("busi").scan(DATASETS.get("busi").options(), root)
    assert len(scan.problems) == 3
    assert any(p.startswith("malignant/malignant (3).png: unreadable image") for p in scan.problems)
    assert any(p.startswith("benign/benign (4).png: unreadable (empty file)") for p in scan.problems)
    assert any(p.startswith("benign/benign (1)_mask.png: unreadable") and "mask of benign (1).png" in p
               for p in scan.problems)
    items = _by_id(scan)
    assert "malignant/malignant (3).png" not in items and "benign/benign (4).png" not in items
    assert items["benign/benign (1).png"].mask_paths == ()  # image kept, its unreadable mask not
    with pytest.raises(DatasetFormatError, match=r"3 referenced file\(s\) missing or unreadable"):
        load_dataset("busi", {}, image_size=32, root=root)


def test_busi_truncated_png_named_on_load(tmp_path):
    root = make_busi(tmp_path)
    path = root / "malignant" / "malignant (1).png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header intact, pixel data cut: only decoding can tell
    with pytest.raises(DatasetFormatError, match=r"malignant \(1\)\.png"):
        load_dataset("busi", {}, image_size=32, root=root)


def test_busi_wrong_layout_says_what_was_expected_and_found(tmp_path):
    _png(tmp_path / "a.png", _img())
    (tmp_path / "xyz").mkdir()
    (tmp_path / "other").mkdir()
    with pytest.raises(DatasetFormatError) as err:
        DATASETS.get("busi").scan(DATASETS.get("busi").options(), tmp_path)
    msg = str(err.value)
    assert "expected sub-folders benign/, malignant/, normal/ under" in msg and "found: a.png, other/, xyz/" in msg


def test_busi_load_dataset(tmp_path):
    root = make_busi(tmp_path)
    d = load_dataset("busi", {"normal": "drop"}, image_size=32, root=root)
    assert isinstance(d, ArrayDataset) and d.name == "busi"
    assert d.images.shape == (5, 32, 32) and d.images.dtype == np.uint8
    assert d.labels.tolist() == [0, 0, 0, 1, 1] and d.patient_ids is None
    assert d.modality == "ultrasound" and d.image_ids[0] == "benign/benign (1).png"


def make_rodrigues(parent: Path) -> Path:
    """The Rodrigues archive: originals/benign/*.bmp (2), originals/malignant/*.bmp (3), variable sizes (4.2)."""
    orig = parent / "originals"
    sizes = [(57, 93), (161, 199), (64, 64), (70, 100), (80, 90)]
    for i, (h, w) in enumerate(sizes):
        cls = "benign" if i < 2 else "malignant"
        path = orig / cls / f"{cls[0].upper()}{i:03d}.bmp"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_img(h, w, seed=i)).save(path)
    (parent / "processed").mkdir()  # other archive content is not read
    return orig


def test_rodrigues_counts_labels(tmp_path):
    orig = make_rodrigues(tmp_path)
    _png(orig / "benign" / "stray.png", _img())  # not a BMP: excluded
    spec = DATASETS.get("rodrigues-us")
    scan = spec.scan(spec.options(), tmp_path)
    s = scan.summary()
    assert scan.root == orig
    assert (s["images"], s["positives"], s["negatives"], s["patients"]) == (5, 3, 2, None)
    assert [it.image_id for it in scan.items] == ["benign/B000.bmp", "benign/B001.bmp", "malignant/M002.bmp",
                                                  "malignant/M003.bmp", "malignant/M004.bmp"]
    assert s["excluded"] == {"not a .bmp (the Rodrigues images are BMP)": 1}
    assert read_pixels(scan.items[0]).shape == (57, 93)
    with pytest.raises(ValidationError):
        spec.options(normal="drop")


def test_rodrigues_root_may_be_originals_and_load(tmp_path):
    orig = make_rodrigues(tmp_path)
    d = load_dataset("rodrigues-us", {}, image_size=32, root=orig)
    assert isinstance(d, ArrayDataset) and d.images.shape == (5, 32, 32)
    assert d.labels.tolist() == [0, 0, 1, 1, 1] and d.patient_ids is None and d.modality == "ultrasound"


def test_rodrigues_errors(tmp_path):
    spec = DATASETS.get("rodrigues-us")
    with pytest.raises(DatasetFormatError, match=r"expected originals/benign/\*\.bmp .* found: nothing"):
        spec.scan(spec.options(), tmp_path)
    busi = make_busi(tmp_path / "busi")
    with pytest.raises(DatasetFormatError, match="that is BUSI; use dataset busi"):
        spec.scan(spec.options(), busi)
    orig = make_rodrigues(tmp_path / "rod")
    (orig / "malignant" / "M003.bmp").write_bytes(b"BM broken")
    scan = spec.scan(spec.options(), orig)
    assert len(scan.items) == 4 and len(scan.problems) == 1 and scan.problems[0].startswith("malignant/M003.bmp")
