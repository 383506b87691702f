"""Data augmentation for training batches and test-time augmentation (TTA) views.

Policies (the suite's ``finetune.augment``):

- ``flip``: random horizontal flips, p = 0.5 (mammograms of both lateralities exist). The default.
- ``falconi``: Falconi et al. 2020, Table 5, with torchvision's ``transforms.v2``: rotation up to 15 degrees
  (p 0.95), shear up to 25 degrees (p 0.6), horizontal flip (p 0.7), brightness x[0.6, 1.2] (p 0.8) and
  zoom x[1.0, 1.2] (always). Their histogram equalisation (p 0.6) is left out: it is preprocessing, and
  datasets may already equalise (CLAHE).
- ``none``.

Every image of a batch gets its own random parameters. Randomness comes from torch's global RNG, which
:func:`bench.train.fit` seeds from the cell seed, so runs are deterministic on CPU.
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2

AUGMENTATIONS = ("flip", "falconi", "none")
TTA_MODES = {"none": ((),), "hflip": ((), (-1,)), "flips": ((), (-1,), (-2,), (-2, -1))}


def falconi_transform() -> v2.Transform:
    """Falconi's augmentation set on one ``(C, H, W)`` float image in [0, 1]."""
    return v2.Compose([
        v2.RandomApply([v2.RandomAffine(degrees=15)], p=0.95),
        v2.RandomApply([v2.RandomAffine(degrees=0, shear=25)], p=0.6),
        v2.RandomHorizontalFlip(p=0.7),
        v2.RandomApply([v2.ColorJitter(brightness=(0.6, 1.2))], p=0.8),
        v2.RandomAffine(degrees=0, scale=(1.0, 1.2)),
    ])


def augment_batch(x: torch.Tensor, policy: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment a ``(B, C, H, W)`` float batch in [0, 1] (before normalisation: brightness clamps to [0, 1]).

    ``flip`` draws from ``generator`` (as bench always has); ``falconi`` from torch's global RNG.
    """
    if policy == "none" or len(x) == 0:
        return x
    if policy == "flip":
        flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
        x = x.clone()
        x[flip] = x[flip].flip(-1)
        return x
    if policy == "falconi":
        t = falconi_transform()
        return torch.stack([t(img) for img in x])
    raise ValueError(f"unknown augmentation {policy!r}; use one of {', '.join(AUGMENTATIONS)}")


def tta_views(mode: str) -> tuple[tuple[int, ...], ...]:
    """Flip dims of each TTA view: ``none`` (identity), ``hflip`` (+ horizontal flip) or ``flips``
    (Shen et al.'s augmented prediction: identity, horizontal, vertical and both flips)."""
    if mode not in TTA_MODES:
        raise ValueError(f"unknown tta {mode!r}; use one of {', '.join(TTA_MODES)}")
    return TTA_MODES[mode]
