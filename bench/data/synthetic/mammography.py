"""The mammogram-like generator of ``synth-ddsm``, ``synth-inbreast`` and ``synth-mias`` (see
:mod:`bench.data.synthetic`)."""
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
    disk_mask,
    float32,
    grid,
    ids,
    local_frame,
    mark_centre,
    outline_radius,
    smooth_noise,
    spicules,
    splat_points,
    streams,
    take,
)
from bench.data.synthetic.options import MammoOptions


# Lesion kinds, per image. "normal" is the only kind without a mask.
NORMAL, BENIGN_MASS, SPICULATED, CALCIFICATION, SPICULATED_CALC = range(5)
MAMMO_KINDS = ("normal", "benign_mass", "spiculated_mass", "calcification", "spiculated_mass+calcification")

# How malignant mammogram lesions split between the three malignant kinds.
_MALIGNANT_KIND_P = {SPICULATED: 0.55, CALCIFICATION: 0.25, SPICULATED_CALC: 0.20}
_MAX_SPICULES = 12
_MAX_CALCS = 16


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


def _mammo_kinds(rng: np.random.Generator, opts: MammoOptions, n_patients: int) -> tuple[np.ndarray, np.ndarray]:
    """Lesion kind per patient and, per patient, which of its two images shows it (-1 = both)."""
    per_patient = 2 if opts.pairing == "views" else 1  # lesion images per lesion patient
    n_img = opts.n_images
    n_mal = min(n_patients, round(opts.malignant_fraction * n_img / per_patient))
    n_ben = min(n_patients - n_mal, round(opts.benign_fraction * (n_img - n_mal * per_patient) / per_patient))
    patient_kind = allocate(rng, n_patients, {-1: n_mal, BENIGN_MASS: n_ben}, NORMAL)
    mal = patient_kind == -1  # placeholder, replaced by a malignant kind below
    choices = np.array(list(_MALIGNANT_KIND_P))
    patient_kind[mal] = rng.choice(choices, size=mal.sum(), p=list(_MALIGNANT_KIND_P.values()))
    which = np.full(n_patients, -1) if opts.pairing == "views" else rng.integers(0, 2, n_patients)
    return patient_kind, which


def _mammo_scene(rng: np.random.Generator, opts: MammoOptions) -> _MammoScene:
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
    harm_amp = per_patient(0.04, 0.12, MAX_HARMONICS)
    harm_phase = per_patient(0, 2 * np.pi, MAX_HARMONICS)
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
    return _MammoScene(**float32(dict(
        patient=patient, kind=kind, right=right, mlo=mlo, extent=extent, half_height=half_height, y0=y0,
        density=density, pec_w=pec_w, pec_h=pec_h, cx=cx, cy=cy, rot=rot,
        r0=r0[pp], aspect=aspect[pp], harm_amp=harm_amp[pp], harm_phase=harm_phase[pp],
        spic_angle=spic_angle[pp], spic_len=spic_len[pp], calc_dy=(cr * np.sin(ca))[pp],
        calc_dx=(cr * np.cos(ca))[pp], calc_amp=calc_amp[pp], calc_r=calc_r[pp], calc_shift=calc_shift[pp])))


def _render_breast(s: _MammoScene, Y: np.ndarray, X: np.ndarray, rng: np.random.Generator, size: int,
                   opts: MammoOptions) -> tuple[np.ndarray, np.ndarray]:
    """Tissue image (chest wall on the left) and the soft breast region, ``(n, H, W)`` each."""
    n = len(s.kind)
    ex, hh, y0 = s.extent[:, None, None], s.half_height[:, None, None], s.y0[:, None, None]
    re = np.sqrt(((X + 1.0) / ex) ** 2 + ((Y - y0) / hh) ** 2)
    breast = expit((1.0 - re) / 0.015)
    # Compressed breast: thinner (darker) towards the skin line.
    thickness = 0.55 + 0.45 * np.sqrt(np.clip(1.0 - re ** 2, 0.0, 1.0))
    # Fibroglandular tissue: blobs of dense tissue (low frequency) with finer parenchymal detail.
    gland = expit(2.0 * smooth_noise(rng, n, size, 0.06) - 0.3)
    fine = smooth_noise(rng, n, size, 0.015)
    dens = opts.texture * s.density[:, None, None]
    tissue = 0.3 + dens * (0.2 * gland + 0.03 * fine)
    # MLO: bright pectoral muscle triangle in the upper chest-wall corner.
    pec = expit((1.0 - (X + 1.0) / s.pec_w[:, None, None] - (Y + 1.0) / s.pec_h[:, None, None]) / 0.03)
    pec = pec * s.mlo[:, None, None]
    tissue = tissue * thickness * (1 - pec) + pec * (0.75 + 0.03 * fine)
    return tissue, breast


def _render_masses(s: _MammoScene, Y: np.ndarray, X: np.ndarray, opts: MammoOptions,
                   lesion: np.ndarray, mask: np.ndarray) -> None:
    """Add benign (smooth oval, sharp margin) and malignant (irregular, ill-defined, spiculated) masses."""
    for benign in (True, False):
        sel = np.flatnonzero(s.kind == BENIGN_MASS) if benign else \
            np.flatnonzero((s.kind == SPICULATED) | (s.kind == SPICULATED_CALC))
        if len(sel) == 0:
            continue
        t = take(s, sel)
        u, v = local_frame(Y, X, t.cy, t.cx, t.rot)
        rho, theta = np.hypot(u, v), np.arctan2(v, u)
        if benign:
            r = outline_radius(theta, t.r0, t.aspect)
            edge = 0.008
        else:  # irregular: near-round base deformed by harmonics, fuzzier margin
            r = outline_radius(theta, t.r0, np.ones_like(t.aspect), t.harm_amp, t.harm_phase)
            edge = 0.014
        body = expit((r - rho) / edge) * (0.8 + 0.2 * np.sqrt(np.clip(1 - (rho / r) ** 2, 0, 1)))
        layer = opts.lesion_contrast * (opts.benign_contrast if benign else 1.0) * body
        if not benign:
            spic = spicules(u, v, t.r0, t.spic_angle, t.spic_len, width=0.025)
            layer = np.maximum(layer, opts.lesion_contrast * opts.spicule_contrast * spic)
        lesion[sel] += layer
        m = rho < r
        mark_centre(m, t.cy, t.cx)
        mask[sel] |= m


def _render_calcs(s: _MammoScene, Y: np.ndarray, X: np.ndarray, size: int, opts: MammoOptions,
                  lesion: np.ndarray, mask: np.ndarray) -> None:
    """Add clusters of micro-calcifications (tiny, very bright dots); the mask is the cluster's disk."""
    sel = np.flatnonzero((s.kind == CALCIFICATION) | (s.kind == SPICULATED_CALC))
    if len(sel) == 0:
        return
    t = take(s, sel)
    # Next to a spiculated mass the cluster sits slightly off its centre; alone it sits at the lesion centre.
    both = t.kind == SPICULATED_CALC
    ccy = t.cy + np.where(both, t.calc_shift[:, 0], 0.0)
    ccx = t.cx + np.where(both, t.calc_shift[:, 1], 0.0)
    c, si = np.cos(t.rot)[:, None], np.sin(t.rot)[:, None]
    ys = ccy[:, None] + t.calc_dx * si + t.calc_dy * c
    xs = ccx[:, None] + t.calc_dx * c - t.calc_dy * si
    img_idx = np.broadcast_to(np.arange(len(sel))[:, None], ys.shape)
    on = t.calc_amp > 0
    dots = splat_points(len(sel), size, img_idx[on], ys[on], xs[on], t.calc_amp[on], sigma_frac=0.005)
    lesion[sel] += opts.calc_contrast * dots
    m = disk_mask(Y, X, ccy, ccx, t.calc_r * 1.2)
    mark_centre(m, ccy, ccx)
    mask[sel] |= m


def _render_mammo(s: _MammoScene, size: int, opts: MammoOptions, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Float images in about [0, 1] and lesion masks of one chunk of a mammography scene."""
    Y, X = grid(size)
    tissue, breast = _render_breast(s, Y, X, rng, size, opts)
    lesion = np.zeros_like(tissue)
    mask = np.zeros(tissue.shape, bool)
    _render_masses(s, Y, X, opts, lesion, mask)
    _render_calcs(s, Y, X, size, opts, lesion, mask)
    img = opts.background * (1 - breast) + breast * (tissue + lesion)
    img = apply_style(img, rng, size, gamma=opts.gamma, gain=opts.gain, offset=opts.offset, blur=opts.blur,
                       noise=opts.noise, grain=opts.grain)
    mask &= breast > 0.5
    # Right breasts are mirror images (chest wall on the right), as on a reading screen.
    img[s.right] = img[s.right, :, ::-1]
    mask[s.right] = mask[s.right, :, ::-1]
    return img, mask


def load_mammo(name: str, opts: MammoOptions, image_size: int) -> ArrayDataset:
    check_size(image_size)
    prng, xrng = streams(name, opts.seed)
    scene = _mammo_scene(prng, opts)
    n = opts.n_images
    images, masks = render_all(scene, n, image_size, lambda part: _render_mammo(part, image_size, opts, xrng))
    labels = np.isin(scene.kind, list(_MALIGNANT_KIND_P)).astype(np.int64)
    width = max(4, len(str(scene.patient.max())))
    patient_ids = np.array([f"P{p:0{width}d}" for p in scene.patient])
    views = np.where(scene.mlo, "MLO", "CC")
    sides = np.where(scene.right, "R", "L")
    meta = dataset_meta(name, opts, image_size, lesion_kind=[MAMMO_KINDS[k] for k in scene.kind],
                 view=[f"{a}-{b}" for a, b in zip(sides, views)])
    return ArrayDataset(name=name, images=images, labels=labels, image_ids=ids(name, n), patient_ids=patient_ids,
                        masks=masks, modality="mammography", meta=meta)
