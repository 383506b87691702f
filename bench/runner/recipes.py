"""Source pre-training recipes, by name: how a backbone learns from a source before it is transferred.

A recipe is what :func:`bench.runner.pretrain.ensure_pretrained` runs to train a backbone on a source. The default
is :func:`train_on_images` (the backbone as a 2-class whole-image classifier). A backbone
that needs another one names it in ``BackboneSpec.extra["pretrain"]``: a name registered here (so the model
module imports no training code, and ``bench.backbones`` never depends on the runner, the suite or
``bench.train``) or, for a plugin, the recipe function itself.

Every recipe has the signature of :func:`train_on_images`::

    recipe(cfg, source, train_idx, val_idx, *, seeds, grad_accum=1, log=print) -> (model, history, details)

Built-in recipes:

- ``"patches-then-images"`` (``patch_cnn``): :func:`pretrain_two_stage`, Shen et al.'s patch classifier, then
  the whole-image classifier.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from bench.backbones import BACKBONES, BackboneSpec, create_backbone
from bench.backbones.patch_cnn import PRETRAIN_RECIPE
from bench.backbones.patch_cnn import SPEC as PATCH_CNN
from bench.batches import default_device, to_batch
from bench.registry import Registry
from bench.suite import PretrainSettings
from bench.train import fit

Recipe = Callable[..., tuple[nn.Module, list[dict], dict]]

RECIPES: Registry[Recipe] = Registry("pre-training recipe")


def pretrain_recipe(spec: BackboneSpec, default: Recipe) -> Recipe:
    """The recipe a backbone declares in ``spec.extra["pretrain"]`` (a registered name, or a function), else
    ``default``. Raises :class:`bench.registry.UnknownNameError` (with the closest names) for an unknown name."""
    declared = spec.extra.get("pretrain")
    if declared is None:
        return default
    if callable(declared):
        return declared
    return RECIPES.get(declared)


@torch.no_grad()
def _class_predictions(model: nn.Module, images: np.ndarray, mean, std, batch_size: int = 256) -> np.ndarray:
    device = default_device()
    model.to(device).eval()
    out = [model(to_batch(images[i:i + batch_size], mean, std, device)).argmax(1).cpu().numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def fit_whole_images(model: nn.Module, cfg: dict, source, train_idx: np.ndarray, *, spec: BackboneSpec, seed: int,
                     grad_accum: int = 1, log=print) -> list[dict]:
    """Train ``model`` as a 2-class classifier of the source's whole images ``train_idx`` with the job's settings
    (:meth:`bench.suite.PretrainSettings.from_resolved`); return its per-epoch history."""
    s = PretrainSettings.from_resolved(cfg)
    return fit(model, source.images[train_idx], source.labels[train_idx], epochs=s.epochs, lr=s.lr,
               batch_size=s.batch_size, weight_decay=s.weight_decay, warmup_epochs=s.warmup_epochs, mean=spec.mean,
               std=spec.std, seed=seed, grad_accum=grad_accum, bn_recalibrate=s.bn_recalibrate,
               on_epoch=lambda e: log(f"  epoch {e['epoch']}/{s.epochs} loss {e['loss']:.3f} ({e['seconds']:.1f}s)"))


def train_on_images(cfg: dict, source, train_idx: np.ndarray, val_idx: np.ndarray, *,
                    seeds: dict, grad_accum: int = 1, log=print) -> tuple[nn.Module, list[dict], dict]:
    """The default pre-training recipe: the backbone as a 2-class classifier of the source's whole images.

    A backbone's own recipe (``BackboneSpec.extra["pretrain"]``: a name registered here, or for a plugin the
    function itself) has this signature: it gets the resolved pre-training config, the source, the training and
    held-out image indices (never train on the latter) and the seeds; it returns the trained 2-class network
    (whose state dict is cached), its per-epoch history and a JSON-able dict merged into the sidecar.
    """
    spec = BACKBONES.get(cfg["backbone"])
    torch.manual_seed(seeds["init"])  # the same init as the random cells of this (backbone, seed)
    model = create_backbone(cfg["backbone"], 2)
    return model, fit_whole_images(model, cfg, source, train_idx, spec=spec, seed=seeds["split"],
                                   grad_accum=grad_accum, log=log), {}


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
    from bench.data.patches import balanced_order, sample_patches  # scipy: only when a patch recipe runs
    from bench.data.preprocess import as_hw

    settings = PretrainSettings.from_resolved(cfg)
    p = settings.patch
    spec = PATCH_CNN
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
                  bn_recalibrate=settings.bn_recalibrate,
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
    h_whole = fit_whole_images(model, cfg, source, train_idx, spec=spec, seed=seed, grad_accum=grad_accum, log=log)
    history = [{"stage": "patch", **e} for e in h_patch] + [{"stage": "whole_image", **e} for e in h_whole]
    details = {"patches": {"classes": list(patches.classes), "counts": patches.counts(), "patch_size": patch_size,
                           "per_epoch": len(order), "balanced": p.balance,
                           "held_out_accuracy": held_out_acc}}
    return model, history, details


RECIPES.register(PRETRAIN_RECIPE, pretrain_two_stage)
