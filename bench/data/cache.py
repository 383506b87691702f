"""Turning a scanned real dataset into an in-memory ArrayDataset (decode, resize; cached on disk later)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bench.data import ArrayDataset, data_root
from bench.data.items import DatasetFormatError, Scan, read_pixels


def to_uint8_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Min-max scale to 0..255 and resize to ``size`` x ``size`` (aspect kept, zero padded)."""
    a = pixels.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    h, w = a.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    img = Image.fromarray(a).resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=3.0)
    out = np.zeros((size, size), np.float32)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = np.asarray(img)
    return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)


def load_scanned(name: str, scan, options, *, image_size: int, root: Path | None) -> ArrayDataset:
    result: Scan = scan(options, data_root(name, root))
    if result.problems:
        raise DatasetFormatError(f"dataset {name!r} at {result.root}: {len(result.problems)} referenced file(s) "
                                 "missing or unreadable:\n  " + "\n  ".join(result.problems))
    if not result.items:
        raise DatasetFormatError(f"dataset {name!r} at {result.root}: no usable image found")
    images = np.stack([to_uint8_square(read_pixels(it), image_size) for it in result.items])
    items = result.items
    return ArrayDataset(name=name, images=images, labels=np.array([it.label for it in items], np.int64),
                        image_ids=np.array([it.image_id for it in items]),
                        patient_ids=np.array([it.patient_id for it in items]) if result.has_patients else None,
                        meta={"root": str(result.root), "excluded": dict(result.excluded)})
