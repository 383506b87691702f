"""``patch_cnn``: Shen et al.'s all-convolutional whole-image classifier, pre-trained from patches.

Shen et al. (2019, "Deep Learning to Improve Breast Cancer Detection on Screening Mammography") first
train a patch classifier on patches around annotated lesions and from background (their S10 set), then
drop its pooling and head, run its convolutional trunk over the whole image, add two convolutional "top"
blocks, global average pooling and a 2-class head, and train that on whole images. Bulathsinghalage & Liu
use it as their patch-based CNN; their Table 1 has no ImageNet row for it.

Here the sizes scale down to CPU benchmarks (Shen: ResNet50/VGG16 trunks, 224 px patches, 1152 x 896
images). The trunk is a small ResNet: a 3x3 stem (``conv1``) and three residual basic blocks of timm
(``block1`` .. ``block3``, stride 2 each, so a 16 px patch gives a 2 x 2 map and a 64 px image an 8 x 8
map). The top layers (``top``, the contract's ``block4``) are two VGG-style blocks with batch norm
(conv 3x3 + max-pool 2), narrowing the depth as in Shen's best "256x1, 128x1" top. The whole-image
network's architecture does not depend on the patch size, so a checkpoint fits every image size.

Source pre-training has two stages (the recipe ``"patches-then-images"`` that ``BackboneSpec.extra["pretrain"]``
names: :func:`bench.runner.recipes.pretrain_two_stage`, run by :mod:`bench.runner.pretrain`):

1. patch classifier: the trunk + global average pooling + a 3- or 5-class head, trained on patches
   sampled from the source's training images (:func:`bench.data.patches.sample_patches`; classes
   balanced by oversampling, as Shen balances them by sample weights);
2. whole-image classifier: this network, its trunk initialised by stage 1, trained on whole images
   with the suite's ``pretrain`` settings (all layers at once; Shen first trains only the top).

Only the whole-image network is saved; the patch head is discarded, as in Shen's conversion.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.backbones import builtin
from bench.backbones.specs import BACKBONES
from bench.backbones.builtin import IMAGENET_NA, PRETRAIN_RECIPE  # noqa: F401  (their names)
from bench.backbones.builtin import PATCH_CHANNELS as CHANNELS  # noqa: F401
from bench.backbones.builtin import PATCH_REDUCTIONS as REDUCTIONS  # noqa: F401
from bench.backbones.builtin import PATCH_STAGES as STAGES  # noqa: F401
from bench.backbones.builtin import PATCH_WIDTH as WIDTH

# The spec (stages, channels, the pre-training recipe's name, ...) is declared in bench.backbones.builtin.


def _res_block(cin: int, cout: int) -> nn.Module:
    """A timm residual basic block that halves the map (1x1 strided projection on the shortcut)."""
    from timm.models.resnet import BasicBlock  # timm on first use: loading a suite or planning needs none

    down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
    return BasicBlock(cin, cout, stride=2, downsample=down)


def _vgg_block(cin: int, cout: int) -> nn.Sequential:
    """Shen's VGG-style top block with batch norm: conv 3x3 + BN + ReLU, then 2x2 max-pool (never below 1 px)."""
    from timm.layers import ConvNormAct

    return nn.Sequential(ConvNormAct(cin, cout, 3), nn.MaxPool2d(2, ceil_mode=True))


class PatchCNN(nn.Module):
    """Whole-image classifier: patch trunk (conv1, block1-3) + two top blocks + GAP + linear head.

    Args:
        num_classes: whole-image classes (2: benign/normal vs malignant).
        in_chans: input channels (3: gray repeated, the harness default).
        width: channels of the stem; the trunk doubles them per block (16 -> 32, 64, 128).
    """

    def __init__(self, num_classes: int = 2, *, in_chans: int = 3, width: int = WIDTH):
        from timm.layers import ConvNormAct

        super().__init__()
        w = width
        self.conv1 = ConvNormAct(in_chans, w, 3)
        self.block1, self.block2, self.block3 = _res_block(w, 2 * w), _res_block(2 * w, 4 * w), _res_block(4 * w, 8 * w)
        self.trunk_channels = 8 * w
        self.top = nn.Sequential(_vgg_block(8 * w, 8 * w), _vgg_block(8 * w, 4 * w))
        self.num_features = 4 * w
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The patch classifier's convolutional trunk on any input size (a spatial feature map)."""
        return self.block3(self.block2(self.block1(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.top(self.forward_trunk(x))).flatten(1))

    def patch_classifier(self, num_classes: int) -> PatchClassifier:
        """A patch classifier that shares (not copies) this network's trunk, with its own N-class head."""
        return PatchClassifier(self, num_classes)


class PatchClassifier(nn.Module):
    """Trunk of a :class:`PatchCNN` (shared modules) + global average pooling + an N-class head."""

    def __init__(self, whole: PatchCNN, num_classes: int):
        super().__init__()
        self.trunk = nn.Sequential(whole.conv1, whole.block1, whole.block2, whole.block3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(whole.trunk_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.trunk(x)).flatten(1))


builtin.bind(__name__)
SPEC = BACKBONES.get("patch_cnn")
