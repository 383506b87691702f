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

Source pre-training (declared through ``BackboneSpec.extra["pretrain"]``, run by
:mod:`bench.runner.pretrain`) has two stages:

1. patch classifier: the trunk + global average pooling + a 3- or 5-class head, trained on patches
   sampled from the source's training images (:func:`bench.data.patches.sample_patches`; classes
   balanced by oversampling, as Shen balances them by sample weights);
2. whole-image classifier: this network, its trunk initialised by stage 1, trained on whole images
   with the suite's ``pretrain`` settings (all layers at once; Shen first trains only the top).

Only the whole-image network is saved; the patch head is discarded, as in Shen's conversion.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench.backbones._base import BackboneSpec, register_backbone

WIDTH = 16
STAGES = ("conv1", "block1", "block2", "block3", "top")
CHANNELS = (WIDTH, 2 * WIDTH, 4 * WIDTH, 8 * WIDTH, 4 * WIDTH)
REDUCTIONS = (1, 2, 4, 8, 32)
IMAGENET_NA = ("patch_cnn (Shen et al.) is pre-trained from lesion patches of a source with masks, not on ImageNet; "
               "Bulathsinghalage & Liu's Table 1 has no ImageNet row for the patch-based CNN")


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


@torch.no_grad()
def _class_predictions(model: nn.Module, images: np.ndarray, mean, std, batch_size: int = 256) -> np.ndarray:
    from bench.train import default_device, to_batch

    device = default_device()
    model.to(device).eval()
    out = [model(to_batch(images[i:i + batch_size], mean, std, device)).argmax(1).cpu().numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def pretrain_two_stage(cfg: dict, source, train_idx: np.ndarray, val_idx: np.ndarray, *, seeds: dict,
                       grad_accum: int = 1, log=print) -> tuple[nn.Module, list[dict], dict]:
    """Shen et al.'s source pre-training: patch classifier, then whole-image classifier.

    Args:
        cfg: the resolved pre-training config of a suite (``bench.suite``): whole-image settings at the top
            level, the patch stage under ``cfg["patch"]``.
        source: the source :class:`~bench.data.ArrayDataset` (must have lesion masks).
        train_idx, val_idx: source images to train on and held out (patches come from ``train_idx`` only;
            the held-out patch accuracy is reported, never used to select anything).
        seeds: ``{"init": ..., "split": ...}`` (:func:`bench.runner.seeds.pretrain_seeds`): the network's
            initialisation, and the patch sampling and batch order.
        grad_accum: passed to :func:`bench.train.fit` (both stages).

    Returns:
        ``(model, history, details)``: the trained whole-image network, the per-epoch history of both
        stages (entries tagged ``"stage": "patch" | "whole_image"``) and the patch set's description.

    Raises:
        bench.data.patches.MissingMasksError: the source has no lesion masks.
    """
    from bench.data.patches import balanced_order, sample_patches
    from bench.suite import PatchPretrainSettings
    from bench.train import fit

    p = PatchPretrainSettings(**cfg.get("patch", {}))
    from bench.data.preprocess import as_hw

    spec = SPEC
    seed = seeds["split"]
    patch_size = p.patch_size or max(4, min(as_hw(cfg["image_size"])) // 4)
    sampling = {"patch_size": patch_size, "per_lesion": p.per_lesion, "background_per_image": p.background_per_image,
                "min_overlap": p.min_overlap, "seed": seed}
    patches = sample_patches(source, train_idx, **sampling)
    if len(np.unique(patches.labels)) < 2:
        raise ValueError(f"source {source.name!r}: the patch set has one class only ({patches.counts()}); "
                         "patch_cnn needs lesion images and background tissue in its source")
    order = balanced_order(patches.labels, seed) if p.balance else np.arange(len(patches))
    torch.manual_seed(seeds["init"])  # the same init as the random cells of this (backbone, seed)
    model = spec.create(2)
    clf = model.patch_classifier(len(patches.classes))
    log(f"pre-training patch_cnn stage 1 (patch classifier) on {source.name}: {len(patches)} patches of "
        f"{patch_size} px from {len(train_idx)} images, {patches.counts()}, {len(order)} per epoch, "
        f"{p.epochs} epochs")
    h_patch = fit(clf, patches.images[order], patches.labels[order], epochs=p.epochs, lr=p.lr,
                  batch_size=p.batch_size, weight_decay=p.weight_decay, warmup_epochs=p.warmup_epochs,
                  mean=spec.mean, std=spec.std, seed=seed, grad_accum=grad_accum,
                  bn_recalibrate=cfg.get("bn_recalibrate", False),
                  on_epoch=lambda e: log(f"  patch epoch {e['epoch']}/{p.epochs} loss {e['loss']:.3f} "
                                         f"({e['seconds']:.1f}s)"))
    held_out_acc = None
    if len(val_idx):
        held = sample_patches(source, val_idx, **sampling, n_classes=len(patches.classes))
        if len(held):
            held_out_acc = float((_class_predictions(clf, held.images, spec.mean, spec.std) == held.labels).mean())
            log(f"  held-out patch accuracy {held_out_acc:.3f} ({len(held)} patches)")
    log(f"pre-training patch_cnn stage 2 (whole image) on {source.name}: {len(train_idx)} images, "
        f"{cfg['epochs']} epochs")
    h_whole = fit(model, source.images[train_idx], source.labels[train_idx], epochs=cfg["epochs"], lr=cfg["lr"],
                  batch_size=cfg["batch_size"], weight_decay=cfg["weight_decay"],
                  warmup_epochs=cfg["warmup_epochs"], mean=spec.mean, std=spec.std, seed=seed, grad_accum=grad_accum,
                  bn_recalibrate=cfg.get("bn_recalibrate", False), on_epoch=lambda e: log(f"  epoch {e['epoch']}/{cfg['epochs']} loss {e['loss']:.3f} "
                                         f"({e['seconds']:.1f}s)"))
    history = [{"stage": "patch", **e} for e in h_patch] + [{"stage": "whole_image", **e} for e in h_whole]
    details = {"patches": {"classes": list(patches.classes), "counts": patches.counts(), "patch_size": patch_size,
                           "per_epoch": len(order), "balanced": p.balance,
                           "held_out_accuracy": held_out_acc}}
    return model, history, details


SPEC = register_backbone(BackboneSpec(
    name="patch_cnn", create=PatchCNN, stages=STAGES, channels=CHANNELS, reductions=REDUCTIONS, min_size=16,
    input_size=64, head="fc",
    description="Shen et al. all-convolutional whole-image CNN (small ResNet patch trunk + 2 VGG top blocks); "
                "source pre-training: patch classifier on lesion/background patches, then whole images",
    extra={"pretrain": pretrain_two_stage, "pretrain_settings": "patch",
           "unsupported_sources": {"imagenet": IMAGENET_NA}}))
