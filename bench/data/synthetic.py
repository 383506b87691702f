"""Synthetic breast-imaging datasets with known answers: the harness's embedded default.

Four procedural, deterministic datasets stand in for the real ones when no data is available
(tests, the smoke suite, CI, a fresh laptop):

``synth-ddsm``
    Film-mammogram-like SOURCE (default 1,200 images, 600 patients, 40 % malignant). Smooth
    low-frequency "tissue" texture in a breast-shaped bright region on a dark background, CC and
    MLO views (MLO with a pectoral muscle) of the same breast per patient, so both images of a
    patient show the same lesion. Normal (no lesion) and benign (round/oval circumscribed mass)
    are label 0; malignant (irregular spiculated mass and/or a cluster of micro-calcifications)
    is label 1. Lesion masks are returned.
``synth-inbreast``
    Small mammogram-like TARGET (240 images), same lesion morphology, its own "digital"
    intensity profile: black background, brighter tissue (gamma < 1), little noise, slight blur.
``synth-mias``
    Small mammogram-like TARGET (240 images), another "scanned film" profile: grey film base,
    lower contrast, more noise and film grain, a slightly stronger blur. Patients are film
    pairs (left and right MLO, as in mini-MIAS), so only one image of a pair carries a lesion.
``synth-ultrasound``
    Small TARGET of another modality (240 images, like BUSI without patient ids): multiplicative
    Rayleigh speckle over layered echo texture, dark (hypoechoic) lesions. Benign: oval, smooth,
    wider than tall, posterior enhancement. Malignant: irregular, taller than wide, posterior
    acoustic shadowing. Each image's mean and contrast are drawn independently of its label, so
    "overall brightness" is not a cue a mammography model could carry over.

What this data can show, and what it cannot
    It tests the *harness*: whether a pipeline notices that a related source helps a target
    (mammogram → mammogram-like targets is a positive control) and that an unrelated one does
    not (mammogram → ultrasound is a negative control), whether splits leak patients, whether
    scores are computed correctly. The answers are known by construction because we chose which
    cues define the labels (shape, margin, spicules, calcifications, shadowing) and how well the
    targets' blur and noise preserve them. It says nothing about real patients, real scanners or
    real lesions: the textures, shapes and prevalences are cartoons, and a number measured on
    them must never be reported as a clinical or a literature result.

    Cues are put in on purpose and some are crude: malignant mammogram images carry more bright
    structure (spicules, calcifications; benign masses are drawn at ``benign_contrast`` = 0.8 of
    a malignant mass's brightness), so part of what transfers between the mammography sets is
    "bright, busy lesion = malignant". The ultrasound set removes overall brightness and contrast
    as cues, but nothing guarantees that no other low-level statistic differs by label.

Known answers (measured, a guide rather than a specification)
    At 64 px, timm ``resnet18`` from scratch (gray repeated to 3 channels, AdamW lr 1e-3 with
    one-cycle cosine decay, batch 32, 6 epochs on 80 % of the ``synth-ddsm`` patients, one CPU
    thread, about 80 CPU-seconds), scored by the logit margin, over two training seeds and
    target data seeds 0-2: held-out ``synth-ddsm`` AUC 0.96-0.97; without fine-tuning
    ``synth-inbreast`` 0.85-0.90, ``synth-mias`` 0.78-0.88, ``synth-ultrasound`` 0.44-0.54;
    random-init networks 0.42-0.59. Lower ``lesion_contrast`` makes the source task harder;
    more ``blur``/``noise`` on a target erases spicules and calcifications first.

Design
    Everything is drawn from ``numpy.random.SeedSequence([seed, crc32(name)])``: per-image
    parameters (labels, patients, lesion geometry) come first from one stream and do not depend
    on the image size; pixel noise comes from a second stream. Geometry lives in normalised
    coordinates (the image spans [-1, 1]) and filter widths are fractions of the image size, so
    the same seed gives the same scene at 32 px or 256 px, only sharper. Images are rendered
    in vectorised chunks (``(n, H, W)`` arrays, ``scipy.ndimage`` filters on the last two axes).
    Shapes and textures are small shared helpers (``_smooth_noise``, ``_outline_radius``,
    ``_spicules``, ``_splat_points``, ``_apply_style``) so new lesion types or known-answer knobs
    only add a parameter draw and a layer.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, create_model, model_validator
from pydantic.fields import FieldInfo
from scipy import ndimage
from scipy.special import expit

from bench.data import ArrayDataset, DatasetOptions, DatasetSpec, register_dataset

GENERATOR_VERSION = 1

# Lesion kinds, per image. "normal" is the only kind without a mask.
NORMAL, BENIGN_MASS, SPICULATED, CALCIFICATION, SPICULATED_CALC = range(5)
MAMMO_KINDS = ("normal", "benign_mass", "spiculated_mass", "calcification", "spiculated_mass+calcification")
US_KINDS = ("normal", "benign", "malignant")

# How malignant mammogram lesions split between the three malignant kinds.
_MALIGNANT_KIND_P = {SPICULATED: 0.55, CALCIFICATION: 0.25, SPICULATED_CALC: 0.20}
_MAX_HARMONICS = 4  # outline harmonics k = 2..5 of an irregular mass
_MAX_SPICULES = 12
_MAX_CALCS = 16
# Pixels per rendering chunk: bounds memory at 256 px (about 30 float32 temporaries of this size).
_CHUNK_PIXELS = 1 << 21


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------


class _SynthOptions(DatasetOptions):
    """Options every synthetic dataset shares."""

    n_images: int = Field(240, ge=2, description="number of images")
    seed: int = Field(0, ge=0, description="generator seed; the same seed gives the same data")
    malignant_fraction: float = Field(0.35, ge=0.0, le=1.0, description="share of malignant images (label 1)")
    blur: float = Field(0.0, ge=0.0, le=0.1, description="Gaussian blur sigma as a fraction of the image size")
    noise: float = Field(0.02, ge=0.0, le=0.5, description="white noise std on the [0, 1] intensity scale")


class _MammoOptions(_SynthOptions):
    """Knobs of the mammogram-like generator; each dataset below only changes defaults."""

    pairing: Literal["views", "bilateral"] = Field(
        "views", description="what a patient's two images are: 'views' = CC and MLO of one breast (both show "
                             "the lesion); 'bilateral' = left and right MLO (only one shows it)")
    benign_fraction: float = Field(0.6, ge=0.0, le=1.0,
                                   description="share of non-malignant images showing a benign mass (rest normal)")
    lesion_contrast: float = Field(0.45, ge=0.0, le=1.0, description="malignant mass brightness above the tissue")
    benign_contrast: float = Field(0.8, ge=0.0, le=2.0,
                                   description="benign mass brightness relative to a malignant one (BI-RADS: "
                                               "high-density masses are the more suspicious)")
    spicule_contrast: float = Field(0.8, ge=0.0, le=2.0, description="spicule brightness relative to the mass")
    calc_contrast: float = Field(0.7, ge=0.0, le=1.0, description="micro-calcification peak brightness")
    texture: float = Field(1.0, ge=0.0, le=3.0, description="scale of the fibroglandular texture amplitude")
    grain: float = Field(0.015, ge=0.0, le=0.5, description="std of film grain (noise correlated over ~1 px)")
    gamma: float = Field(1.0, gt=0.0, le=5.0, description="intensity profile: out = offset + gain * in ** gamma")
    gain: float = Field(1.0, gt=0.0, le=3.0, description="intensity profile gain")
    offset: float = Field(0.0, ge=-0.5, le=0.5, description="intensity profile offset")
    background: float = Field(0.04, ge=0.0, le=0.5, description="intensity outside the breast, before the profile")

    @model_validator(mode="after")
    def _check_bilateral(self):
        if self.pairing == "bilateral" and self.malignant_fraction > 0.5:
            raise ValueError(f"malignant_fraction={self.malignant_fraction} is impossible with pairing='bilateral' "
                             "(at most one image of a pair shows a lesion); use <= 0.5 or pairing='views'")
        return self


def _with_defaults(name: str, base: type[_SynthOptions], doc: str, **defaults) -> type[_SynthOptions]:
    """A subclass of ``base`` that only changes defaults, keeping each field's constraints and description."""
    fields = {k: (base.model_fields[k].annotation, FieldInfo.merge_field_infos(base.model_fields[k], default=v))
              for k, v in defaults.items()}
    return create_model(name, __base__=base, __doc__=doc, __module__=__name__, **fields)


SynthDDSMOptions = _with_defaults(
    "SynthDDSMOptions", _MammoOptions, "``synth-ddsm``: film-mammogram-like source (large, sharp, mild grain).",
    n_images=1200, malignant_fraction=0.4, blur=0.004)
SynthINbreastOptions = _with_defaults(
    "SynthINbreastOptions", _MammoOptions,
    "``synth-inbreast``: full-field-digital-like target (black background, brighter tissue, clean, slight blur).",
    malignant_fraction=0.35, blur=0.011, noise=0.012, grain=0.0, gamma=0.75, gain=1.05, offset=-0.02,
    background=0.0)
SynthMIASOptions = _with_defaults(
    "SynthMIASOptions", _MammoOptions,
    "``synth-mias``: scanned-film-like target (grey film base, low contrast, grain, stronger blur; film pairs).",
    pairing="bilateral", malignant_fraction=0.3, benign_fraction=0.35, blur=0.013, noise=0.03, grain=0.035,
    gamma=1.3, gain=0.85, offset=0.08, background=0.03)


class _UltrasoundOptions(_SynthOptions):
    """Knobs of the ultrasound-like generator."""

    normal_fraction: float = Field(0.2, ge=0.0, le=1.0,
                                   description="share of non-malignant images without a lesion (rest benign)")
    lesion_echo: float = Field(0.25, ge=0.0, le=1.0, description="lesion echogenicity relative to the tissue")
    posterior: float = Field(0.5, ge=0.0, le=1.0,
                             description="strength of posterior enhancement (benign) / shadowing (malignant)")
    halo: float = Field(0.6, ge=0.0, le=2.0, description="echogenic halo around malignant lesions (relative gain)")
    speckle_size: float = Field(0.015, gt=0.0, le=0.1, description="lateral speckle grain, fraction of image size")


SynthUltrasoundOptions = _with_defaults(
    "SynthUltrasoundOptions", _UltrasoundOptions,
    "``synth-ultrasound``: B-mode-like target of another modality (the negative control).",
    malignant_fraction=0.35, blur=0.004, noise=0.015)


# --------------------------------------------------------------------------------------------------
# Shared helpers: randomness, coordinates, textures, shapes
# --------------------------------------------------------------------------------------------------


def _streams(name: str, seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators (parameters, pixels) for a dataset name and seed.

    crc32 rather than ``hash()`` because Python salts string hashes per process.
    """
    params, pixels = np.random.SeedSequence([seed, zlib.crc32(name.encode())]).spawn(2)
    return np.random.default_rng(params), np.random.default_rng(pixels)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(Y, X)`` in [-1, 1], each ``(1, size, size)`` float32."""
    c = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0)
    return c[None, :, None] * np.ones((1, 1, size), np.float32), c[None, None, :] * np.ones((1, size, 1), np.float32)


def _chunks(n: int, size: int) -> list[slice]:
    step = max(1, _CHUNK_PIXELS // (size * size))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _gauss(img: np.ndarray, sigma_frac: float | tuple[float, float], size: int) -> np.ndarray:
    """Blur a ``(n, H, W)`` stack in the image plane; sigma is a fraction of the image size."""
    sy, sx = (sigma_frac, sigma_frac) if np.isscalar(sigma_frac) else sigma_frac
    sy, sx = sy * size, sx * size
    if max(sy, sx) < 0.05:  # below a twentieth of a pixel the kernel is the identity
        return img
    return ndimage.gaussian_filter(img, sigma=(0.0, sy, sx), mode="reflect", truncate=3.0)


def _smooth_noise(rng: np.random.Generator, n: int, size: int, sigma_frac: float | tuple[float, float]) -> np.ndarray:
    """Gaussian-filtered white noise, standardised per image, so its amplitude does not depend on the size."""
    z = _gauss(rng.standard_normal((n, size, size), dtype=np.float32), sigma_frac, size)
    z -= z.mean(axis=(1, 2), keepdims=True)
    z /= z.std(axis=(1, 2), keepdims=True) + 1e-6
    return z


def _local_frame(Y: np.ndarray, X: np.ndarray, cy: np.ndarray, cx: np.ndarray, rot: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's coordinates ``(u, v)`` in a per-image frame centred on ``(cy, cx)`` and rotated by ``rot``."""
    dx, dy = X - cx[:, None, None], Y - cy[:, None, None]
    c, s = np.cos(rot)[:, None, None], np.sin(rot)[:, None, None]
    return dx * c + dy * s, -dx * s + dy * c


def _outline_radius(theta: np.ndarray, r0: np.ndarray, aspect: np.ndarray,
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


def _spicules(u: np.ndarray, v: np.ndarray, r0: np.ndarray, angles: np.ndarray, lengths: np.ndarray,
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


def _splat_points(n: int, size: int, img_idx: np.ndarray, ys: np.ndarray, xs: np.ndarray, amp: np.ndarray,
                  sigma_frac: float) -> np.ndarray:
    """Render Gaussian dots of peak ``amp`` at normalised positions into a ``(n, size, size)`` stack.

    Points are scattered with bilinear weights (sub-pixel positions) and then blurred, which is
    much cheaper than evaluating one Gaussian per point over the whole image. The dot width never
    drops below half a pixel, so tiny images still show (coarser) dots instead of aliasing them.
    """
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


def _disk_mask(Y: np.ndarray, X: np.ndarray, cy: np.ndarray, cx: np.ndarray, r: np.ndarray) -> np.ndarray:
    return (Y - cy[:, None, None]) ** 2 + (X - cx[:, None, None]) ** 2 < (r ** 2)[:, None, None]


def _mark_centre(mask: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> None:
    """Ensure the pixel under each lesion centre is in its mask (tiny lesions at 32 px can miss every
    pixel centre)."""
    size = mask.shape[-1]
    iy = np.clip(((cy + 1) * 0.5 * size).astype(np.int64), 0, size - 1)
    ix = np.clip(((cx + 1) * 0.5 * size).astype(np.int64), 0, size - 1)
    mask[np.arange(len(mask)), iy, ix] = True


def _apply_style(img: np.ndarray, rng: np.random.Generator, size: int, *, gamma: float = 1.0, gain: float = 1.0,
                 offset: float = 0.0, blur: float = 0.0, noise: float = 0.0, grain: float = 0.0) -> np.ndarray:
    """Acquisition "look" of a dataset: intensity profile, then optical blur, then sensor/film noise."""
    img = offset + gain * np.clip(img, 0.0, 1.0) ** gamma
    img = _gauss(img, blur, size)
    if noise > 0:
        img = img + noise * rng.standard_normal(img.shape, dtype=np.float32)
    if grain > 0:  # film grain: noise correlated over about a pixel at 64 px
        img = img + grain * _smooth_noise(rng, len(img), size, 0.01)
    return img


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def _allocate(rng: np.random.Generator, n: int, counts: dict[int, int], fill: int) -> np.ndarray:
    """Exactly ``counts[k]`` items of each kind ``k`` (the rest ``fill``), in random order.

    Exact counts rather than independent draws keep class balance stable in small datasets.
    """
    kinds = np.full(n, fill, np.int64)
    start = 0
    for k, c in counts.items():
        kinds[start:start + c] = k
        start += c
    return rng.permutation(kinds)


def _float32(fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Scene parameters as float32: mixing float64 parameters into float32 images would upcast every
    full-image temporary and double the rendering time."""
    return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in fields.items()}


def _ids(name: str, n: int) -> np.ndarray:
    return np.array([f"{name}/{i:06d}" for i in range(n)])


# --------------------------------------------------------------------------------------------------
# Mammography
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MammoScene:
    """Per-image scene parameters (all arrays of length N), independent of the image size."""

    patient: np.ndarray       # patient index
    kind: np.ndarray          # lesion kind code (NORMAL, ...)
    right: np.ndarray         # right breast: the image is mirrored
    mlo: np.ndarray           # MLO view (pectoral muscle), else CC
    extent: np.ndarray        # breast depth from the chest wall (x)
    half_height: np.ndarray   # breast half-height (y)
    y0: np.ndarray            # breast vertical centre
    density: np.ndarray       # scale of the fibroglandular texture
    pec_w: np.ndarray         # pectoral triangle legs (MLO only)
    pec_h: np.ndarray
    cx: np.ndarray            # lesion centre and in-plane rotation (per view)
    cy: np.ndarray
    rot: np.ndarray
    r0: np.ndarray            # mass equivalent radius, aspect, outline harmonics (per lesion)
    aspect: np.ndarray
    harm_amp: np.ndarray
    harm_phase: np.ndarray
    spic_angle: np.ndarray
    spic_len: np.ndarray
    calc_dy: np.ndarray       # calcification offsets from the cluster centre (cluster frame), amplitudes
    calc_dx: np.ndarray
    calc_amp: np.ndarray
    calc_r: np.ndarray
    calc_shift: np.ndarray    # (N, 2) cluster centre offset from the mass centre (both present)


def _mammo_kinds(rng: np.random.Generator, opts: _MammoOptions, n_patients: int) -> tuple[np.ndarray, np.ndarray]:
    """Lesion kind per patient and, per patient, which of its two images shows it (-1 = both)."""
    per_patient = 2 if opts.pairing == "views" else 1  # lesion images per lesion patient
    n_img = opts.n_images
    n_mal = min(n_patients, round(opts.malignant_fraction * n_img / per_patient))
    n_ben = min(n_patients - n_mal, round(opts.benign_fraction * (n_img - n_mal * per_patient) / per_patient))
    patient_kind = _allocate(rng, n_patients, {-1: n_mal, BENIGN_MASS: n_ben}, NORMAL)
    mal = patient_kind == -1  # placeholder, replaced by a malignant kind below
    choices = np.array(list(_MALIGNANT_KIND_P))
    patient_kind[mal] = rng.choice(choices, size=mal.sum(), p=list(_MALIGNANT_KIND_P.values()))
    which = np.full(n_patients, -1) if opts.pairing == "views" else rng.integers(0, 2, n_patients)
    return patient_kind, which


def _mammo_scene(rng: np.random.Generator, opts: _MammoOptions) -> _MammoScene:
    """Draw every size-independent parameter: patients, labels, breast geometry, lesions."""
    n = opts.n_images
    n_pat = (n + 1) // 2
    patient_kind, which = _mammo_kinds(rng, opts, n_pat)
    patient = np.repeat(np.arange(n_pat), 2)[:n]
    slot = np.tile([0, 1], n_pat)[:n]
    show = (which[patient] < 0) | (which[patient] == slot)
    kind = np.where(show, patient_kind[patient], NORMAL)

    def per_patient(lo: float, hi: float, *shape: int) -> np.ndarray:
        return rng.uniform(lo, hi, (n_pat, *shape))

    def per_image(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, n)

    # Per patient (shared by both images): breast side and density, lesion shape.
    side = rng.integers(0, 2, n_pat).astype(bool)
    if opts.pairing == "views":
        right, mlo = side[patient], slot == 1      # CC then MLO of the same breast
    else:
        right, mlo = slot == 1, np.ones(n, bool)   # left and right MLO films
    density = per_patient(0.5, 1.3)[patient]
    r0, aspect = per_patient(0.09, 0.15), per_patient(1.0, 1.5)
    harm_amp = per_patient(0.04, 0.12, _MAX_HARMONICS)
    harm_phase = per_patient(0, 2 * np.pi, _MAX_HARMONICS)
    n_spic = rng.integers(6, _MAX_SPICULES + 1, n_pat)
    spic_angle = per_patient(0, 2 * np.pi, _MAX_SPICULES)
    spic_len = r0[:, None] * per_patient(1.6, 2.8, _MAX_SPICULES) * (np.arange(_MAX_SPICULES) < n_spic[:, None])
    n_calc = rng.integers(6, _MAX_CALCS + 1, n_pat)
    calc_r = per_patient(0.07, 0.12)
    # Calcifications uniformly in a disk of radius calc_r (sqrt for uniform area density).
    cr, ca = calc_r[:, None] * np.sqrt(per_patient(0, 1, _MAX_CALCS)), per_patient(0, 2 * np.pi, _MAX_CALCS)
    calc_amp = per_patient(0.6, 1.0, _MAX_CALCS) * (np.arange(_MAX_CALCS) < n_calc[:, None])
    calc_shift = per_patient(-0.08, 0.08, 2)

    # Per image: breast outline (MLO shows a taller breast), lesion position and rotation.
    extent = np.where(mlo, per_image(1.3, 1.6), per_image(1.4, 1.75))
    half_height = np.where(mlo, per_image(0.85, 0.97), per_image(0.72, 0.9))
    y0 = per_image(-0.08, 0.08)
    # Keep lesions in the middle of the breast, away from the skin line and the pectoral corner.
    cx = -1.0 + extent * per_image(0.3, 0.62)
    cy = y0 + half_height * per_image(-0.35, 0.45)
    pec_w, pec_h, rot = per_image(0.35, 0.6), per_image(0.8, 1.3), per_image(0, 2 * np.pi)
    pp = patient
    return _MammoScene(**_float32(dict(
        patient=patient, kind=kind, right=right, mlo=mlo, extent=extent, half_height=half_height, y0=y0,
        density=density, pec_w=pec_w, pec_h=pec_h, cx=cx, cy=cy, rot=rot,
        r0=r0[pp], aspect=aspect[pp], harm_amp=harm_amp[pp], harm_phase=harm_phase[pp],
        spic_angle=spic_angle[pp], spic_len=spic_len[pp], calc_dy=(cr * np.sin(ca))[pp],
        calc_dx=(cr * np.cos(ca))[pp], calc_amp=calc_amp[pp], calc_r=calc_r[pp], calc_shift=calc_shift[pp])))


def _take(scene, idx: np.ndarray | slice):
    """The images ``idx`` of a scene dataclass (every field is an array over images)."""
    return type(scene)(**{k: getattr(scene, k)[idx] for k in scene.__dataclass_fields__})


def _render_breast(s: _MammoScene, Y: np.ndarray, X: np.ndarray, rng: np.random.Generator, size: int,
                   opts: _MammoOptions) -> tuple[np.ndarray, np.ndarray]:
    """Tissue image (chest wall on the left) and the soft breast region, ``(n, H, W)`` each."""
    n = len(s.kind)
    ex, hh, y0 = s.extent[:, None, None], s.half_height[:, None, None], s.y0[:, None, None]
    re = np.sqrt(((X + 1.0) / ex) ** 2 + ((Y - y0) / hh) ** 2)
    breast = expit((1.0 - re) / 0.015)
    # Compressed breast: thinner (darker) towards the skin line.
    thickness = 0.55 + 0.45 * np.sqrt(np.clip(1.0 - re ** 2, 0.0, 1.0))
    # Fibroglandular tissue: blobs of dense tissue (low frequency) with finer parenchymal detail.
    gland = expit(2.0 * _smooth_noise(rng, n, size, 0.06) - 0.3)
    fine = _smooth_noise(rng, n, size, 0.015)
    dens = opts.texture * s.density[:, None, None]
    tissue = 0.3 + dens * (0.2 * gland + 0.03 * fine)
    # MLO: bright pectoral muscle triangle in the upper chest-wall corner.
    pec = expit((1.0 - (X + 1.0) / s.pec_w[:, None, None] - (Y + 1.0) / s.pec_h[:, None, None]) / 0.03)
    pec = pec * s.mlo[:, None, None]
    tissue = tissue * thickness * (1 - pec) + pec * (0.75 + 0.03 * fine)
    return tissue, breast


def _render_masses(s: _MammoScene, Y: np.ndarray, X: np.ndarray, opts: _MammoOptions,
                   lesion: np.ndarray, mask: np.ndarray) -> None:
    """Add benign (smooth oval, sharp margin) and malignant (irregular, ill-defined, spiculated) masses."""
    for benign in (True, False):
        sel = np.flatnonzero(s.kind == BENIGN_MASS) if benign else \
            np.flatnonzero((s.kind == SPICULATED) | (s.kind == SPICULATED_CALC))
        if len(sel) == 0:
            continue
        t = _take(s, sel)
        u, v = _local_frame(Y, X, t.cy, t.cx, t.rot)
        rho, theta = np.hypot(u, v), np.arctan2(v, u)
        if benign:
            r = _outline_radius(theta, t.r0, t.aspect)
            edge = 0.008
        else:  # irregular: near-round base deformed by harmonics, fuzzier margin
            r = _outline_radius(theta, t.r0, np.ones_like(t.aspect), t.harm_amp, t.harm_phase)
            edge = 0.014
        body = expit((r - rho) / edge) * (0.8 + 0.2 * np.sqrt(np.clip(1 - (rho / r) ** 2, 0, 1)))
        layer = opts.lesion_contrast * (opts.benign_contrast if benign else 1.0) * body
        if not benign:
            spic = _spicules(u, v, t.r0, t.spic_angle, t.spic_len, width=0.025)
            layer = np.maximum(layer, opts.lesion_contrast * opts.spicule_contrast * spic)
        lesion[sel] += layer
        m = rho < r
        _mark_centre(m, t.cy, t.cx)
        mask[sel] |= m


def _render_calcs(s: _MammoScene, Y: np.ndarray, X: np.ndarray, size: int, opts: _MammoOptions,
                  lesion: np.ndarray, mask: np.ndarray) -> None:
    """Add clusters of micro-calcifications (tiny, very bright dots); the mask is the cluster's disk."""
    sel = np.flatnonzero((s.kind == CALCIFICATION) | (s.kind == SPICULATED_CALC))
    if len(sel) == 0:
        return
    t = _take(s, sel)
    # Next to a spiculated mass the cluster sits slightly off its centre; alone it sits at the lesion centre.
    both = t.kind == SPICULATED_CALC
    ccy = t.cy + np.where(both, t.calc_shift[:, 0], 0.0)
    ccx = t.cx + np.where(both, t.calc_shift[:, 1], 0.0)
    c, si = np.cos(t.rot)[:, None], np.sin(t.rot)[:, None]
    ys = ccy[:, None] + t.calc_dx * si + t.calc_dy * c
    xs = ccx[:, None] + t.calc_dx * c - t.calc_dy * si
    img_idx = np.broadcast_to(np.arange(len(sel))[:, None], ys.shape)
    on = t.calc_amp > 0
    dots = _splat_points(len(sel), size, img_idx[on], ys[on], xs[on], t.calc_amp[on], sigma_frac=0.005)
    lesion[sel] += opts.calc_contrast * dots
    m = _disk_mask(Y, X, ccy, ccx, t.calc_r * 1.2)
    _mark_centre(m, ccy, ccx)
    mask[sel] |= m


def _render_mammo(s: _MammoScene, size: int, opts: _MammoOptions, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Float images in about [0, 1] and lesion masks of one chunk of a mammography scene."""
    Y, X = _grid(size)
    tissue, breast = _render_breast(s, Y, X, rng, size, opts)
    lesion = np.zeros_like(tissue)
    mask = np.zeros(tissue.shape, bool)
    _render_masses(s, Y, X, opts, lesion, mask)
    _render_calcs(s, Y, X, size, opts, lesion, mask)
    img = opts.background * (1 - breast) + breast * (tissue + lesion)
    img = _apply_style(img, rng, size, gamma=opts.gamma, gain=opts.gain, offset=opts.offset, blur=opts.blur,
                       noise=opts.noise, grain=opts.grain)
    mask &= breast > 0.5
    # Right breasts are mirror images (chest wall on the right), as on a reading screen.
    img[s.right] = img[s.right, :, ::-1]
    mask[s.right] = mask[s.right, :, ::-1]
    return img, mask


def _load_mammo(name: str, opts: _MammoOptions, image_size: int) -> ArrayDataset:
    _check_size(image_size)
    prng, xrng = _streams(name, opts.seed)
    scene = _mammo_scene(prng, opts)
    n = opts.n_images
    images = np.empty((n, image_size, image_size), np.uint8)
    masks = np.empty((n, image_size, image_size), bool)
    for sl in _chunks(n, image_size):
        img, m = _render_mammo(_take(scene, sl), image_size, opts, xrng)
        images[sl], masks[sl] = _to_uint8(img), m
    labels = np.isin(scene.kind, list(_MALIGNANT_KIND_P)).astype(np.int64)
    width = max(4, len(str(scene.patient.max())))
    patient_ids = np.array([f"P{p:0{width}d}" for p in scene.patient])
    views = np.where(scene.mlo, "MLO", "CC")
    sides = np.where(scene.right, "R", "L")
    meta = _meta(name, opts, image_size, lesion_kind=[MAMMO_KINDS[k] for k in scene.kind],
                 view=[f"{a}-{b}" for a, b in zip(sides, views)])
    return ArrayDataset(name=name, images=images, labels=labels, image_ids=_ids(name, n), patient_ids=patient_ids,
                        masks=masks, modality="mammography", meta=meta)


# --------------------------------------------------------------------------------------------------
# Ultrasound
# --------------------------------------------------------------------------------------------------


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


def _us_scene(rng: np.random.Generator, opts: _UltrasoundOptions) -> _USScene:
    """Draw every size-independent parameter: labels, tissue layers, lesion geometry, output moments."""
    n = opts.n_images
    n_mal = round(opts.malignant_fraction * n)
    n_norm = round(opts.normal_fraction * (n - n_mal))
    kind = _allocate(rng, n, {2: n_mal, 0: n_norm}, 1)
    mal = kind == 2

    def per_image(lo: float, hi: float, *shape: int) -> np.ndarray:
        return rng.uniform(lo, hi, (n, *shape))

    # The same equivalent-radius distribution for both classes: lesion size carries no label.
    aspect = np.where(mal, per_image(0.55, 0.85), per_image(1.35, 1.9))
    harm_amp = per_image(0.05, 0.13, _MAX_HARMONICS) * mal[:, None]  # benign outlines stay smooth
    strength = opts.posterior * per_image(0.7, 1.3)
    # Layer depths (skin line, fat/gland boundary, gland/muscle boundary) in normalised y, top = -1.
    z_skin, z_fat, z_deep = per_image(-0.94, -0.88), per_image(-0.65, -0.4), per_image(0.45, 0.75)
    wave_phase, attenuation = per_image(0, 2 * np.pi, 2), per_image(0.1, 0.5)
    cx, cy, rot, r0 = per_image(-0.4, 0.4), per_image(-0.2, 0.15), per_image(-0.25, 0.25), per_image(0.13, 0.22)
    harm_phase = per_image(0, 2 * np.pi, _MAX_HARMONICS)
    out_mean, out_std = per_image(0.36, 0.5), per_image(0.16, 0.22)
    return _USScene(**_float32(dict(
        kind=kind, z_skin=z_skin, z_fat=z_fat, z_deep=z_deep, wave_phase=wave_phase, attenuation=attenuation,
        cx=cx, cy=cy, rot=rot, r0=r0, aspect=aspect, harm_amp=harm_amp, harm_phase=harm_phase,
        posterior=np.where(mal, -strength, strength), out_mean=out_mean, out_std=out_std)))


def _render_us(s: _USScene, size: int, opts: _UltrasoundOptions, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """Float B-mode-like images and lesion masks of one chunk of an ultrasound scene."""
    n = len(s.kind)
    Y, X = _grid(size)
    # Layered echogenicity: bright skin line, dark fat, bright glandular tissue, darker muscle below.
    wave = 0.05 * np.sin(2.5 * X + s.wave_phase[:, 0, None, None])
    z_fat = s.z_fat[:, None, None] + wave
    z_deep = s.z_deep[:, None, None] + 0.6 * wave + 0.04 * np.sin(4 * X + s.wave_phase[:, 1, None, None])
    skin = np.exp(-0.5 * ((Y - s.z_skin[:, None, None]) / 0.02) ** 2)
    below_fat, below_deep = expit((Y - z_fat) / 0.03), expit((Y - z_deep) / 0.03)
    echo = 0.45 + 0.55 * below_fat - 0.4 * below_deep + 1.2 * skin
    echo = echo * np.exp(0.3 * _smooth_noise(rng, n, size, 0.05))
    echo = echo * np.exp(-s.attenuation[:, None, None] * (Y + 1.0))

    mask = np.zeros(echo.shape, bool)
    sel = np.flatnonzero(s.kind > 0)
    if len(sel):
        t = _take(s, sel)
        u, v = _local_frame(Y, X, t.cy, t.cx, t.rot)
        rho, theta = np.hypot(u, v), np.arctan2(v, u)
        r = _outline_radius(theta, t.r0, t.aspect, t.harm_amp, t.harm_phase)
        body = expit((r - rho) / 0.012)
        inner = opts.lesion_echo * np.exp(0.35 * _smooth_noise(rng, len(sel), size, 0.02))
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
        _mark_centre(m, t.cy, t.cx)
        mask[sel] = m

    # Fully developed speckle: magnitude of low-passed complex Gaussian noise is Rayleigh distributed;
    # lateral grain is wider than axial, as with a linear probe.
    sig = (opts.speckle_size * 0.5, opts.speckle_size)
    speckle = np.hypot(_gauss(rng.standard_normal((n, size, size), dtype=np.float32), sig, size),
                       _gauss(rng.standard_normal((n, size, size), dtype=np.float32), sig, size))
    speckle /= speckle.mean(axis=(1, 2), keepdims=True)
    img = np.log1p(20.0 * echo * speckle) / np.log1p(20.0)  # log compression, as in B-mode displays
    # Mean and contrast drawn independently of the label: shadowing must not make malignant images darker.
    img = (img - img.mean(axis=(1, 2), keepdims=True)) / (img.std(axis=(1, 2), keepdims=True) + 1e-6)
    img = s.out_mean[:, None, None] + s.out_std[:, None, None] * img
    return _apply_style(img, rng, size, blur=opts.blur, noise=opts.noise), mask


def _load_us(name: str, opts: _UltrasoundOptions, image_size: int) -> ArrayDataset:
    _check_size(image_size)
    prng, xrng = _streams(name, opts.seed)
    scene = _us_scene(prng, opts)
    n = opts.n_images
    images = np.empty((n, image_size, image_size), np.uint8)
    masks = np.empty((n, image_size, image_size), bool)
    for sl in _chunks(n, image_size):
        img, m = _render_us(_take(scene, sl), image_size, opts, xrng)
        images[sl], masks[sl] = _to_uint8(img), m
    meta = _meta(name, opts, image_size, lesion_kind=[US_KINDS[k] for k in scene.kind])
    return ArrayDataset(name=name, images=images, labels=(scene.kind == 2).astype(np.int64),
                        image_ids=_ids(name, n), patient_ids=None, masks=masks, modality="ultrasound", meta=meta)


# --------------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------------


def _check_size(image_size: int) -> None:
    if not isinstance(image_size, (int, np.integer)) or not 16 <= image_size <= 1024:
        raise ValueError(f"The 'image_size' of a synthetic dataset must be an int in [16, 1024]. Got {image_size!r}.")


def _meta(name: str, opts: _SynthOptions, image_size: int, **per_image: list) -> dict:
    """JSON-friendly metadata: the generator, its version, every option, and per-image lists."""
    return {"generator": f"{__name__}:{name}", "generator_version": GENERATOR_VERSION, "image_size": int(image_size),
            "options": opts.model_dump(), **per_image}


def _mammo_loader(name: str):
    def load(options: _MammoOptions, *, image_size, root=None) -> ArrayDataset:  # noqa: ARG001 (no files)
        return _sized(image_size, lambda side: _load_mammo(name, options, side))
    return load


def _us_loader(name: str):
    def load(options: _UltrasoundOptions, *, image_size, root=None) -> ArrayDataset:  # noqa: ARG001 (no files)
        return _sized(image_size, lambda side: _load_us(name, options, side))
    return load


def _sized(image_size, render) -> ArrayDataset:
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


register_dataset(DatasetSpec(
    name="synth-ddsm", load=_mammo_loader("synth-ddsm"), options=SynthDDSMOptions, modality="mammography",
    description="synthetic film-mammogram source (CC+MLO per patient, masses, spicules, calcifications, masks)"))
register_dataset(DatasetSpec(
    name="synth-inbreast", load=_mammo_loader("synth-inbreast"), options=SynthINbreastOptions,
    modality="mammography", description="synthetic digital-mammogram target (clean, slight blur, own profile)"))
register_dataset(DatasetSpec(
    name="synth-mias", load=_mammo_loader("synth-mias"), options=SynthMIASOptions, modality="mammography",
    description="synthetic scanned-film target (grain, stronger blur, left/right film pairs)"))
register_dataset(DatasetSpec(
    name="synth-ultrasound", load=_us_loader("synth-ultrasound"), options=SynthUltrasoundOptions,
    modality="ultrasound", description="synthetic B-mode ultrasound target (speckle, shape/shadowing cues; "
                                       "no patient ids) - the negative control for mammography sources"))
