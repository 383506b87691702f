"""``synth-obvious``: the fine-tuning known answer of the synthetic family.

The other synthetic targets test transfer *without* fine-tuning: their cues are subtle on purpose, and a
network trained from scratch on 24-48 of their images may honestly stay near AUC 0.5. This target is their
counterpart: a malignant image carries one large bright disk on a smooth, noisy tissue texture, a benign
image none. Any network that trains at all learns it from a few dozen images, so fine-tuning any backbone
from random initialisation on half of it must reach AUC >= 0.9 (``suites/synth-finetune-control.yaml`` and
``tests/test_finetune_control.py`` check this for every built-in backbone). A cell that fails it is a
harness bug (for instance evaluation-mode BatchNorm statistics that do not match the weights, issue 11),
not a finding. It says nothing about transfer: every source should reach the same ceiling.

One image per patient; the disk's radius is 0.25-0.35 of the half-width (5-10 % of the image's area),
its centre anywhere that keeps it inside the image, and its brightness ``disk_contrast`` above the tissue.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from bench.data.base import ArrayDataset, DatasetSpec, register_dataset
from bench.data.synthetic.draw import (
    allocate,
    apply_style,
    check_size,
    dataset_meta,
    disk_mask,
    grid,
    ids,
    sized,
    smooth_noise,
    streams,
    to_uint8,
)
from bench.data.synthetic.options import SynthOptions

NAME = "synth-obvious"


class SynthObviousOptions(SynthOptions):
    """``synth-obvious``: the malignant sign is one large bright disk."""

    malignant_fraction: float = Field(0.5, ge=0.0, le=1.0, description="share of malignant images (label 1)")
    disk_contrast: float = Field(0.45, ge=0.0, le=1.0, description="disk brightness above the tissue")
    noise: float = Field(0.04, ge=0.0, le=0.5, description="white noise std on the [0, 1] intensity scale")


def _load(name: str, opts: SynthObviousOptions, image_size: int) -> ArrayDataset:
    check_size(image_size)
    prng, xrng = streams(name, opts.seed)
    n = opts.n_images
    labels = allocate(prng, n, {1: int(round(opts.malignant_fraction * n))}, 0)
    radius = prng.uniform(0.35, 0.5, n).astype(np.float32)
    cy, cx = (prng.uniform(-1.0, 1.0, (2, n)) * (1.0 - radius)).astype(np.float32)
    level = prng.uniform(0.25, 0.4, n).astype(np.float32)
    Y, X = grid(image_size)
    tissue = level[:, None, None] + 0.08 * smooth_noise(xrng, n, image_size, 0.06)
    disk = disk_mask(Y, X, cy, cx, radius) & (labels == 1)[:, None, None]
    img = apply_style(tissue + opts.disk_contrast * disk, xrng, image_size, blur=opts.blur, noise=opts.noise)
    return ArrayDataset(name=name, images=to_uint8(img), labels=labels.astype(np.int64), image_ids=ids(name, n),
                        patient_ids=np.array([f"P{i:04d}" for i in range(n)]), masks=disk, modality="synthetic",
                        meta=dataset_meta(name, opts, image_size))


def load(options: SynthObviousOptions, *, image_size, root=None) -> ArrayDataset:  # noqa: ARG001 (no files)
    return sized(image_size, lambda side: _load(NAME, options, side))


register_dataset(DatasetSpec(
    name=NAME, load=load, options=SynthObviousOptions, modality="synthetic",
    description="synthetic known answer for fine-tuning: malignant = one large bright disk; any backbone "
                "fine-tuned from random init on half of it must reach AUC >= 0.9"))
