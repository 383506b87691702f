"""From decoded pixels to the uint8 arrays a network trains on: resize, ROI pipelines, masks.

Every real image goes through one of two pipelines, chosen by dataset options:

- whole image (default): min-max scale to 0..255, then resize to the suite's ``image_size``, either
  keeping the aspect ratio and padding with zeros (``resize="pad"``) or stretching. ``image_size`` is
  a square side (``64``) or ``(height, width)``: Shen et al. feed 1152 x 896 whole mammograms.
- Falconi et al.'s ROI pipeline (``roi_pipeline="falconi"``, needs a lesion mask in full-image
  coordinates): min-max to 0..1 over the whole mammogram, CLAHE, crop the bounding box of the mask,
  min-max again inside the ROI, drop ROIs whose aspect ratio w/h is outside [0.4, 1.5], resize to the
  target size plus an 8-pixel margin and crop the centre, then fast non-local-means denoising. CLAHE
  and denoising are scikit-image's (``equalize_adapthist``, ``denoise_nl_means`` with
  ``fast_mode=True``); their settings are not given in the paper, so scikit-image's defaults are used
  (clip limit 0.01; NLM h = 0.8 x the estimated noise sigma) and recorded in the cache key.

Lesion masks follow the image's geometry (nearest-neighbour), so a mask pixel still marks the same
tissue after resizing or cropping.
"""
from __future__ import annotations

import numpy as np

Size = int | tuple[int, int] | list

FALCONI_MARGIN = 8
FALCONI_ASPECT = (0.4, 1.5)
CLAHE_CLIP = 0.01


def as_hw(size: Size) -> tuple[int, int]:
    """``64 -> (64, 64)``; ``(1152, 896) -> (1152, 896)`` (height, width)."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def size_label(size: Size) -> str:
    """``"64"`` or ``"1152x896"``: for file names, logs and table captions."""
    h, w = as_hw(size)
    return str(h) if h == w else f"{h}x{w}"


def unit_range(a: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] as float32 (a constant image becomes zeros)."""
    a = a.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _geometry(shape: tuple[int, int], size: Size, resize: str) -> tuple[int, int, int, int, int, int]:
    """(new_h, new_w, top, left, H, W): where a ``shape`` image lands in the ``size`` canvas."""
    H, W = as_hw(size)
    h, w = shape
    if resize == "stretch":
        return H, W, 0, 0, H, W
    scale = min(H / h, W / w)
    nh, nw = max(1, min(H, round(h * scale))), max(1, min(W, round(w * scale)))
    return nh, nw, (H - nh) // 2, (W - nw) // 2, H, W


def to_uint8(pixels: np.ndarray, size: Size, *, resize: str = "pad") -> np.ndarray:
    """Min-max scale to 0..255 and resize to ``size`` (pad: keep the aspect ratio, zero padding)."""
    from PIL import Image

    a = unit_range(pixels)
    nh, nw, top, left, H, W = _geometry(a.shape, size, resize)
    # reducing_gap: a box pre-shrink, then bilinear: fast on 4000-px images without aliasing
    img = Image.fromarray(a).resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=3.0)
    out = np.zeros((H, W), np.float32)
    out[top:top + nh, left:left + nw] = np.asarray(img)
    return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)


def place_mask(mask: np.ndarray, size: Size, *, resize: str = "pad") -> np.ndarray:
    """A boolean mask put through exactly the geometry :func:`to_uint8` gives its image."""
    from PIL import Image

    nh, nw, top, left, H, W = _geometry(mask.shape, size, resize)
    small = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((nw, nh), Image.Resampling.NEAREST)) > 0
    out = np.zeros((H, W), bool)
    out[top:top + nh, left:left + nw] = small
    return out


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), bottom/right exclusive, of the mask's True pixels; None if empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class RoiRejected(ValueError):
    """The ROI pipeline refuses an image (empty mask, aspect ratio out of range); the message says why."""


def falconi_roi(pixels: np.ndarray, mask: np.ndarray, size: Size, *, margin: int = FALCONI_MARGIN,
                aspect: tuple[float, float] = FALCONI_ASPECT, denoise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Falconi et al.'s ROI image (and its mask) from a full mammogram and its lesion mask.

    Raises:
        RoiRejected: the mask is empty or the ROI's aspect ratio w/h is outside ``aspect``.
    """
    from PIL import Image
    from skimage.exposure import equalize_adapthist
    from skimage.restoration import denoise_nl_means, estimate_sigma

    if mask.shape != pixels.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the image's {pixels.shape}")
    box = mask_bbox(mask)
    if box is None:
        raise RoiRejected("empty lesion mask")
    top, bottom, left, right = box
    r = (right - left) / (bottom - top)
    if not aspect[0] <= r <= aspect[1]:
        raise RoiRejected(f"ROI aspect ratio w/h {r:.2f} outside [{aspect[0]}, {aspect[1]}] (Falconi eq. 6)")
    eq = equalize_adapthist(unit_range(pixels), clip_limit=CLAHE_CLIP)
    roi = unit_range(eq[top:bottom, left:right])
    H, W = as_hw(size)
    big = (W + margin, H + margin)
    # Cubic when enlarging, area-like (box pre-shrink) when reducing, as the paper says.
    method = Image.Resampling.BICUBIC if roi.shape[0] < big[1] else Image.Resampling.BOX
    roi = np.asarray(Image.fromarray(roi).resize(big, method))
    m = np.asarray(Image.fromarray(mask[top:bottom, left:right].astype(np.uint8)).resize(big, Image.Resampling.NEAREST))
    t, lft = margin // 2, margin // 2
    roi, m = roi[t:t + H, lft:lft + W], m[t:t + H, lft:lft + W] > 0
    roi = np.clip(roi, 0, 1)
    if denoise:
        sigma = float(estimate_sigma(roi))
        if sigma > 0:
            roi = denoise_nl_means(roi, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6)
    return np.clip(roi * 255 + 0.5, 0, 255).astype(np.uint8), m


def pipeline_key(resize: str, roi_pipeline: str | None) -> str:
    """What the cache key must know about preprocessing besides the size."""
    if roi_pipeline == "falconi":
        return f"falconi-m{FALCONI_MARGIN}-a{FALCONI_ASPECT[0]}-{FALCONI_ASPECT[1]}-clahe{CLAHE_CLIP}-nlm"
    return resize
