"""Building networks from specs (torch): ``create_backbone`` and ``reset_head``.

:mod:`bench.backbones.specs` holds what is known about a backbone without torch (its spec, the registry,
where its weights are); this module builds the network, and is imported when one is built. Probing a
plugin's stages is :mod:`bench.backbones.probe`, reading weights files :mod:`bench.backbones.checkpoint`.
"""
from __future__ import annotations

from torch import nn

from bench.backbones.specs import BACKBONES, BackboneSpec
from bench.backbones.probe import call_create


def create_backbone(name: str, num_classes: int = 2, *, in_chans: int = 3) -> nn.Module:
    """A randomly initialised network (seed torch's RNG first for a reproducible init).

    The network is tagged ``model.bench_backbone = name`` so the stage helpers find its spec.
    """
    model = call_create(BACKBONES.get(name).create, num_classes, in_chans)
    model.bench_backbone = name
    return model


def reset_head(model: nn.Module, num_classes: int, spec: BackboneSpec | None = None) -> nn.Module:
    """Replace the classifier by a fresh one with ``num_classes`` outputs (in place); return the model.

    Uses timm's ``reset_classifier`` where the model has it, else swaps the ``nn.Linear`` named ``spec.head``.
    """
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
        return model
    if spec is None or not spec.head:
        raise ValueError(f"{type(model).__name__} has no reset_classifier; declare BackboneSpec.head")
    old = model.get_submodule(spec.head)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"head {spec.head!r} is a {type(old).__name__}, not nn.Linear; point BackboneSpec.head "
                         "at the final nn.Linear inside it, or give the model a reset_classifier(num_classes) method")
    parent, _, attr = spec.head.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, nn.Linear(old.in_features, num_classes))
    return model
