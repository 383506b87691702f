"""Datasets: the adapter contract, the dataset registry and ``load_dataset``.

Every dataset, synthetic or real, is materialised as an :class:`ArrayDataset`: grayscale
``uint8`` images already resized to the suite's image size, binary labels (1 = malignant),
image ids and patient ids. Training code never sees files, only these arrays.

A dataset is registered as a :class:`DatasetSpec`: a loader plus a pydantic model of the
options a suite may set for it under ``data.<name>`` (unknown options are errors).

The contract lives in :mod:`bench.data.base`, which imports no adapter; adapters import it, never this
package. This package re-exports it and, last, imports the built-in adapters so that they register
themselves: the one place where registration happens.
"""
from __future__ import annotations

from bench.data.base import (
    DATASETS,
    ArrayDataset,
    DatasetFormatError,
    DatasetOptions,
    DatasetSpec,
    data_root,
    load_dataset,
    register_dataset,
)

__all__ = ["DATASETS", "ArrayDataset", "DatasetFormatError", "DatasetOptions", "DatasetSpec", "data_root",
           "load_dataset", "register_dataset"]


def _register_builtins() -> None:
    # Each module registers its datasets at import.
    from bench.data import (  # noqa: F401
        breastmnist,
        cbis_ddsm,
        generic,
        inbreast,
        mias,
        synth_obvious,
        synthetic,
        ultrasound,
    )


_register_builtins()
