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
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):
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
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # Pillow raises ValueError/SyntaxError for a malformed header or pixel text (e.g. an ASCII P2 PGM)
        raise ValueError(f"{path}: unreadable image ({exc})") from None
    return to_gray(arr)


def read_dicom(path: str | Path) -> np.ndarray:
    """Pixels of a DICOM file as float32 with modality and VOI LUTs applied, MONOCHROME1 inverted.

    Empty Rescale/Window elements (zero length, as some exporters write them) are treated as absent, and a
    VOI transform pydicom refuses (Window Width 0, an unknown VOI LUT Function, a malformed LUT) is skipped:
    it only sets display contrast, and the values are min-max scaled later anyway. A multi-frame file
    (tomosynthesis, cine) is an error: one file must hold one 2-d image.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(path)
        raw = ds.pixel_array
    except (InvalidDicomError, OSError, AttributeError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: unreadable DICOM ({type(exc).__name__}: {exc})") from None
    frames = ds.get("NumberOfFrames") or 1
    if int(frames) > 1 or raw.ndim > 2 + (int(ds.get("SamplesPerPixel") or 1) > 1):
        raise ValueError(f"{path}: multi-frame DICOM ({frames} frames, shape {raw.shape}); expected one 2-d image "
                         "per file (tomosynthesis or cine files cannot be used: export one frame, e.g. the "
                         "synthetic 2-d view)")
    for kw in ("RescaleSlope", "RescaleIntercept", "ModalityLUTSequence", "WindowCenter", "WindowWidth",
               "VOILUTSequence", "VOILUTFunction"):
        if kw in ds and ds[kw].VM == 0:  # present but empty: as if absent
            del ds[kw]
    try:
        arr = apply_modality_lut(raw, ds)  # stays integer without a rescale: a VOI LUT then indexes it exactly
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"{path}: unusable Modality LUT / Rescale Slope-Intercept ({type(exc).__name__}: "
                         f"{exc}); fix or remove those elements") from None
    if "VOILUTSequence" in ds or "WindowCenter" in ds:
        try:
            arr = apply_voi_lut(arr, ds, prefer_lut=True)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            pass  # an invalid display window: keep the modality values (see the docstring)
    arr = np.asarray(arr, dtype=np.float64)
    if ds.get("PhotometricInterpretation", "MONOCHROME2") == "MONOCHROME1":
        arr = arr.max() + arr.min() - arr
    return to_gray(arr)
