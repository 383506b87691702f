"""bench.data.breastmnist on tiny MedMNIST-format ``.npz`` fixtures (DATASETS.md 4.3): 0 = malignant there."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import bench.data.breastmnist  # noqa: F401  (registers breastmnist)
from bench.data import ArrayDataset, DATASETS, load_dataset
from bench.data.items import DatasetFormatError, read_pixels

SPEC = DATASETS.get("breastmnist")
# MedMNIST labels: 0 = malignant, 1 = normal/benign
RAW = {"train": [0, 1, 1, 0], "val": [1, 0], "test": [1, 1]}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))


def _arrays(size: int = 28, raw: dict | None = None) -> dict[str, np.ndarray]:
    """The six MedMNIST keys; image ``i`` of a split is dark with a bright square whose side grows with ``i``."""
    out = {}
    for split, labels in (raw or RAW).items():
        imgs = np.full((len(labels), size, size), 20, np.uint8)
        for i in range(len(labels)):
            imgs[i, : 4 + 4 * i, : 4 + 4 * i] = 230
        out[f"{split}_images"] = imgs
        out[f"{split}_labels"] = np.asarray(labels, np.uint8).reshape(-1, 1)
    return out


def make_npz(folder: Path, name: str = "breastmnist.npz", *, compressed: bool = True, **arrays) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    (np.savez_compressed if compressed else np.savez)(path, **(arrays or _arrays()))
    return path


def _scan(root: Path, **options):
    return SPEC.scan(SPEC.options(**options), root)


def test_registered_and_options():
    assert SPEC.modality == "ultrasound" and SPEC.needs_root
    assert SPEC.options().splits == ("train", "val", "test")
    assert SPEC.options(splits="test").splits == ("test",)
    for bad in [{"splits": []}, {"splits": ["train", "train"]}, {"splits": ["dev"]}, {"size": 32}, {"x": 1}]:
        with pytest.raises(ValidationError):
            SPEC.options(**bad)


@pytest.mark.parametrize("compressed", [True, False])
def test_counts_ids_and_flipped_labels(tmp_path, compressed):
    make_npz(tmp_path, compressed=compressed)
    scan = _scan(tmp_path)
    s = scan.summary()
    assert (s["images"], s["positives"], s["negatives"], s["patients"]) == (8, 3, 5, None)
    assert s["problems"] == [] and s["warnings"] == [] and s["excluded"] == {}
    assert [it.image_id for it in scan.items][:5] == ["train/00000", "train/00001", "train/00002", "train/00003",
                                                     "val/00000"]
    raw = [r for split in ("train", "val", "test") for r in RAW[split]]
    assert [it.label for it in scan.items] == [1 - r for r in raw]  # 0 (malignant there) -> 1 here
    assert [it.meta["label_raw"] for it in scan.items] == raw
    it = scan.items[5]
    assert it.reader == "npz" and it.index == ("val_images", 1) and it.meta["official_split"] == "val"
    assert it.label == 1 and it.patient_id is None


def test_pixels_come_from_the_right_row(tmp_path):
    make_npz(tmp_path)
    items = {it.image_id: it for it in _scan(tmp_path).items}
    px = read_pixels(items["train/00002"])
    assert px.shape == (28, 28) and px.dtype == np.float32
    assert (px == 230).sum() == 12 * 12


def test_split_option_counts_the_rest_as_excluded(tmp_path):
    make_npz(tmp_path)
    scan = _scan(tmp_path, splits=["train", "test"])
    assert [it.image_id for it in scan.items] == ["train/00000", "train/00001", "train/00002", "train/00003",
                                                  "test/00000", "test/00001"]
    assert scan.excluded == {"official split 'val' not selected (data.breastmnist.splits)": 2}


def test_file_choice(tmp_path):
    make_npz(tmp_path)
    make_npz(tmp_path, "breastmnist_64.npz", **_arrays(64))
    (tmp_path / "pneumoniamnist.npz").write_bytes(b"other MedMNIST sets share the folder")
    scan = _scan(tmp_path)
    assert scan.items[0].path.name == "breastmnist_64.npz"
    assert any("several BreastMNIST files" in w and "data.breastmnist.size" in w for w in scan.warnings)
    assert read_pixels(scan.items[0]).shape == (64, 64)
    assert _scan(tmp_path, size=28).items[0].path.name == "breastmnist.npz"
    with pytest.raises(DatasetFormatError, match=r"expected breastmnist_224\.npz .*found: breastmnist\.npz"):
        _scan(tmp_path, size=224)


def test_format_errors(tmp_path):
    with pytest.raises(DatasetFormatError, match=r"expected breastmnist\.npz \(28 px\).*found: nothing"):
        _scan(tmp_path)
    arrays = _arrays()
    del arrays["val_labels"]
    make_npz(tmp_path, **arrays)
    with pytest.raises(DatasetFormatError, match=r"has no array\(s\) val_labels; found: test_images"):
        _scan(tmp_path)
    assert len(_scan(tmp_path, splits=["train", "test"]).items) == 6  # the missing split is not needed
    arrays = _arrays()
    arrays["train_labels"] = arrays["train_labels"][:3]
    make_npz(tmp_path, **arrays)
    with pytest.raises(DatasetFormatError, match=r"train_labels has shape \(3, 1\) for 4 images"):
        _scan(tmp_path)


def test_unreadable_npz_is_a_problem(tmp_path):
    (tmp_path / "breastmnist.npz").write_bytes(b"PK\x03\x04 truncated download")
    scan = _scan(tmp_path)
    assert scan.items == [] and len(scan.problems) == 1 and scan.problems[0].startswith("breastmnist.npz: unreadable")
    with pytest.raises(DatasetFormatError, match="missing or unreadable"):
        load_dataset("breastmnist", {}, image_size=32, root=tmp_path)


def test_unexpected_label_values_excluded(tmp_path):
    make_npz(tmp_path, **_arrays(raw={"train": [0, 2, 1], "val": [1], "test": [0]}))
    scan = _scan(tmp_path)
    assert len(scan.items) == 4 and scan.excluded == {"label not 0 or 1": 1}
    assert any("train/00001=2" in w for w in scan.warnings)


def test_load_dataset(tmp_path):
    make_npz(tmp_path)
    d = load_dataset("breastmnist", {"splits": ["train"]}, image_size=32, root=tmp_path)
    assert isinstance(d, ArrayDataset) and d.name == "breastmnist" and d.modality == "ultrasound"
    assert d.images.shape == (4, 32, 32) and d.images.dtype == np.uint8
    assert d.labels.tolist() == [1, 0, 0, 1] and d.patient_ids is None
    assert d.image_ids.tolist() == ["train/00000", "train/00001", "train/00002", "train/00003"]
    assert d.images[0, 1, 1] > 200 and d.images[0, 20, 20] < 50
