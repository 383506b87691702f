"""Decoding image files to 2-d float32 grayscale, DICOM done right.

DICOM: the modality LUT (rescale slope/intercept) is applied, then the VOI LUT or the window
centre/width when the file has one, and MONOCHROME1 images are inverted so that, as in every other
format here, a larger value is brighter (denser tissue). 12-, 14- and 16-bit values are kept as
floats: nothing is clipped to 8 bits before resizing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def to_gray(arr: np.ndarray) -> np.ndarray:
    """2-d float32 from a 2-d array or an (H, W, C) image (identical channels are common: PNG/JPEG)."""
    a = np.asarray(arr)
    if a.ndim == 3:
        if a.shape[-1] == 4:  # drop alpha
            a = a[..., :3]
        if a.shape[-1] == 1 or np.array_equal(a[..., 0], a[..., -1]) and np.array_equal(a[..., 0], a[..., 1]):
            a = a[..., 0]
        else:  # ITU-R 601 luma
            a = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-d grayscale or (H, W, C) image, got shape {a.shape}")
    return a.astype(np.float32, copy=False)


def read_image(path: str | Path) -> np.ndarray:
    """PNG (8/16-bit, gray or RGB), PGM, BMP, JPEG, TIFF via Pillow."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.int32)
            elif im.mode in ("L", "RGB", "RGBA", "LA", "P", "1"):
                arr = np.asarray(im.convert("RGB") if im.mode in ("P", "LA", "1") else im)
            else:
                arr = np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: unreadable image ({exc})") from None
    return to_gray(arr)


def read_dicom(path: str | Path) -> np.ndarray:
    """Pixels of a DICOM file as float32 with modality and VOI LUTs applied, MONOCHROME1 inverted."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(path)
        raw = ds.pixel_array
    except (InvalidDicomError, OSError, AttributeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: unreadable DICOM ({type(exc).__name__}: {exc})") from None
    arr = apply_modality_lut(raw, ds)  # stays integer without a rescale: a VOI LUT then indexes it exactly
    if "VOILUTSequence" in ds or "WindowCenter" in ds:
        arr = apply_voi_lut(arr, ds, prefer_lut=True)
    arr = arr.astype(np.float64)
    if ds.get("PhotometricInterpretation", "MONOCHROME2") == "MONOCHROME1":
        arr = arr.max() + arr.min() - arr
    return to_gray(arr)
