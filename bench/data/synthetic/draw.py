"""Shared helpers of the synthetic generators: randomness, coordinates, textures, shapes, metadata.

Everything here is deterministic given its generator arguments; see :mod:`bench.data.synthetic` for the
design (normalised coordinates, chunked rendering, two random streams).
"""
from __future__ import annotations

import zlib

import numpy as np

from bench.data.base import ArrayDataset
from bench.data.synthetic.options import SynthOptions

GENERATOR_VERSION = 1
# The package that registers the generators, recorded in each dataset's meta["generator"]; keep it stable.
GENERATOR_MODULE = "bench.data.synthetic"
MAX_HARMONICS = 4  # outline harmonics k = 2..5 of an irregular mass
# Pixels per rendering chunk: bounds memory at 256 px (about 30 float32 temporaries of this size).
_CHUNK_PIXELS = 1 << 21


def streams(name: str, seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators (parameters, pixels) for a dataset name and seed.

    crc32 rather than ``hash()`` because Python salts string hashes per process.
    """
    params, pixels = np.random.SeedSequence([seed, zlib.crc32(name.encode())]).spawn(2)
    return np.random.default_rng(params), np.random.default_rng(pixels)


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(Y, X)`` in [-1, 1], each ``(1, size, size)`` float32."""
    c = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0)
    return c[None, :, None] * np.ones((1, 1, size), np.float32), c[None, None, :] * np.ones((1, size, 1), np.float32)


def chunks(n: int, size: int) -> list[slice]:
    step = max(1, _CHUNK_PIXELS // (size * size))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def gauss(img: np.ndarray, sigma_frac: float | tuple[float, float], size: int) -> np.ndarray:
    """Blur a ``(n, H, W)`` stack in the image plane; sigma is a fraction of the image size."""
    from scipy import ndimage  # 0.3 s to import: only when images are drawn

    sy, sx = (sigma_frac, sigma_frac) if np.isscalar(sigma_frac) else sigma_frac
    sy, sx = sy * size, sx * size
    if max(sy, sx) < 0.05:  # below a twentieth of a pixel the kernel is the identity
        return img
    return ndimage.gaussian_filter(img, sigma=(0.0, sy, sx), mode="reflect", truncate=3.0)


def smooth_noise(rng: np.random.Generator, n: int, size: int, sigma_frac: float | tuple[float, float]) -> np.ndarray:
    """Gaussian-filtered white noise, standardised per image, so its amplitude does not depend on the size."""
    z = gauss(rng.standard_normal((n, size, size), dtype=np.float32), sigma_frac, size)
    z -= z.mean(axis=(1, 2), keepdims=True)
    z /= z.std(axis=(1, 2), keepdims=True) + 1e-6
    return z


def local_frame(Y: np.ndarray, X: np.ndarray, cy: np.ndarray, cx: np.ndarray, rot: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's coordinates ``(u, v)`` in a per-image frame centred on ``(cy, cx)`` and rotated by ``rot``."""
    dx, dy = X - cx[:, None, None], Y - cy[:, None, None]
    c, s = np.cos(rot)[:, None, None], np.sin(rot)[:, None, None]
    return dx * c + dy * s, -dx * s + dy * c


def outline_radius(theta: np.ndarray, r0: np.ndarray, aspect: np.ndarray,
                    harm_amp: np.ndarray | None = None, harm_phase: np.ndarray | None = None) -> np.ndarray:
    """Boundary radius r(theta) of an area-preserving ellipse (``aspect`` = width / height) with optional
    Fourier harmonics k = 2, 3, ... that make the outline lobulated and irregular."""
    sa = np.sqrt(aspect)[:, None, None]
    r = r0[:, None, None] / np.sqrt((np.cos(theta) / sa) ** 2 + (np.sin(theta) * sa) ** 2)
    if harm_amp is not None:
        wobble = 1.0
        for j in range(harm_amp.shape[1]):
            wobble = wobble + harm_amp[:, j, None, None] * np.cos((j + 2) * theta + harm_phase[:, j, None, None])
        r = r * wobble
    return r


def spicules(u: np.ndarray, v: np.ndarray, r0: np.ndarray, angles: np.ndarray, lengths: np.ndarray,
              width: float) -> np.ndarray:
    """Thin bright lines radiating from a mass: max over spicules of a constant-width ridge along each
    ray, fading from the mass towards the tip. ``lengths == 0`` switches a spicule off.

    Distances along and across each ray are projections of the local frame ``(u, v)`` on the ray's
    direction, which avoids per-spicule trigonometry over whole images.
    """
    out = np.zeros_like(u)
    r0 = r0[:, None, None]
    for j in range(angles.shape[1]):
        ca, sa = np.cos(angles[:, j])[:, None, None], np.sin(angles[:, j])[:, None, None]
        along, perp = u * ca + v * sa, v * ca - u * sa
        length = lengths[:, j, None, None]
        fade = np.clip((length - along) / np.maximum(length - r0, 1e-3), 0.0, 1.0) ** 0.7
        ridge = np.exp(-0.5 * (perp / width) ** 2) * fade * (along > 0)
        np.maximum(out, ridge, out=out)
    return out


def splat_points(n: int, size: int, img_idx: np.ndarray, ys: np.ndarray, xs: np.ndarray, amp: np.ndarray,
                  sigma_frac: float) -> np.ndarray:
    """Render Gaussian dots of peak ``amp`` at normalised positions into a ``(n, size, size)`` stack.

    Points are scattered with bilinear weights (sub-pixel positions) and then blurred, which is
    much cheaper than evaluating one Gaussian per point over the whole image. The dot width never
    drops below half a pixel, so tiny images still show (coarser) dots instead of aliasing them.
    """
    from scipy import ndimage  # 0.3 s to import: only when images are drawn

    out = np.zeros((n, size, size), np.float32)
    py, px = (ys + 1.0) * 0.5 * size - 0.5, (xs + 1.0) * 0.5 * size - 0.5
    y0, x0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    fy, fx = py - y0, px - x0
    for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + dy, x0 + dx
        ok = (yy >= 0) & (yy < size) & (xx >= 0) & (xx < size)
        np.add.at(out, (img_idx[ok], yy[ok], xx[ok]), (w * amp)[ok].astype(np.float32))
    sigma_px = max(0.5, sigma_frac * size)
    return ndimage.gaussian_filter(out, sigma=(0, sigma_px, sigma_px), truncate=3.0) * (2 * np.pi * sigma_px ** 2)


def disk_mask(Y: np.ndarray, X: np.ndarray, cy: np.ndarray, cx: np.ndarray, r: np.ndarray) -> np.ndarray:
    return (Y - cy[:, None, None]) ** 2 + (X - cx[:, None, None]) ** 2 < (r ** 2)[:, None, None]


def mark_centre(mask: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> None:
    """Ensure the pixel under each lesion centre is in its mask (tiny lesions at 32 px can miss every
    pixel centre)."""
    size = mask.shape[-1]
    iy = np.clip(((cy + 1) * 0.5 * size).astype(np.int64), 0, size - 1)
    ix = np.clip(((cx + 1) * 0.5 * size).astype(np.int64), 0, size - 1)
    mask[np.arange(len(mask)), iy, ix] = True


def apply_style(img: np.ndarray, rng: np.random.Generator, size: int, *, gamma: float = 1.0, gain: float = 1.0,
                 offset: float = 0.0, blur: float = 0.0, noise: float = 0.0, grain: float = 0.0) -> np.ndarray:
    """Acquisition "look" of a dataset: intensity profile, then optical blur, then sensor/film noise."""
    img = offset + gain * np.clip(img, 0.0, 1.0) ** gamma
    img = gauss(img, blur, size)
    if noise > 0:
        img = img + noise * rng.standard_normal(img.shape, dtype=np.float32)
    if grain > 0:  # film grain: noise correlated over about a pixel at 64 px
        img = img + grain * smooth_noise(rng, len(img), size, 0.01)
    return img


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def allocate(rng: np.random.Generator, n: int, counts: dict[int, int], fill: int) -> np.ndarray:
    """Exactly ``counts[k]`` items of each kind ``k`` (the rest ``fill``), in random order.

    Exact counts rather than independent draws keep class balance stable in small datasets.
    """
    kinds = np.full(n, fill, np.int64)
    start = 0
    for k, c in counts.items():
        kinds[start:start + c] = k
        start += c
    return rng.permutation(kinds)


def float32(fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Scene parameters as float32: mixing float64 parameters into float32 images would upcast every
    full-image temporary and double the rendering time."""
    return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in fields.items()}


def ids(name: str, n: int) -> np.ndarray:
    return np.array([f"{name}/{i:06d}" for i in range(n)])


def take(scene, idx: np.ndarray | slice):
    """The images ``idx`` of a scene dataclass (every field is an array over images)."""
    return type(scene)(**{k: getattr(scene, k)[idx] for k in scene.__dataclass_fields__})


def check_size(image_size: int) -> None:
    if not isinstance(image_size, (int, np.integer)) or not 16 <= image_size <= 1024:
        raise ValueError(f"The 'image_size' of a synthetic dataset must be an int in [16, 1024]. Got {image_size!r}.")


def dataset_meta(name: str, opts: SynthOptions, image_size: int, **per_image: list) -> dict:
    """JSON-friendly metadata: the generator, its version, every option, and per-image lists."""
    return {"generator": f"{GENERATOR_MODULE}:{name}", "generator_version": GENERATOR_VERSION, "image_size": int(image_size),
            "options": opts.model_dump(), **per_image}


def sized(image_size, render) -> ArrayDataset:
    """Scenes are square; a ``(height, width)`` size renders at the longer side and stretches to the shape
    (bilinear for images, nearest for masks), so lesions stay whole but change aspect ratio."""
    from dataclasses import replace

    from PIL import Image

    from bench.data.preprocess import as_hw

    h, w = as_hw(image_size)
    if h == w:
        return render(h)
    ds = render(max(h, w))
    images = np.stack([np.asarray(Image.fromarray(im).resize((w, h), Image.Resampling.BILINEAR)) for im in ds.images])
    masks = None if ds.masks is None else np.stack(
        [np.asarray(Image.fromarray(m).resize((w, h), Image.Resampling.NEAREST)) for m in ds.masks])
    return replace(ds, images=images, masks=masks, meta={**ds.meta, "image_size": [h, w]})


def expit(x: np.ndarray) -> np.ndarray:
    """``scipy.special.expit`` (the logistic function), with scipy imported on first use (0.1 s)."""
    from scipy.special import expit as logistic

    return logistic(x)


def render_all(scene, n: int, image_size: int, render) -> tuple[np.ndarray, np.ndarray]:
    """Every image of a scene as uint8 images and boolean masks, rendered chunk by chunk (bounded memory):
    ``render(part)`` draws the float images and masks of ``take(scene, slice)``."""
    images = np.empty((n, image_size, image_size), np.uint8)
    masks = np.empty((n, image_size, image_size), bool)
    for sl in chunks(n, image_size):
        img, m = render(take(scene, sl))
        images[sl], masks[sl] = to_uint8(img), m
    return images, masks
