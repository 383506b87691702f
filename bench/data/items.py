"""The real-dataset adapter contract: a scan of a dataset folder into :class:`Item` s.

An adapter reads a dataset's metadata exactly as its users have it on disk (see
../shared/DATASETS.md) and returns a :class:`Scan`: one :class:`Item` per usable image, the
images it excluded and why, warnings, and *problems* (referenced files that are missing or
unreadable). It never decodes pixels; :func:`read_pixels` does, on demand, and the decode cache
(a later step) stores the result resized.

Adapters register ``real_dataset_spec(name, scan, Options)`` (:mod:`bench.data.cache`): a
``DatasetSpec(name, load=..., scan=scan, needs_root=True, ...)`` whose loader decodes through the cache.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from bench.data.base import DatasetFormatError

__all__ = ["DatasetFormatError", "Item", "Reader", "Scan", "one_class_message", "read_pixels"]

Reader = Literal["dicom", "image", "npz"]


@dataclass(frozen=True)
class Item:
    """One image of a dataset.

    Attributes:
        image_id: unique within the dataset, stable across machines (relative, not absolute paths).
        label: 1 = malignant, 0 = benign or normal (after the adapter's label policy).
        path: the file holding the pixels.
        reader: how to decode ``path``: "dicom" (pydicom), "image" (Pillow: PNG, PGM, BMP, JPEG), "npz".
        patient_id: the grouping key for leak-free splits, or None when the dataset has none.
        view: "CC", "MLO", ... where known; laterality: "L" or "R" where known.
        mask_paths: lesion mask files (merged by OR when several), if any.
        index: for ``npz``: ``(array_name, row)``; unused otherwise.
        mask_shapes: lesion outlines drawn into the mask, for datasets that give coordinates instead of mask
            files: ``("polygon", ((row, col), ...))`` or ``("circle", (row, col, radius))``, in pixels of
            ``mask_frame`` (default: the image's own size). ``None`` = no annotation; ``()`` = annotated and
            free of lesions (an empty mask, not a missing one).
        mask_frame: ``(height, width)`` the shapes' coordinates refer to (MIAS: the 1024 x 1024 film).
        meta: adapter metadata (BI-RADS string, abnormality types, original label, ...), JSON-able.
    """

    image_id: str
    label: int
    path: Path
    reader: Reader = "image"
    patient_id: str | None = None
    view: str | None = None
    laterality: str | None = None
    mask_paths: tuple[Path, ...] = ()
    index: tuple[str, int] | None = None
    meta: dict = field(default_factory=dict, hash=False, compare=False)
    mask_shapes: tuple | None = field(default=None, hash=False, compare=False)
    mask_frame: tuple[int, int] | None = None

    @property
    def has_mask(self) -> bool:
        return bool(self.mask_paths) or self.mask_shapes is not None


@dataclass
class Scan:
    """What an adapter found in a dataset folder."""

    dataset: str
    root: Path
    items: list[Item] = field(default_factory=list)
    excluded: Counter = field(default_factory=Counter)  # reason -> count
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # missing/unreadable referenced files, one per file
    has_patients: bool = True

    def summary(self) -> dict:
        labels = [it.label for it in self.items]
        patients = {it.patient_id for it in self.items} if self.has_patients else None
        return {"dataset": self.dataset, "root": str(self.root), "images": len(self.items),
                "positives": int(sum(labels)), "negatives": int(len(labels) - sum(labels)),
                "patients": None if patients is None else len(patients),
                "excluded": dict(self.excluded), "warnings": list(self.warnings), "problems": list(self.problems)}


def one_class_message(name: str, positives: int, negatives: int) -> str:
    """Why a dataset whose images all carry one label cannot be used (no AUC, nothing to learn)."""
    which = "malignant (label 1)" if positives else "benign/normal (label 0)"
    return (f"dataset {name!r}: all {positives + negatives} usable image(s) are {which}: no AUC can be computed and "
            "there is nothing to learn; check the label policy, the class folders or label values, and the "
            "exclusions")


@lru_cache(maxsize=4)
def _npz_array(path: str, name: str) -> np.ndarray:
    """One array of an .npz, decompressed once (BreastMNIST keeps all images of a split in one array)."""
    with np.load(path) as z:
        return z[name]


def read_pixels(item: Item) -> np.ndarray:
    """Decode one item's pixels into a 2-d float32 array (grayscale; larger = brighter / denser)."""
    from bench.data import imageio

    if item.reader == "dicom":
        return imageio.read_dicom(item.path)
    if item.reader == "npz":
        name, row = item.index
        return imageio.to_gray(_npz_array(str(item.path), name)[row])
    return imageio.read_image(item.path)
