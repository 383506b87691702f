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
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data import ArrayDataset, data_root
from bench.data.items import DatasetFormatError, Item, Scan, read_pixels

CACHE_VERSION = 1


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "bench"))


def to_uint8_square(pixels: np.ndarray, size: int, *, resize: str = "pad") -> np.ndarray:
    """Min-max scale to 0..255 and resize to ``size`` x ``size``.

    Args:
        resize: "pad" keeps the aspect ratio and pads with zeros (background); "stretch" does not.
    """
    a = pixels.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    h, w = a.shape
    if resize == "stretch":
        nh = nw = size
    else:
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    # reducing_gap: a box pre-shrink, then bilinear: fast on 4000-px images without aliasing
    img = Image.fromarray(a).resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=3.0)
    out = np.zeros((size, size), np.float32)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = np.asarray(img)
    return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)


def fingerprint(name: str, items: list[Item]) -> str:
    """Hash of what the dataset *is* on disk: ids, labels, patients, files and their size/mtime."""
    h = hashlib.sha256(name.encode())
    for it in items:
        st = it.path.stat()
        h.update(json.dumps([it.image_id, it.label, it.patient_id, str(it.path), st.st_size, st.st_mtime_ns,
                             it.index]).encode())
    return h.hexdigest()[:20]


def _save_atomic(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def decode_all(items: list[Item], image_size: int, *, resize: str = "pad", log=None) -> np.ndarray:
    out = np.empty((len(items), image_size, image_size), np.uint8)
    t0 = time.perf_counter()
    for i, it in enumerate(items):
        out[i] = to_uint8_square(read_pixels(it), image_size, resize=resize)
        if log and (i + 1) % 200 == 0:
            log(f"  decoded {i + 1}/{len(items)} images ({(i + 1) / (time.perf_counter() - t0):.0f}/s)")
    return out


def cached_images(name: str, items: list[Item], image_size: int, *, resize: str = "pad",
                  log=None) -> tuple[np.ndarray, dict]:
    """The decoded, resized images of ``items``, from the cache when present. Returns (images, info)."""
    key = f"{name}-{fingerprint(name, items)}-{image_size}-{resize}-v{CACHE_VERSION}"
    path = cache_dir() / "decoded" / f"{key}.npz"
    ids = np.array([it.image_id for it in items])
    if path.exists():
        with np.load(path) as z:
            if np.array_equal(z["image_ids"], ids):
                return z["images"], {"cache": str(path), "hit": True}
    t0 = time.perf_counter()
    images = decode_all(items, image_size, resize=resize, log=log)
    seconds = time.perf_counter() - t0
    _save_atomic(path, images=images, image_ids=ids)
    return images, {"cache": str(path), "hit": False, "decode_s": seconds}


def load_scanned(name: str, scan, options, *, image_size: int, root: Path | None) -> ArrayDataset:
    """Scan a real dataset, refuse if referenced files are missing, and load its images via the cache."""
    result: Scan = scan(options, data_root(name, root))
    if result.problems:
        raise DatasetFormatError(f"dataset {name!r} at {result.root}: {len(result.problems)} referenced file(s) "
                                 "missing or unreadable (run 'bench data check' for the list):\n  "
                                 + "\n  ".join(result.problems[:20]))
    if not result.items:
        raise DatasetFormatError(f"dataset {name!r} at {result.root}: no usable image found")
    items = result.items
    resize = getattr(options, "resize", "pad")
    try:
        images, info = cached_images(name, items, image_size, resize=resize)
    except ValueError as exc:  # an unreadable image: name it and the way out
        raise DatasetFormatError(f"dataset {name!r}: {exc}. Remove or replace the file, or run "
                                 f"'bench data check {name} --root {result.root} --skip-bad'") from None
    return ArrayDataset(name=name, images=images, labels=np.array([it.label for it in items], np.int64),
                        image_ids=np.array([it.image_id for it in items]),
                        patient_ids=np.array([it.patient_id for it in items]) if result.has_patients else None,
                        modality=getattr(options, "modality", "mammography"),
                        meta={"root": str(result.root), "excluded": dict(result.excluded), **info})
