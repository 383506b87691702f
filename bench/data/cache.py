"""Decode cache: a scanned real dataset becomes an in-memory :class:`ArrayDataset`, decoded once.

Full-field mammograms are thousands of pixels on a side, and decoding a DICOM costs far more than a
training step on its 64-px thumbnail. So each image is decoded and resized once per (dataset
fingerprint, preprocessing settings) and the uint8 result stored in one compressed ``.npz`` under
the cache folder (``$BENCH_CACHE_DIR``, default ``~/.cache/bench``). Every later load - the next
cell, the next run, the next suite - reads that file and touches no source image.

The fingerprint covers each item's id, label, patient, file path, size and modification time, so
an edited, added or relabelled image invalidates the cache; a changed adapter option changes the
item list and so the fingerprint too.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from functools import partial
from pathlib import Path

import numpy as np

from bench.data.base import ArrayDataset, DatasetFormatError, DatasetSpec, data_root
from bench.data.dedup import DEFAULT_MAX_DISTANCE, near_duplicate_groups
from bench.data.helpers import read_mask
from bench.data.items import Item, Scan, one_class_message, read_pixels
from bench.data.preprocess import (
    RoiRejected,
    Size,
    as_hw,
    falconi_roi,
    pipeline_key,
    place_mask,
    size_label,
    to_uint8,
)
from bench.fileio import write_atomic_with

CACHE_VERSION = 2


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "bench"))


def fingerprint(name: str, items: list[Item]) -> str:
    """Hash of what the dataset *is* on disk: ids, labels, patients, files and their size/mtime."""
    h = hashlib.sha256(name.encode())
    for it in items:
        st = it.path.stat()
        h.update(json.dumps([it.image_id, it.label, it.patient_id, str(it.path), st.st_size, st.st_mtime_ns,
                             it.index]).encode())
    return h.hexdigest()[:20]


def decode_item(item: Item, image_size: Size, *, resize: str = "pad",
                roi_pipeline: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """One item's uint8 image and (when it has mask files) its boolean lesion mask, preprocessed.

    Raises:
        RoiRejected: the ROI pipeline refuses the image (the caller excludes it).
        ValueError: a file is unreadable.
    """
    pixels = read_pixels(item)
    mask = read_mask(item, shape=pixels.shape) if item.has_mask else None
    if roi_pipeline == "falconi":
        if mask is None:
            raise ValueError(f"{item.image_id}: roi_pipeline 'falconi' needs a lesion mask and this image has none")
        return falconi_roi(pixels, mask, image_size)
    image = to_uint8(pixels, image_size, resize=resize)
    return image, None if mask is None else place_mask(mask, image_size, resize=resize)


def decode_all(items: list[Item], image_size: Size, *, resize: str = "pad", roi_pipeline: str | None = None,
               log=None) -> dict[str, np.ndarray]:
    """Decode every item: ``{"images", "masks" (all False where an image has none), "has_mask", "rejected"}``
    (``rejected``: the ROI pipeline's reason per image, "" when kept).

    Raises:
        ValueError: one or more files are unreadable; the message lists every one of them, one per line.
    """
    h, w = as_hw(image_size)
    images = np.zeros((len(items), h, w), np.uint8)
    masks = np.zeros((len(items), h, w), bool)
    has_mask = np.zeros(len(items), bool)
    rejected = np.full(len(items), "", dtype=object)
    t0 = time.perf_counter()
    unreadable: list[str] = []
    for i, it in enumerate(items):
        try:
            img, m = decode_item(it, image_size, resize=resize, roi_pipeline=roi_pipeline)
        except RoiRejected as exc:
            rejected[i] = str(exc)
            continue
        except ValueError as exc:  # go on: every unreadable file is listed at once
            unreadable.append(str(exc))
            continue
        images[i] = img
        if m is not None:
            masks[i], has_mask[i] = m, True
        if log and (i + 1) % 200 == 0:
            log(f"  decoded {i + 1}/{len(items)} images ({(i + 1) / (time.perf_counter() - t0):.0f}/s)")
    if len(unreadable) == 1:
        raise ValueError(unreadable[0])
    if unreadable:
        raise ValueError(f"{len(unreadable)} unreadable files:\n    " + "\n    ".join(unreadable))
    return {"images": images, "masks": masks, "has_mask": has_mask, "rejected": rejected.astype(str)}


def cached_images(name: str, items: list[Item], image_size: Size, *, resize: str = "pad",
                  roi_pipeline: str | None = None, log=None) -> tuple[dict[str, np.ndarray], dict]:
    """The decoded, preprocessed arrays of ``items`` (see :func:`decode_all`), from the cache when present.
    Returns ``(arrays, info)``."""
    key = (f"{name}-{fingerprint(name, items)}-{size_label(image_size)}-{pipeline_key(resize, roi_pipeline)}"
           f"-v{CACHE_VERSION}")
    path = cache_dir() / "decoded" / f"{key}.npz"
    ids = np.array([it.image_id for it in items])
    if path.exists():
        with np.load(path) as z:
            if np.array_equal(z["image_ids"], ids):
                return {k: z[k] for k in ("images", "masks", "has_mask", "rejected")}, {"cache": str(path), "hit": True}
    t0 = time.perf_counter()
    arrays = decode_all(items, image_size, resize=resize, roi_pipeline=roi_pipeline, log=log)
    seconds = time.perf_counter() - t0
    write_atomic_with(path, lambda f: np.savez_compressed(f, image_ids=ids, **arrays))
    return arrays, {"cache": str(path), "hit": False, "decode_s": seconds}


def load_scanned(name: str, scan, options, *, image_size: Size, root: Path | None) -> ArrayDataset:
    """Scan a real dataset, refuse if referenced files are missing, and load its images via the cache.

    Lesion masks come along when every kept image has one. Datasets without patient ids get
    near-duplicate groups (:mod:`bench.data.dedup`) as their split groups.
    """
    result: Scan = scan(options, data_root(name, root))
    if result.problems:
        raise DatasetFormatError(f"dataset {name!r} at {result.root}: {len(result.problems)} referenced file(s) "
                                 "missing or unreadable (run 'bench data check' for the list):\n  "
                                 + "\n  ".join(result.problems[:20]))
    if not result.items:
        raise DatasetFormatError(f"dataset {name!r} at {result.root}: no usable image found")
    items = result.items
    n_pos = sum(it.label for it in items)
    if n_pos in (0, len(items)):
        raise DatasetFormatError(f"{one_class_message(name, n_pos, len(items) - n_pos)} (run 'bench data check "
                                 f"{name} --root {result.root}')")
    roi_pipeline = getattr(options, "roi_pipeline", None)
    try:
        arrays, info = cached_images(name, items, image_size, resize=getattr(options, "resize", "pad"),
                                     roi_pipeline=roi_pipeline)
    except ValueError as exc:  # unreadable images: name them all and the way out
        raise DatasetFormatError(f"dataset {name!r}: {exc}\n  Remove or replace the file(s), or run "
                                 f"'bench data check {name} --root {result.root} --skip-bad'") from None
    excluded = dict(result.excluded)
    keep = arrays["rejected"] == ""
    for reason in arrays["rejected"][~keep]:
        key = f"ROI pipeline: {reason.split(' (')[0]}"
        excluded[key] = excluded.get(key, 0) + 1
    items = [it for it, k in zip(items, keep) if k]
    if not items:
        raise DatasetFormatError(f"dataset {name!r}: the ROI pipeline rejected every image ({excluded})")
    images = arrays["images"][keep]
    masks = arrays["masks"][keep] if arrays["has_mask"][keep].all() else None
    patients = np.array([it.patient_id for it in items]) if result.has_patients else None
    kinds = [it.meta.get("lesion_kind") for it in items]  # mass / calc per image, where the adapter knows it
    if all(k is not None for k in kinds):
        info["lesion_kind"] = kinds
    groups = None
    if patients is None:
        groups, info["near_duplicates"] = near_duplicate_groups(
            images, max_distance=getattr(options, "near_duplicate_distance", DEFAULT_MAX_DISTANCE))
    return ArrayDataset(name=name, images=images, labels=np.array([it.label for it in items], np.int64),
                        image_ids=np.array([it.image_id for it in items]), patient_ids=patients, masks=masks,
                        group_ids=groups, modality=getattr(options, "modality", "mammography"),
                        meta={"root": str(result.root), "excluded": excluded, **info})


def real_dataset_spec(name: str, scan, options: type, *, modality: str = "mammography", description: str = ""):
    """The DatasetSpec of a real dataset: ``scan(options, root) -> Scan``; loading (decode, resize, cache)
    is shared by every adapter (:func:`load_scanned`)."""
    return DatasetSpec(name=name, load=partial(load_scanned, name, scan), options=options, modality=modality,
                       description=description, needs_root=True, scan=scan)
