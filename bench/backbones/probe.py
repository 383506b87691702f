"""Building a network to learn what it is: its stages from timm's ``feature_info`` (for plugins that declare
none), the taps that own parameters, and calling a factory. Needs torch; imports nothing else of bench, so the
torch-free spec module (:mod:`bench.backbones.specs`) can call it on first use without an import circle.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: How many stages a probed network keeps (the deepest ones): bench's default five, conv1 and block1-4.
PROBED_STAGES = 5
#: The ``BackboneSpec.extra`` key of a stage-map revision (see bench.backbones.specs.STAGE_MAP_REVISION).
STAGE_MAP_REVISION = "stage_map_revision"


def call_create(create: Callable[..., nn.Module], num_classes: int, in_chans: int) -> nn.Module:
    """``create(num_classes)``, passing ``in_chans`` only when it is not 3 (a factory may not take it)."""
    if in_chans == 3:
        return create(num_classes)
    try:
        return create(num_classes, in_chans=in_chans)
    except TypeError as exc:
        raise ValueError(f"this backbone's factory does not take in_chans ({exc}); use 3-channel input "
                         "(gray repeated, the default)") from None


def probe_stages(create: Callable[..., nn.Module]) -> dict:
    """Stages, channels, reductions and head read from a model's timm ``feature_info`` (built on the meta device)."""
    try:
        with torch.device("meta"):
            model = create(2)
    except Exception:  # noqa: BLE001  (some factories cannot build on meta tensors)
        model = create(2)
    info = getattr(model, "feature_info", None)
    if info is None:
        raise ValueError(f"{type(model).__name__} has no timm feature_info: declare BackboneSpec.stages, "
                         "channels and reductions (the module names of its stages, in forward order)")
    info = [dict(f) for f in info]
    kept = nonempty_taps(model, [f["module"] for f in info])
    dropped = len(info) - len(kept)
    info = [f for f in info if f["module"] in kept]
    if not info:
        raise ValueError(f"{type(model).__name__} has no feature stage that owns parameters in feature_info: "
                         "declare BackboneSpec.stages, channels and reductions")
    # More than five taps: keep the deepest five (usually strides 2, 4, 8, 16, 32); fewer: all of them. A tap that
    # adds no parameter (VGG's last max-pool) was dropped above: a stage must own layers, or "train from block4"
    # trains nothing.
    info = info[-PROBED_STAGES:]
    cfg = getattr(model, "pretrained_cfg", None) or {}
    out = {"stages": tuple(f["module"] for f in info), "channels": tuple(int(f["num_chs"]) for f in info),
           "reductions": tuple(int(f["reduction"]) for f in info), "head": cfg.get("classifier", "") or ""}
    if dropped:  # the stage map differs from the one bench used before 2026-12-04: cells that depend on it get new ids
        out["extra"] = {STAGE_MAP_REVISION: 2}
    return out


def nonempty_taps(model: nn.Module, taps: list[str]) -> list[str]:
    """``taps`` (module names ending each stage, shallow to deep) without those whose stage owns no parameter.

    A tap's stage is every module registered after the previous tap's subtree up to the end of its own subtree
    (registration order, which is execution order for the sequential feature extractors timm tags).
    """
    names = [n for n, _ in model.named_modules()]
    has_params = {n: any(True for _ in m.parameters(recurse=False)) for n, m in model.named_modules()}

    def end(tap: str) -> int:
        return max(i for i, n in enumerate(names) if n == tap or n.startswith(tap + "."))

    kept, start = [], 0
    for tap in taps:
        stop = end(tap)
        if any(has_params[n] for n in names[start:stop + 1]):
            kept.append(tap)
            start = stop + 1
    return kept
