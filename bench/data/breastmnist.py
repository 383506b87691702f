"""``breastmnist``: BreastMNIST (MedMNIST v2 / MedMNIST+), a resized BUSI in one ``.npz`` file.

Layout (the MedMNIST download folder, default ``~/.medmnist``)::

    ROOT/
      breastmnist.npz        28 x 28     (or breastmnist_64.npz, breastmnist_128.npz, breastmnist_224.npz)

Each file holds ``train_images`` / ``train_labels`` (546), ``val_*`` (78) and ``test_*`` (156): images
``N x H x W`` grayscale, labels ``N x 1``. **Labels are flipped** with respect to the harness: in
BreastMNIST ``0 = malignant`` and ``1 = normal or benign``, so the adapter maps 0 -> 1 and 1 -> 0 and
keeps the original under ``meta["label_raw"]``. Image ids are ``<split>/<row>``, e.g. ``train/00012``.

There are no patient ids, and the official 7:1:2 split could not be patient-grouped (BUSI has none);
it is a resized BUSI, so never use BUSI and BreastMNIST as two independent targets in one experiment.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from bench.data.base import DatasetFormatError, DatasetOptions, register_dataset
from bench.data.cache import real_dataset_spec
from bench.data.helpers import describe_dir, examples, natural_key
from bench.data.items import Item, Scan

SPLITS = ("train", "val", "test")
SIZES = (28, 64, 128, 224)
FILE_RE = re.compile(r"^breastmnist(?:_(\d+))?\.npz$", re.IGNORECASE)


class BreastMNISTOptions(DatasetOptions):
    """``breastmnist``: the MedMNIST ``.npz`` (``data.breastmnist`` in a suite)."""

    modality: ClassVar[str] = "ultrasound"
    splits: tuple[Literal["train", "val", "test"], ...] = Field(
        SPLITS, min_length=1, description="official splits to include (train 546, val 78, test 156 images)")
    size: Literal[28, 64, 128, 224] | None = Field(
        None, description="which file: 28 = breastmnist.npz, 64/128/224 = breastmnist_<size>.npz; "
                          "null: the only one present, or the largest")

    @field_validator("splits", mode="before")
    @classmethod
    def _listify(cls, v):
        return (v,) if isinstance(v, str) else v

    @field_validator("splits")
    @classmethod
    def _unique(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"splits must not repeat; got {list(v)}")
        return v


def _file_size(path: Path) -> int:
    return int(FILE_RE.match(path.name).group(1) or 28)


def _find_file(options: BreastMNISTOptions, root: Path, scan: Scan) -> Path:
    found = sorted((p for p in root.iterdir() if p.is_file() and FILE_RE.match(p.name)), key=_file_size)
    if options.size is not None:
        match = [p for p in found if _file_size(p) == options.size]
        if not match:
            want = "breastmnist.npz" if options.size == 28 else f"breastmnist_{options.size}.npz"
            raise DatasetFormatError(f"breastmnist: expected {want} under {root} (data.breastmnist.size: "
                                     f"{options.size}); found: {describe_dir(root)}. Download that resolution "
                                     "or change data.breastmnist.size")
        return match[0]
    if not found:
        raise DatasetFormatError(f"breastmnist: expected breastmnist.npz (28 px) or breastmnist_<64|128|224>.npz "
                                 f"under {root}; found: {describe_dir(root)}. Point the root at the MedMNIST "
                                 "download folder (default ~/.medmnist)")
    if len({_file_size(p) for p in found}) > 1:
        scan.warnings.append(f"several BreastMNIST files ({', '.join(p.name for p in found)}); using the largest, "
                             f"{found[-1].name}: set data.breastmnist.size to choose")
    return found[-1]


def _npy_shape(zf: zipfile.ZipFile, member: str) -> tuple[int, ...]:
    """Shape of an array inside an ``.npz`` from its header alone (the pixels are not read)."""
    fmt = np.lib.format
    with zf.open(member) as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            return fmt.read_array_header_1_0(f)[0]
        if version == (2, 0):
            return fmt.read_array_header_2_0(f)[0]
    with zf.open(member) as f:  # a newer format version: read the array
        return np.load(f, allow_pickle=False).shape


def scan_breastmnist(options: BreastMNISTOptions, root: Path) -> Scan:
    """Scan a folder holding ``breastmnist*.npz`` (see the module docstring)."""
    root = Path(root)
    scan = Scan(dataset="breastmnist", root=root, has_patients=False)
    path = _find_file(options, root, scan)
    try:
        with zipfile.ZipFile(path) as zf:
            arrays = {n[:-4]: n for n in zf.namelist() if n.endswith(".npy")}
            wanted = [f"{s}_{k}" for s in options.splits for k in ("images", "labels")]
            missing = [k for k in wanted if k not in arrays]
            if missing:
                raise DatasetFormatError(
                    f"breastmnist: {path} has no array(s) {', '.join(missing)}; found: "
                    f"{', '.join(sorted(arrays, key=natural_key)) or 'none'}. Expected the MedMNIST keys "
                    f"<train|val|test>_images and _labels; re-download the file or set data.breastmnist.splits")
            shapes = {s: _npy_shape(zf, arrays[f"{s}_images"]) for s in SPLITS if f"{s}_images" in arrays}
        with np.load(path, allow_pickle=False) as z:
            labels = {s: np.asarray(z[f"{s}_labels"]) for s in options.splits}
    except DatasetFormatError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        scan.problems.append(f"{path.name}: unreadable .npz ({type(exc).__name__}: {exc})")
        return scan
    for s in SPLITS:
        if s not in options.splits and s in shapes:
            scan.excluded[f"official split {s!r} not selected (data.breastmnist.splits)"] += shapes[s][0]
    bad_labels: list[str] = []
    for s in options.splits:
        shape, lab = shapes[s], labels[s]
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] not in (1, 3)):
            raise DatasetFormatError(f"breastmnist: {path.name}: {s}_images has shape {shape}; expected N x H x W "
                                     "(or N x H x W x 1|3). Re-download the file")
        if lab.ndim > 2 or (lab.ndim == 2 and lab.shape[1] != 1) or len(lab) != shape[0]:
            raise DatasetFormatError(f"breastmnist: {path.name}: {s}_labels has shape {lab.shape} for "
                                     f"{shape[0]} images; expected ({shape[0]}, 1). Re-download the file")
        for row, raw in enumerate(lab.reshape(-1).tolist()):
            image_id = f"{s}/{row:05d}"
            if raw not in (0, 1):
                bad_labels.append(f"{image_id}={raw!r}")
                scan.excluded["label not 0 or 1"] += 1
                continue
            scan.items.append(Item(image_id=image_id, label=1 - int(raw), path=path, reader="npz",
                                   index=(f"{s}_images", row),
                                   meta={"official_split": s, "label_raw": int(raw)}))
    if bad_labels:
        scan.warnings.append(f"{len(bad_labels)} label(s) other than the integers 0 (malignant) or 1 (benign/normal) "
                             f"in {path.name} <split>_labels excluded: {examples(bad_labels)}")
    return scan


SPEC = register_dataset(real_dataset_spec(
    "breastmnist", scan_breastmnist, BreastMNISTOptions, modality="ultrasound",
    description="BreastMNIST (MedMNIST .npz, resized BUSI; labels flipped to 1 = malignant); not with busi"))
