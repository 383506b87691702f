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
    Shapes and textures are small shared helpers (``smooth_noise``, ``outline_radius``,
    ``spicules``, ``splat_points``, ``apply_style`` in :mod:`bench.data.synthetic.draw`) so new lesion
    types or known-answer knobs only add a parameter draw and a layer.

Modules
    :mod:`~bench.data.synthetic.options` (the options of each dataset), :mod:`~bench.data.synthetic.draw`
    (randomness, coordinates, textures, shapes, metadata), :mod:`~bench.data.synthetic.mammography` and
    :mod:`~bench.data.synthetic.ultrasound` (the two generators); this package registers the datasets.
"""
from __future__ import annotations

from bench.data.base import ArrayDataset, DatasetSpec, register_dataset
from bench.data.synthetic.draw import GENERATOR_VERSION, sized
from bench.data.synthetic.mammography import (
    BENIGN_MASS,
    CALCIFICATION,
    MAMMO_KINDS,
    NORMAL,
    SPICULATED,
    SPICULATED_CALC,
    load_mammo,
)
from bench.data.synthetic.options import (
    MammoOptions,
    SynthDDSMOptions,
    SynthINbreastOptions,
    SynthMIASOptions,
    SynthOptions,
    SynthUltrasoundOptions,
    UltrasoundOptions,
)
from bench.data.synthetic.ultrasound import US_KINDS, load_us

__all__ = ["BENIGN_MASS", "CALCIFICATION", "GENERATOR_VERSION", "MAMMO_KINDS", "NORMAL", "SPICULATED",
           "SPICULATED_CALC", "US_KINDS", "MammoOptions", "SynthDDSMOptions", "SynthINbreastOptions",
           "SynthMIASOptions", "SynthOptions", "SynthUltrasoundOptions", "UltrasoundOptions"]


def _mammo_loader(name: str):
    def load(options: MammoOptions, *, image_size, root=None) -> ArrayDataset:  # noqa: ARG001 (no files)
        return sized(image_size, lambda side: load_mammo(name, options, side))
    return load


def _us_loader(name: str):
    def load(options: UltrasoundOptions, *, image_size, root=None) -> ArrayDataset:  # noqa: ARG001 (no files)
        return sized(image_size, lambda side: load_us(name, options, side))
    return load


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
