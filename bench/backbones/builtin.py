"""The built-in backbones' specs: every static fact about them, declared without importing torch or timm.

Their stages, channels, strides, input sizes, mean/std and descriptions are written here, and their factories
and weights loaders are named lazily (:class:`~bench.backbones.specs.LazyCallable`), so loading, validating and
planning a suite and ``bench list backbones`` never build a network. The networks themselves live in their
modules, imported (with torch and timm) when one is built:

* :mod:`bench.backbones.timm_models`: ``efficientnet_lite0``, ``resnet18``, ``resnet50``, ``vgg16``, ``inception_v3``;
* :mod:`bench.backbones.morphhr`: ``morphhr``, ``morphhr_2x``;
* :mod:`bench.backbones.patch_cnn`: ``patch_cnn``;
* :mod:`bench.backbones.toy`: ``toy_cnn``.

``tests/test_backbones_contract.py`` checks the declared stages against the real networks, and
``tests/test_lazy_imports.py`` checks :data:`TIMM_PRETRAINED` against timm.
"""
from __future__ import annotations

import dataclasses
import functools

from bench.backbones.specs import TIMM_PRETRAINED  # noqa: F401  (the test reads it here too)
from bench.backbones.specs import (
    STAGE_MAP_REVISION,
    STAGE_NAMES,
    BackboneSpec,
    LazyCallable,
    register_backbone,
)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RESNET_STAGES = ("act1", "layer1", "layer2", "layer3", "layer4")
STRIDES = (2, 4, 8, 16, 32)


# patch_cnn (Shen et al.; bench.backbones.patch_cnn)
PATCH_WIDTH = 16
PATCH_STAGES = ("conv1", "block1", "block2", "block3", "top")
PATCH_CHANNELS = (PATCH_WIDTH, 2 * PATCH_WIDTH, 4 * PATCH_WIDTH, 8 * PATCH_WIDTH, 4 * PATCH_WIDTH)
PATCH_REDUCTIONS = (1, 2, 4, 8, 32)
# The source pre-training recipe, by name: a recipe of bench.runner.recipes (no training code is imported here).
PRETRAIN_RECIPE = "patches-then-images"
IMAGENET_NA = ("patch_cnn (Shen et al.) is pre-trained from lesion patches of a source with masks, not on ImageNet; "
               "Bulathsinghalage & Liu's Table 1 has no ImageNet row for the patch-based CNN")

# toy_cnn (bench.backbones.toy)
TOY_CHANNELS = (8, 8, 16, 16, 32)

_SPECS: list[BackboneSpec] = []


def _add(spec: BackboneSpec) -> BackboneSpec:
    spec = register_backbone(spec)
    _SPECS.append(spec)
    return spec


def bind(module: str) -> None:
    """Point the built-in specs' lazy callables into ``module`` at its functions (``functools.partial`` where
    they carry arguments). Each network module calls it once it is imported, so that afterwards, e.g.,
    ``BACKBONES.get("morphhr").adapt_weights is morph_resnet18_state``, as when the specs were made there."""
    for spec in _SPECS:
        for f in ("create", "create_slim", "imagenet", "adapt_weights"):
            value = getattr(spec, f)
            if isinstance(value, LazyCallable) and value.target.partition(":")[0] == module:
                fn = value.resolve()
                # the registered spec itself is updated (frozen: as dataclasses do in __post_init__)
                object.__setattr__(spec, f, functools.partial(fn, *value.args) if value.args else fn)


# --------------------------------------------------------------------------- timm architectures

def _register_timm(name: str, arch: str, *, stages, channels, head, mean=IMAGENET_MEAN, std=IMAGENET_STD, imagenet=None,
          description="", min_size=32, input_size=224, slim=False, reductions=STRIDES, extra=None) -> None:
    _add(BackboneSpec(
        name=name, create=LazyCallable("bench.backbones.timm_models:timm_factory", arch), stages=stages, channels=channels,
        reductions=reductions, mean=mean, std=std, min_size=min_size, input_size=input_size, head=head,
        imagenet=imagenet, timm_name=arch,
        create_slim=LazyCallable("bench.backbones.timm_models:resnet_slim", arch) if slim else None,
        description=description or f"timm {arch}", extra=extra or {}))


_register_timm("efficientnet_lite0", "tf_efficientnet_lite0", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
      stages=("blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"), channels=(16, 24, 40, 112, 320),
      head="classifier", imagenet=LazyCallable("bench.backbones.timm_models:_efficientnet_lite0_imagenet"),
      description="timm tf_efficientnet_lite0; real ImageNet weights built in (offline)")
_register_timm("resnet18", "resnet18", stages=RESNET_STAGES, channels=(64, 64, 128, 256, 512), head="fc", slim=True)
_register_timm("resnet50", "resnet50", stages=RESNET_STAGES, channels=(64, 256, 512, 1024, 2048), head="fc", slim=True)
# VGG's five conv blocks are conv1 .. block4 (until 2026-12-04 conv1 held blocks 1-2 and block4 was the last,
# parameter-free max-pool, so "train from block4" trained no convolution; cells depending on it get new ids).
_register_timm("vgg16", "vgg16_bn", stages=("features.5", "features.12", "features.22", "features.32", "features.42"),
      channels=(64, 128, 256, 512, 512), reductions=(1, 2, 4, 8, 16), head="head.fc",
      description="timm vgg16_bn", extra={STAGE_MAP_REVISION: 2})
_register_timm("inception_v3", "inception_v3", stages=("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e", "Mixed_7c"),
      channels=(64, 192, 288, 768, 2048), head="fc", min_size=75, input_size=299)

# --------------------------------------------------------------------------- morphhr (Wei et al.)

MORPHHR = _add(BackboneSpec(
    name="morphhr", create=LazyCallable("bench.backbones.morphhr:create_morphhr"), stages=RESNET_STAGES,
    channels=(64, 64, 128, 256, 512), reductions=tuple(2 * r for r in STRIDES), mean=IMAGENET_MEAN,
    std=IMAGENET_STD, min_size=32, input_size=448, head="fc", weights_from="resnet18",
    adapt_weights=LazyCallable("bench.backbones.morphhr:morph_resnet18_state"),
    create_slim=LazyCallable("bench.backbones.morphhr:_slim"),
    description="ResNet-18 with conv1 morphed to 5x5 -> 2x2 max-pool -> 3x3 (Wei et al., MorphHR): 2x input "
                "resolution; imagenet = resnet18's weights morphed"))
_add(dataclasses.replace(
    MORPHHR, name="morphhr_2x", adapt_weights=LazyCallable("bench.backbones.morphhr:morph_resnet18_state_2x"),
    description="morphhr (same network) whose imagenet weights = resnet18's morphed with the 2x-aware tap "
                "assignment instead of the paper's: preserves more of resnet18's function at 2x input"))

# --------------------------------------------------------------------------- patch_cnn (Shen et al.)

_add(BackboneSpec(
    name="patch_cnn", create=LazyCallable("bench.backbones.patch_cnn:PatchCNN"), stages=PATCH_STAGES,
    channels=PATCH_CHANNELS, reductions=PATCH_REDUCTIONS, min_size=16, input_size=64, head="fc",
    description="Shen et al. all-convolutional whole-image CNN (small ResNet patch trunk + 2 VGG top blocks); "
                "source pre-training: patch classifier on lesion/background patches, then whole images",
    extra={"pretrain": PRETRAIN_RECIPE, "pretrain_settings": "patch",
           "unsupported_sources": {"imagenet": IMAGENET_NA}}))

# --------------------------------------------------------------------------- toy_cnn

_add(BackboneSpec(name="toy_cnn", create=LazyCallable("bench.backbones.toy:_create"),
                  stages=STAGE_NAMES, channels=TOY_CHANNELS, reductions=(2, 4, 8, 16, 32), head="fc",
                  create_slim=LazyCallable("bench.backbones.toy:_slim"), min_size=32, input_size=64,
                  description="tiny 5-stage CNN for tests (no ImageNet weights)"))
