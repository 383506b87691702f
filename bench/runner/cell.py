"""One cell: build the network from its source, fine-tune on a share of the target, evaluate the rest."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from bench.analysis.metrics import accuracy, binary_metrics, overfit_ratio
from bench.backbones import BACKBONES, create_backbone, transfer_weights
from bench.backbones._base import imagenet_state_dict
from bench.data.splits import finetune_split
from bench.records import SCHEMA
from bench.runner.datasets import get_dataset
from bench.runner.pretrain import ensure_pretrained
from bench.suite import Cell, content_hash
from bench.train import fit, predict


def base_record(suite: str, cell: Cell) -> dict:
    return {"schema": SCHEMA, "suite": suite, "cell_id": cell.cell_id, "status": None, "reason": None,
            "cell": cell.axes, "config": cell.config}


def initial_weights(cell: Cell, model: torch.nn.Module, results_root: Path, log=print) -> dict:
    """Load the cell's source into ``model`` (in place); return what happened, for the record."""
    cfg = cell.config
    if cell.source == "random":
        return {"source": "random"}
    if cell.source == "imagenet":
        state = imagenet_state_dict(cell.backbone, cfg.get("weights"))
        info = {"source": "imagenet"}
    else:
        state, meta = ensure_pretrained(cfg["pretrain"], cell.pretrain_id, results_root, log=log)
        info = {"source": cell.source, "pretrain_id": cell.pretrain_id, "pretrain_reused": meta["reused"],
                "pretrain_held_out_auc": (meta.get("held_out") or {}).get("auc")}
    spec = BACKBONES.get(cell.backbone)
    moved = transfer_weights(model, state, mode=cell.transfer, hybrid_stage=cfg.get("hybrid_stage", "block2"),
                             stages=spec.stages)
    return {**info, "transfer": moved}


def evaluation_metrics(labels: np.ndarray, scores: np.ndarray, train_acc: float | None) -> dict:
    """The per-cell metrics from evaluation labels and scores (and the fine-tune accuracy, if any)."""
    m = binary_metrics(labels, scores)
    out = {k: m[k] for k in ("auc", "accuracy", "f1", "sensitivity", "specificity")}
    out.update(train_acc=train_acc, val_acc=m["accuracy"], beta=overfit_ratio(train_acc, m["accuracy"]))
    return out


def recompute_metrics(record: dict) -> dict:
    """What :func:`evaluation_metrics` gives on a stored record's own predictions and train_acc."""
    p = record["predictions"]
    return evaluation_metrics(np.asarray(p["label"]), np.asarray(p["score"]), record["metrics"].get("train_acc"))


def run_cell(cell: Cell, *, suite: str, results_root: Path, log=print) -> dict:
    """Compute one cell and return its record (status ok or na; exceptions propagate to the runner)."""
    rec = base_record(suite, cell)
    if cell.na_reason:
        return {**rec, "status": "na", "reason": cell.na_reason, "metrics": {}, "predictions": None, "history": []}
    t0 = time.perf_counter()
    cfg = cell.config
    spec = BACKBONES.get(cell.backbone)
    target = get_dataset(cell.target, cfg["target_data"], cfg["image_size"])
    torch.manual_seed(cell.seed)  # same init for every cell of this seed and backbone: paired comparisons
    model = create_backbone(cell.backbone, 2)
    weights = initial_weights(cell, model, results_root, log=log)
    t_ready = time.perf_counter()

    history, train_acc = [], None
    if cell.ft_fraction > 0:
        ft = cfg["finetune"]
        ft_idx, ev_idx = finetune_split(target.labels, target.groups, cell.ft_fraction, cell.seed)
        history = fit(model, target.images[ft_idx], target.labels[ft_idx], epochs=ft["epochs"], lr=ft["lr"],
                      batch_size=ft["batch_size"], weight_decay=ft["weight_decay"],
                      warmup_epochs=ft["warmup_epochs"], bn_train=ft["bn_train"], mean=spec.mean, std=spec.std,
                      seed=cell.seed)
        # train_acc: the final model on its own fine-tune images, in eval mode (Falconi's beta numerator)
        train_acc = accuracy(target.labels[ft_idx], predict(model, target.images[ft_idx], mean=spec.mean,
                                                            std=spec.std))
    else:  # "No FT": the source model as it is, on the whole target
        ft_idx, ev_idx = np.arange(0), np.arange(len(target))
    t_trained = time.perf_counter()

    scores = predict(model, target.images[ev_idx], mean=spec.mean, std=spec.std)
    labels = target.labels[ev_idx]
    metrics = evaluation_metrics(labels, scores, train_acc)
    metrics.update(n_finetune=int(len(ft_idx)), n_eval=int(len(ev_idx)),
                   n_finetune_patients=int(len(set(target.groups[ft_idx]))))
    ft_ids = target.image_ids[ft_idx].tolist()
    eval_ids = target.image_ids[ev_idx].tolist()
    split = {"hash": content_hash({"target": cell.target, "finetune": ft_ids, "eval": eval_ids}),
             "finetune_image_ids": ft_ids,
             "finetune_patient_ids": None if target.patient_ids is None else target.patient_ids[ft_idx].tolist()}
    preds = {"image_id": target.image_ids[ev_idx].tolist(),
             "patient_id": None if target.patient_ids is None else target.patient_ids[ev_idx].tolist(),
             "label": labels.astype(int).tolist(), "score": scores.astype(float).tolist()}
    t_end = time.perf_counter()
    return {**rec, "status": "ok", "metrics": metrics, "predictions": preds, "history": history,
            "split": split, "weights": weights,
            "timing": {"setup_s": t_ready - t0, "finetune_s": t_trained - t_ready, "eval_s": t_end - t_trained,
                       "total_s": t_end - t0}}
