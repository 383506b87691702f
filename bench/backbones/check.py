"""Checks of a backbone's spec against its network.

:func:`check_backbone` (what ``bench validate`` runs for plugins): ``bench validate`` otherwise never builds a
network, so a wrong stage module, channel count or head would only surface when a hybrid or new-head cell fails
hours into a run. It builds the network once on a tiny input and compares it with the spec;
``tests/test_backbones_contract.py`` remains the full contract.

The stages a suite names are checked against each backbone's by the suite itself
(:func:`bench.suite.checks.check_suite_stages`, run by every ``load_suite``): this package never imports the suite.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.backbones.specs import BACKBONES, spec_stage_names
from bench.backbones.build import create_backbone
from bench.backbones.hybrid import create_hybrid
from bench.backbones.stages import stage_shapes

__all__ = ["check_backbone"]


def check_backbone(name: str, *, hybrid_stage: str | None = None) -> list[str]:
    """Problems of backbone ``name``'s spec, measured on its network (empty when it is consistent).

    Checks: the network builds and gives 2 logits; every declared stage runs and has the declared channel
    count; the declared ``head`` is an ``nn.Linear`` (or the model has timm's ``reset_classifier``); with
    ``hybrid_stage``, the hybrid network of that stage builds and runs.
    """
    spec = BACKBONES.get(name)
    side = max(32, spec.min_size)
    x = torch.zeros(2, 3, side, side)
    problems: list[str] = []
    torch.manual_seed(0)
    try:
        model = create_backbone(name, 2).eval()
        with torch.no_grad():
            out = model(x)
        if tuple(out.shape) != (2, 2):
            problems.append(f"forward of 2 images gives shape {tuple(out.shape)}, not (2, 2): the factory must "
                            "honour num_classes")
        shapes = stage_shapes(model, spec)
    except Exception as exc:  # noqa: BLE001 -- any failure is the finding
        return [*problems, f"building or running the network failed: {type(exc).__name__}: {exc}"]
    got = [s[0] if s else None for s in shapes.values()]
    for stage, module, want, have in zip(spec_stage_names(spec), spec.stages, spec.channels, got):
        if want != have:
            problems.append(f"stage {stage} ({module!r}) has {have} output channels, the spec declares {want}: fix "
                            "BackboneSpec.channels")
    if spec.head and not hasattr(model, "reset_classifier"):
        head = dict(model.named_modules()).get(spec.head)
        if not isinstance(head, nn.Linear):
            what = "no such submodule" if head is None else f"a {type(head).__name__}"
            problems.append(f"head {spec.head!r} is {what}, not an nn.Linear: point BackboneSpec.head at the final "
                            "nn.Linear")
    if hybrid_stage and hybrid_stage in spec_stage_names(spec) and not problems:  # else the suite excludes it
        try:
            with torch.no_grad():
                create_hybrid(name, 2, stage=hybrid_stage).eval()(x)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"the hybrid network at {hybrid_stage} fails: {type(exc).__name__}: {exc}")
    return problems
