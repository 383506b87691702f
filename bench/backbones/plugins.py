"""Backbones named rather than registered: ``timm:<model>`` and ``package.module:factory``.

* ``timm:<model>``: any timm model (``timm.list_models()``), randomly initialised; its stages are
  the deepest five taps of timm's ``feature_info``, its mean/std and classifier come from its
  pretrained config, its ImageNet weights from a local file or timm's local cache (never downloaded).
* ``package.module:attr``: ``attr`` is a :class:`BackboneSpec` or a factory ``create(num_classes)``
  whose model has timm-style ``feature_info`` (otherwise export a spec that declares the stages).
  The module must be importable (installed or on ``PYTHONPATH``).

Both resolve on first lookup through the one backbone registry, so suites validate them like any
other name and ``bench list backbones`` shows them with their origin once used.
"""
from __future__ import annotations

import importlib
from functools import partial

from bench.backbones.specs import BACKBONES, BackboneSpec, as_spec
from bench.registry import PluginError, UnknownNameError, closest

TIMM_PREFIX = "timm:"


def _is_timm(name: str) -> bool:
    return name.startswith(TIMM_PREFIX)


def _timm_spec(name: str) -> BackboneSpec:
    import timm

    from bench.backbones.timm_models import timm_factory

    arch = name[len(TIMM_PREFIX):]
    if not timm.is_model(arch):
        raise UnknownNameError("timm model", arch, closest(arch, timm.list_models(), n=5), [],
                               hint="See timm.list_models(); write it as timm:<model>.")
    cfg = timm.models.get_pretrained_cfg(arch)
    cfg = cfg.to_dict() if cfg is not None else {}
    size = cfg.get("input_size") or (3, 224, 224)
    min_size = (cfg.get("min_input_size") or (3, 32, 32))[-1]
    spec = BackboneSpec(name=name, create=partial(timm_factory, arch), mean=tuple(cfg.get("mean") or (0.5,) * 3),
                        std=tuple(cfg.get("std") or (0.5,) * 3), min_size=max(32, int(min_size)),
                        input_size=int(size[-1]), timm_name=arch, description=f"timm {arch} (any timm model)")
    try:
        return as_spec(name, spec)
    except PluginError as exc:
        raise PluginError("backbone", name, f"{exc} (timm model {arch!r} cannot be used as a bench backbone)") from None


def _is_path(name: str) -> bool:
    return ":" in name and not _is_timm(name) and "/" not in name.split(":", 1)[0]


def _path_spec(name: str) -> object:
    module, _, attr = name.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise PluginError("backbone", name, f"backbone {name!r}: cannot import module {module!r} ({exc}); install "
                          "it or put its folder on PYTHONPATH") from None
    if not hasattr(mod, attr):
        public = [a for a in dir(mod) if not a.startswith("_")]
        raise UnknownNameError(f"attribute of {module}", attr, closest(attr, public), [],
                               hint=f"Backbone {name!r} names {module}:<attribute>.")
    return getattr(mod, attr)


BACKBONES.add_resolver(_is_timm, _timm_spec, "timm:<model> (any timm model)")
BACKBONES.add_resolver(_is_path, _path_spec, "package.module:factory (a BackboneSpec or model factory)")
