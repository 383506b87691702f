"""Source pre-training, computed once per (backbone, source, settings, seed) and cached.

The checkpoint lives at ``<results_root>/pretrain/<pretrain_id>.pt`` (a plain state dict,
loaded back with ``weights_only=True``) beside a JSON sidecar with its config, the held-out
source AUC and the training history. The sidecar is written last: its presence means done.

The training itself is a recipe: :func:`bench.runner.recipes.train_on_images` (the backbone as a 2-class whole-image
classifier) unless the backbone declares its own in ``BackboneSpec.extra["pretrain"]``, by the name of a
recipe in :mod:`bench.runner.recipes` (patch_cnn: ``"patches-then-images"``, a patch classifier on lesion
patches, then the whole-image network; see :func:`bench.runner.recipes.pretrain_two_stage`).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.analysis.degenerate import WEAK_SOURCE_AUC, weak_source
from bench.backbones import BACKBONES
from bench.backbones.checkpoint import load_checkpoint
from bench.data.splits import finetune_split
from bench.records import load_pretrained_meta, pretrain_paths, write_json_atomic
from bench.runner.datasets import get_dataset
from bench.runner.freshness import dataset_summary
from bench.runner.recipes import pretrain_recipe, train_on_images
from bench.runner.seeds import pretrain_seeds
from bench.train import predict


def ensure_pretrained(cfg: dict, pretrain_id: str, results_root: str | Path, *, log=print,
                      grad_accum: int = 1) -> tuple[dict, dict]:
    """The source-trained state dict for ``cfg`` (training it first if no cached copy exists)."""
    ckpt, meta_path = pretrain_paths(results_root, pretrain_id)
    meta = load_pretrained_meta(results_root, pretrain_id)
    if meta is not None:
        return load_checkpoint(ckpt), {**meta, "reused": True}
    t0 = time.perf_counter()
    spec = BACKBONES.get(cfg["backbone"])
    source = get_dataset(cfg["source"], cfg["source_data"], cfg["image_size"])
    seeds = pretrain_seeds(cfg)
    seed = seeds["split"]
    if cfg["val_fraction"] > 0:
        val_idx, train_idx = finetune_split(source.labels, source.groups, cfg["val_fraction"], seed)
    else:
        train_idx, val_idx = np.arange(len(source)), np.arange(0)
    log(f"pre-training {cfg['backbone']} on {cfg['source']} ({len(train_idx)} images, {cfg['epochs']} epochs, "
        f"held-out {len(val_idx)}) -> {ckpt.name}")
    # A backbone may bring its own recipe (BackboneSpec.extra["pretrain"], e.g. patch_cnn: patches, then images).
    recipe = pretrain_recipe(spec, train_on_images)
    model, history, details = recipe(cfg, source, train_idx, val_idx, seeds=seeds, grad_accum=grad_accum, log=log)
    held_out = None
    if len(val_idx):
        from bench.analysis.metrics import binary_metrics

        scores = predict(model, source.images[val_idx], mean=spec.mean, std=spec.std)
        held_out = binary_metrics(source.labels[val_idx], scores)
        log(f"  held-out source AUC {held_out['auc']:.3f}")
        if weak_source(held_out["auc"]):
            log(f"  warning: held-out source AUC {held_out['auc']:.3f} < {WEAK_SOURCE_AUC:.2f} on {len(val_idx)} images: "
                f"{cfg['backbone']} did not learn {cfg['source']}, so cells that start from it cannot show transfer; "
                "give pre-training more steps (pretrain.epochs, or more source images: data.<source>.n_images). "
                "The report lists such sources under *Weak sources*.")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=ckpt.parent, suffix=".pt.tmp")
    os.close(fd)
    torch.save(state, tmp)
    os.replace(tmp, ckpt)
    seconds = time.perf_counter() - t0
    # images x (whole-image) epochs per second of the whole pre-training: what ``bench plan`` estimates others from
    images_per_s = len(train_idx) * int(cfg["epochs"]) / seconds if seconds > 0 and len(train_idx) else None
    meta = {"status": "ok", "cell_id": pretrain_id, "config": cfg, "held_out": held_out, "history": history,
            "n_train": int(len(train_idx)), "n_held_out": int(len(val_idx)),
            "seconds": seconds, "images_per_s": images_per_s, "seeds": seeds, "grad_accum": grad_accum,
            "data": {"source": dataset_summary(source)}, **details}
    write_json_atomic(meta_path, meta)
    return state, {**meta, "reused": False}
