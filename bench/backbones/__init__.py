"""Backbones: the contract, the registry, hybrid slimming, stage helpers and weight transfer.

A backbone is registered as a :class:`BackboneSpec` (a factory, its named stages with channels and strides,
its input needs and where its ImageNet weights come from). Every built-in has five stages, conv1 .. block4; a
plugin may have any number (1 or more). Built-ins are timm models, ``morphhr``, ``patch_cnn`` and ``toy_cnn``;
plugins come from the entry-point group ``bench.backbones``, a module named in a suite's ``plugins:``, or a
name: ``timm:<model>`` or ``package.module:factory``.

``import bench.backbones`` loads neither torch nor timm: the specs and the registry (:mod:`.specs`) and the
built-ins' specs (:mod:`.builtin`) are torch-free, and the names that build or inspect networks
(``create_backbone``, ``create_hybrid``, the stage helpers, ``transfer_weights``...) are imported on first use.
"""
from __future__ import annotations

import importlib

from bench.backbones.specs import (
    BACKBONES,
    STAGE_NAMES,
    BackboneSpec,
    LazyCallable,
    WeightsNotFoundError,
    imagenet_state_dict,
    register_backbone,
)
from bench.registry import BUILT_IN as _BUILT_IN
from bench.registry import origin as _origin

# built-ins are built-in even when a plugin module (imported under its own origin) is what first imports bench.backbones
with _origin(_BUILT_IN):
    from bench.backbones import builtin, plugins  # noqa: F401

_LAZY = {  # name -> module (torch): imported on first use
    "create_backbone": "bench.backbones.build",
    "reset_head": "bench.backbones.build",
    "create_hybrid": "bench.backbones.hybrid",
    "transfer_weights": "bench.backbones.transfer",
    **dict.fromkeys(("freeze_up_to", "parameters_after", "stage_boundaries", "stage_modules", "stage_names",
                     "stage_of_tensors", "stage_shapes"), "bench.backbones.stages"),
}
_SUBMODULES = ("check", "hybrid", "morphhr", "patch_cnn", "stages", "timm_models", "toy")

__all__ = ["BACKBONES", "STAGE_NAMES", "BackboneSpec", "LazyCallable", "WeightsNotFoundError", "create_backbone",
           "create_hybrid", "freeze_up_to", "imagenet_state_dict", "parameters_after", "register_backbone",
           "reset_head", "stage_boundaries", "stage_modules", "stage_names", "stage_of_tensors", "stage_shapes",
           "transfer_weights"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:  # bench.backbones.toy etc. were attributes once the package was imported
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later look-ups (and monkeypatching) see a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
