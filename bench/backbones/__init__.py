"""Backbones: the registry, ``create_backbone`` and the transfer of pretrained weights.

A backbone is registered as a :class:`BackboneSpec` (a factory plus its data config and
where its ImageNet weights come from). Built-ins are timm models; plugins register through
the entry-point group ``bench.backbones`` or a module named in a suite's ``plugins:``.
"""
from bench.backbones._base import BACKBONES, BackboneSpec, WeightsNotFoundError, create_backbone, register_backbone
from bench.backbones._transfer import stage_boundaries, transfer_weights

from bench.backbones import timm_models, toy  # noqa: F401,E402  (register the built-ins)

__all__ = ["BACKBONES", "BackboneSpec", "WeightsNotFoundError", "create_backbone", "register_backbone",
           "stage_boundaries", "transfer_weights"]
