"""The dataset contract: :class:`ArrayDataset`, :class:`DatasetSpec`, the ``DATASETS`` registry, ``load_dataset``.

A leaf module: it imports no adapter, so every adapter can import it (``bench.data`` re-exports its
names and registers the built-in adapters once, after importing this).

Every dataset, synthetic or real, is materialised as an :class:`ArrayDataset`: grayscale
``uint8`` images already resized to the suite's image size, binary labels (1 = malignant),
image ids and patient ids. Training code never sees files, only these arrays.

A dataset is registered as a :class:`DatasetSpec`: a loader plus a pydantic model of the
options a suite may set for it under ``data.<name>`` (unknown options are errors).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from bench.errors import UserError
from bench.registry import Registry


class DatasetFormatError(UserError, ValueError):
    """A dataset folder or file is not in the expected format; the message names the path and the fix."""


class DatasetOptions(BaseModel):
    """Base class of a dataset's options (``data.<name>`` in a suite). Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ArrayDataset:
    """A whole dataset in memory.

    Attributes:
        name: registry name of the dataset.
        images: ``(N, H, W)`` uint8 grayscale images at the requested size (square or height x width).
        labels: ``(N,)`` int64, 1 = malignant, 0 = benign or normal.
        image_ids: ``(N,)`` str, unique per image.
        patient_ids: ``(N,)`` str, or None when the dataset has no patient key
            (then every image is its own group).
        masks: ``(N, H, W)`` bool lesion masks, or None.
        group_ids: ``(N,)`` str split groups for datasets without patient ids (near-duplicate clusters,
            see :mod:`bench.data.dedup`), or None.
        modality: "mammography" or "ultrasound" (informational).
        meta: adapter metadata (generator parameters, fingerprints, ...).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    image_ids: np.ndarray
    patient_ids: np.ndarray | None = None
    masks: np.ndarray | None = None
    modality: str = "mammography"
    meta: dict = field(default_factory=dict)
    group_ids: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.labels)
        if self.images.ndim != 3 or len(self.images) != n or len(self.image_ids) != n:
            raise ValueError(f"dataset {self.name!r}: images {self.images.shape}, labels {n} and "
                             f"image_ids {len(self.image_ids)} disagree")
        if self.patient_ids is not None and len(self.patient_ids) != n:
            raise ValueError(f"dataset {self.name!r}: {len(self.patient_ids)} patient ids for {n} images")
        if self.masks is not None and self.masks.shape != self.images.shape:
            raise ValueError(f"dataset {self.name!r}: masks {self.masks.shape} differ from images {self.images.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def groups(self) -> np.ndarray:
        """The grouping key for leak-free splits: patient id, else the near-duplicate group, else the image."""
        if self.patient_ids is not None:
            return self.patient_ids
        return self.group_ids if self.group_ids is not None else self.image_ids


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: ``load(options, image_size=..., root=...) -> ArrayDataset``."""

    name: str
    load: Callable[..., ArrayDataset]
    options: type[DatasetOptions] = DatasetOptions
    modality: str = "mammography"
    description: str = ""
    needs_root: bool = False
    scan: Callable[..., object] | None = None  # real datasets: scan(options, root) -> items.Scan


DATASETS: Registry[DatasetSpec] = Registry("dataset", group="bench.datasets")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    return DATASETS.register(spec.name, spec)


def load_dataset(name: str, options: dict | DatasetOptions | None = None, *, image_size: int,
                 root: str | Path | None = None) -> ArrayDataset:
    """Load a registered dataset by name, validating its options."""
    spec = DATASETS.get(name)
    if not isinstance(options, DatasetOptions):
        options = spec.options(**(options or {}))
    return spec.load(options, image_size=image_size, root=Path(root) if root else None)


def data_root(name: str, root: str | Path | None, *, fix: str | None = None) -> Path:
    """Where dataset ``name`` lives: an explicit root, else ``$BENCH_DATA_ROOT/<name>``.

    ``fix``: what to correct when the folder is wrong (``bench data check`` says ``--root``); by default the
    suite's ``data.<name>.root``, ``--data-root`` or ``BENCH_DATA_ROOT``."""
    if root is None and os.environ.get("BENCH_DATA_ROOT"):
        root = Path(os.environ["BENCH_DATA_ROOT"]) / name
    if root is None:
        raise DatasetFormatError(f"dataset {name!r} needs its folder: set data.{name}.root in the suite, pass "
                                 f"--data-root, or set BENCH_DATA_ROOT (then it is $BENCH_DATA_ROOT/{name})")
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        fix = fix or f"data.{name}.root, --data-root or BENCH_DATA_ROOT"
        raise DatasetFormatError(f"dataset {name!r}: folder {root} {what}; fix {fix} (it must be the dataset's "
                                 "folder)")
    return root
