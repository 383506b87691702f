"""Datasets held in memory for the life of a run (loaded once, shared by every cell)."""
from __future__ import annotations

import json
from functools import lru_cache

from bench.data import ArrayDataset, load_dataset
from bench.data.preprocess import as_hw


@lru_cache(maxsize=8)
def _cached(name: str, options_json: str, image_size: int | tuple[int, int]) -> ArrayDataset:
    opts = json.loads(options_json)
    root = opts.pop("root", None)
    return load_dataset(name, opts, image_size=image_size, root=root)


def forget_datasets() -> None:
    """Drop the datasets held in memory: a new run sees the data as it is on disk now (one process may run several
    suites, or the same suite after its data changed)."""
    _cached.cache_clear()


def get_dataset(name: str, options: dict, image_size: int | list[int]) -> ArrayDataset:
    """``image_size``: a square side or ``[height, width]`` (as stored in cell configs)."""
    h, w = as_hw(image_size)
    return _cached(name, json.dumps(options, sort_keys=True), h if h == w else (h, w))
