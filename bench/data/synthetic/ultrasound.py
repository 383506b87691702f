"""The ultrasound-like generator of ``synth-ultrasound`` (see :mod:`bench.data.synthetic`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.base import ArrayDataset
from bench.data.synthetic.draw import (
    render_all,
    expit,
    MAX_HARMONICS,
    allocate,
    apply_style,
    check_size,
    dataset_meta,
    float32,
    gauss,
    grid,
    ids,
    local_frame,
    mark_centre,
    outline_radius,
    smooth_noise,
    streams,
    take,
)
from bench.data.synthetic.options import UltrasoundOptions


US_KINDS = ("normal", "benign", "malignant")


@dataclass(frozen=True)
class _USScene:
    """Per-image ultrasound scene parameters (arrays of length N), independent of the image size."""

    kind: np.ndarray          # 0 normal, 1 benign, 2 malignant
    z_skin: np.ndarray        # layer depths (normalised y)
    z_fat: np.ndarray
    z_deep: np.ndarray
    wave_phase: np.ndarray    # (N, 2) phases of the layer boundaries' waviness
    attenuation: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    rot: np.ndarray
    r0: np.ndarray
    aspect: np.ndarray        # width / height: > 1 benign, < 1 malignant
    harm_amp: np.ndarray
    harm_phase: np.ndarray
    posterior: np.ndarray     # signed: > 0 enhancement, < 0 shadowing
    out_mean: np.ndarray      # label-independent target mean and std of the final image
    out_std: np.ndarray


def _us_scene(rng: np.random.Generator, opts: UltrasoundOptions) -> _USScene:
    """Draw every size-independent parameter: labels, tissue layers, lesion geometry, output moments."""
    n = opts.n_images
    n_mal = round(opts.malignant_fraction * n)
    n_norm = round(opts.normal_fraction * (n - n_mal))
    kind = allocate(rng, n, {2: n_mal, 0: n_norm}, 1)
    mal = kind == 2

    def per_image(lo: float, hi: float, *shape: int) -> np.ndarray:
        return rng.uniform(lo, hi, (n, *shape))

    # The same equivalent-radius distribution for both classes: lesion size carries no label.
    aspect = np.where(mal, per_image(0.55, 0.85), per_image(1.35, 1.9))
    harm_amp = per_image(0.05, 0.13, MAX_HARMONICS) * mal[:, None]  # benign outlines stay smooth
    strength = opts.posterior * per_image(0.7, 1.3)
    # Layer depths (skin line, fat/gland boundary, gland/muscle boundary) in normalised y, top = -1.
    z_skin, z_fat, z_deep = per_image(-0.94, -0.88), per_image(-0.65, -0.4), per_image(0.45, 0.75)
    wave_phase, attenuation = per_image(0, 2 * np.pi, 2), per_image(0.1, 0.5)
    cx, cy, rot, r0 = per_image(-0.4, 0.4), per_image(-0.2, 0.15), per_image(-0.25, 0.25), per_image(0.13, 0.22)
    harm_phase = per_image(0, 2 * np.pi, MAX_HARMONICS)
    out_mean, out_std = per_image(0.36, 0.5), per_image(0.16, 0.22)
    return _USScene(**float32(dict(
        kind=kind, z_skin=z_skin, z_fat=z_fat, z_deep=z_deep, wave_phase=wave_phase, attenuation=attenuation,
        cx=cx, cy=cy, rot=rot, r0=r0, aspect=aspect, harm_amp=harm_amp, harm_phase=harm_phase,
        posterior=np.where(mal, -strength, strength), out_mean=out_mean, out_std=out_std)))


def _render_us(s: _USScene, size: int, opts: UltrasoundOptions, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """Float B-mode-like images and lesion masks of one chunk of an ultrasound scene."""
    n = len(s.kind)
    Y, X = grid(size)
    # Layered echogenicity: bright skin line, dark fat, bright glandular tissue, darker muscle below.
    wave = 0.05 * np.sin(2.5 * X + s.wave_phase[:, 0, None, None])
    z_fat = s.z_fat[:, None, None] + wave
    z_deep = s.z_deep[:, None, None] + 0.6 * wave + 0.04 * np.sin(4 * X + s.wave_phase[:, 1, None, None])
    skin = np.exp(-0.5 * ((Y - s.z_skin[:, None, None]) / 0.02) ** 2)
    below_fat, below_deep = expit((Y - z_fat) / 0.03), expit((Y - z_deep) / 0.03)
    echo = 0.45 + 0.55 * below_fat - 0.4 * below_deep + 1.2 * skin
    echo = echo * np.exp(0.3 * smooth_noise(rng, n, size, 0.05))
    echo = echo * np.exp(-s.attenuation[:, None, None] * (Y + 1.0))

    mask = np.zeros(echo.shape, bool)
    sel = np.flatnonzero(s.kind > 0)
    if len(sel):
        t = take(s, sel)
        u, v = local_frame(Y, X, t.cy, t.cx, t.rot)
        rho, theta = np.hypot(u, v), np.arctan2(v, u)
        r = outline_radius(theta, t.r0, t.aspect, t.harm_amp, t.harm_phase)
        body = expit((r - rho) / 0.012)
        inner = opts.lesion_echo * np.exp(0.35 * smooth_noise(rng, len(sel), size, 0.02))
        echo[sel] *= 1.0 - body * (1.0 - inner)
        # Echogenic halo: a bright, ill-defined rim around malignant lesions (a BI-RADS suspicious feature).
        # It also gives malignant lesions a bright structure, as the posterior enhancement gives benign ones.
        ring = np.exp(-0.5 * ((rho - r - 0.025) / 0.02) ** 2) * (t.posterior < 0)[:, None, None]
        echo[sel] *= 1.0 + opts.halo * ring
        # Posterior acoustic effect: a column under the lesion, as wide as the lesion, fading with depth.
        half_w = (t.r0 * np.sqrt(t.aspect))[:, None, None]
        bottom = (t.cy + t.r0 / np.sqrt(t.aspect))[:, None, None]
        column = expit((half_w * 0.85 - np.abs(X - t.cx[:, None, None])) / 0.03)
        depth = expit((Y - bottom + 0.05) / 0.03) * np.exp(-np.clip(Y - bottom, 0, None) / 1.2)
        echo[sel] *= np.clip(1.0 + t.posterior[:, None, None] * column * depth, 0.05, None)
        m = rho < r
        mark_centre(m, t.cy, t.cx)
        mask[sel] = m

    # Fully developed speckle: magnitude of low-passed complex Gaussian noise is Rayleigh distributed;
    # lateral grain is wider than axial, as with a linear probe.
    sig = (opts.speckle_size * 0.5, opts.speckle_size)
    speckle = np.hypot(gauss(rng.standard_normal((n, size, size), dtype=np.float32), sig, size),
                       gauss(rng.standard_normal((n, size, size), dtype=np.float32), sig, size))
    speckle /= speckle.mean(axis=(1, 2), keepdims=True)
    img = np.log1p(20.0 * echo * speckle) / np.log1p(20.0)  # log compression, as in B-mode displays
    # Mean and contrast drawn independently of the label: shadowing must not make malignant images darker.
    img = (img - img.mean(axis=(1, 2), keepdims=True)) / (img.std(axis=(1, 2), keepdims=True) + 1e-6)
    img = s.out_mean[:, None, None] + s.out_std[:, None, None] * img
    return apply_style(img, rng, size, blur=opts.blur, noise=opts.noise), mask


def load_us(name: str, opts: UltrasoundOptions, image_size: int) -> ArrayDataset:
    check_size(image_size)
    prng, xrng = streams(name, opts.seed)
    scene = _us_scene(prng, opts)
    n = opts.n_images
    images, masks = render_all(scene, n, image_size, lambda part: _render_us(part, image_size, opts, xrng))
    meta = dataset_meta(name, opts, image_size, lesion_kind=[US_KINDS[k] for k in scene.kind])
    return ArrayDataset(name=name, images=images, labels=(scene.kind == 2).astype(np.int64),
                        image_ids=ids(name, n), patient_ids=None, masks=masks, modality="ultrasound", meta=meta)
