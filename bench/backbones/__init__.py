# ruff: noqa: I001  (the built-ins register last: they import the names above)
"""Backbones: the contract, the registry, hybrid slimming, stage helpers and weight transfer.

A backbone is registered as a :class:`BackboneSpec` (a factory, its named stages with channels and strides,
its input needs and where its ImageNet weights come from). Every built-in has five stages, conv1 .. block4; a
plugin may have any number (1 or more). Built-ins are timm models, ``morphhr``, ``patch_cnn`` and ``toy_cnn``;
plugins come from the entry-point group ``bench.backbones``, a module named in a suite's ``plugins:``, or a
name: ``timm:<model>`` or ``package.module:factory``.
"""
from bench.backbones._base import (BACKBONES, STAGE_NAMES, BackboneSpec, WeightsNotFoundError, create_backbone,
                                   imagenet_state_dict, register_backbone, reset_head)
from bench.backbones._transfer import transfer_weights
from bench.backbones.hybrid import create_hybrid
from bench.backbones.stages import (freeze_up_to, parameters_after, stage_boundaries, stage_modules, stage_names,
                                    stage_of_tensors, stage_shapes)

from bench.registry import BUILT_IN as _BUILT_IN, origin as _origin

# built-ins are built-in even when a plugin module (imported under its own origin) is what first imports bench.backbones
with _origin(_BUILT_IN):
    from bench.backbones import morphhr, patch_cnn, plugins, timm_models, toy  # noqa: F401

__all__ = ["BACKBONES", "STAGE_NAMES", "BackboneSpec", "WeightsNotFoundError", "create_backbone", "create_hybrid",
           "freeze_up_to", "imagenet_state_dict", "parameters_after", "register_backbone", "reset_head",
           "stage_boundaries", "stage_modules", "stage_names", "stage_of_tensors", "stage_shapes", "transfer_weights"]
