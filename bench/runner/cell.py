"""One cell: build the network from its source, fine-tune on a share of the target, evaluate the rest."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from bench.analysis.degenerate import kept_epoch, record_flags
from bench.analysis.metrics import accuracy, binary_metrics, overfit_ratio
from bench.backbones import BACKBONES, create_backbone, create_hybrid, transfer_weights
from bench.backbones.specs import imagenet_state_dict
from bench.backbones.transfer import PartialWeightsError
from bench.data.splits import finetune_split
from bench.records import SCHEMA
from bench.runner.datasets import get_dataset
from bench.runner.freshness import dataset_summary
from bench.runner.pretrain import ensure_pretrained, pretrain_paths
from bench.runner.seeds import cell_seeds
from bench.suite import Cell, content_hash
from bench.suite.schema import EarlyStoppingSettings
from bench.train import fit, predict, selected_epoch
from bench.train_modes import finetune_stages, replace_head


def base_record(suite: str, cell: Cell) -> dict:
    return {"schema": SCHEMA, "suite": suite, "cell_id": cell.cell_id, "status": None, "reason": None,
            "cell": cell.axes, "config": cell.config}


def initial_weights(cell: Cell, model: torch.nn.Module, results_root: Path, log=print) -> dict:
    """Load the cell's source into ``model`` (in place); return what happened, for the record."""
    cfg = cell.settings
    if cell.source == "random":
        return {"source": "random"}
    if cell.source == "imagenet":
        state, where = imagenet_state_dict(cell.backbone, cfg.weights, with_origin=True)
        info = {"source": "imagenet"}
    else:
        state, meta = ensure_pretrained(cfg.pretrain, cell.pretrain_id, results_root, log=log)
        where = str(pretrain_paths(results_root, cell.pretrain_id)[0])
        info = {"source": cell.source, "pretrain_id": cell.pretrain_id, "pretrain_reused": meta["reused"],
                "pretrain_held_out_auc": (meta.get("held_out") or {}).get("auc"),
                "pretrain_held_out_n": meta.get("n_held_out"),
                "source_data": (meta.get("data") or {}).get("source")}
    try:
        moved = transfer_weights(model, state, mode=cell.transfer, hybrid_stage=cfg.hybrid_stage,
                                 spec=BACKBONES.get(cell.backbone),
                                 accept_partial=cfg.accept_partial_weights)
    except PartialWeightsError as exc:
        raise PartialWeightsError(f"{cell.source} weights for {cell.backbone} ({where}): {exc}") from None
    return {**info, "transfer": moved}


def create_cell_model(cell: Cell) -> torch.nn.Module:
    """The cell's randomly initialised network: the backbone, or for hybrid cells its slim variant
    (pretrained part up to ``hybrid_stage``, later stages at ``hybrid_width`` x their channels)."""
    cfg = cell.settings
    if cell.transfer == "hybrid":
        return create_hybrid(cell.backbone, 2, stage=cfg.hybrid_stage, width=cfg.hybrid_width)
    return create_backbone(cell.backbone, 2)


def evaluation_metrics(labels: np.ndarray, scores: np.ndarray, train_acc: float | None) -> dict:
    """The per-cell metrics from evaluation labels and scores (and the fine-tune accuracy, if any)."""
    m = binary_metrics(labels, scores)
    # balanced_accuracy = (1 + TPR - FPR) / 2: what Falconi et al. report as "AUC" (their eq. 13)
    out = {k: m[k] for k in ("auc", "accuracy", "balanced_accuracy", "f1", "sensitivity", "specificity")}
    out.update(train_acc=train_acc, val_acc=m["accuracy"], beta=overfit_ratio(train_acc, m["accuracy"]))
    return out


def recompute_metrics(record: dict) -> dict:
    """What :func:`evaluation_metrics` gives on a stored record's own predictions and train_acc."""
    p = record["predictions"]
    return evaluation_metrics(np.asarray(p["label"]), np.asarray(p["score"]), record["metrics"].get("train_acc"))


def validation_split(labels: np.ndarray, groups: np.ndarray, ft_idx: np.ndarray,
                     early_stopping: EarlyStoppingSettings | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: the fine-tune part minus ``val_fraction`` of its patients held out for early
    stopping (stratified, grouped by patient); no validation part without early stopping."""
    if not early_stopping:
        return ft_idx, np.arange(0)
    try:
        val_rel, train_rel = finetune_split(labels[ft_idx], groups[ft_idx], early_stopping.val_fraction, seed)
    except ValueError as exc:
        raise ValueError(f"finetune.early_stopping.val_fraction {early_stopping.val_fraction}: cannot hold out a "
                         f"validation part of the {len(ft_idx)} fine-tune images: {exc}") from None
    return ft_idx[train_rel], ft_idx[val_rel]


def finetune(cell: Cell, model: torch.nn.Module, target, ft_idx: np.ndarray, seeds: dict, *,
             grad_accum: int = 1) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Fine-tune ``model`` in place on the images ``ft_idx`` of ``target`` as the cell's config says.

    Shared by :func:`run_cell` and the SVCCA protocol (:mod:`bench.runner.svcca`), so both fine-tune alike.
    Returns ``(history, train_idx, val_idx)``: the images trained on and those held out for early stopping.
    """
    spec = BACKBONES.get(cell.backbone)
    ft = cell.settings.finetune
    stopping = ft.early_stopping
    train_idx, val_idx = validation_split(target.labels, target.groups, ft_idx, stopping, seeds["split"])
    if ft.head is not None:  # a new classifier (Falconi's TL/FT head), seeded like the rest of the init
        torch.manual_seed(seeds["init"])
        replace_head(model, spec=spec, **ft.head.model_dump())
    history = fit(model, target.images[train_idx], target.labels[train_idx], schedule=finetune_stages(ft),
                  backbone=spec, batch_size=ft.batch_size, bn_train=ft.bn_train, bn_recalibrate=ft.bn_recalibrate,
                  augment=ft.augment, class_weights=ft.class_weights, val_images=target.images[val_idx],
                  val_labels=target.labels[val_idx], select_on=stopping.metric if stopping else "loss",
                  patience=stopping.patience if stopping else None, mean=spec.mean, std=spec.std,
                  seed=seeds["split"], grad_accum=grad_accum)
    return history, train_idx, val_idx


def run_cell(cell: Cell, *, suite: str, results_root: Path, log=print, grad_accum: int = 1) -> dict:
    """Compute one cell and return its record (status ok or na; exceptions propagate to the runner).

    ``grad_accum`` > 1 splits each fine-tuning batch into micro-batches (the runner's out-of-memory retry).
    """
    rec = base_record(suite, cell)
    if cell.na_reason:
        return {**rec, "status": "na", "reason": cell.na_reason, "metrics": {}, "predictions": None, "history": []}
    t0 = time.perf_counter()
    cfg = cell.settings
    spec = BACKBONES.get(cell.backbone)
    target = get_dataset(cell.target, cfg.target_data, cfg.image_size)
    seeds = cell_seeds(cell.axes)
    torch.manual_seed(seeds["init"])  # same init for every cell of this seed and backbone: paired comparisons
    model = create_cell_model(cell)
    weights = initial_weights(cell, model, results_root, log=log)
    t_ready = time.perf_counter()

    history, train_acc, train_idx, val_idx = [], None, np.arange(0), np.arange(0)
    tta = cfg.tta
    if cell.ft_fraction > 0:
        ft_idx, ev_idx = finetune_split(target.labels, target.groups, cell.ft_fraction, seeds["split"])
        history, train_idx, val_idx = finetune(cell, model, target, ft_idx, seeds, grad_accum=grad_accum)
        # train_acc: the final model on the images it trained on, in eval mode (Falconi's beta numerator)
        train_acc = accuracy(target.labels[train_idx], predict(model, target.images[train_idx], mean=spec.mean,
                                                               std=spec.std, tta=tta))
    else:  # "No FT": the source model as it is, on the whole target
        ft_idx, ev_idx = np.arange(0), np.arange(len(target))
    t_trained = time.perf_counter()

    scores = predict(model, target.images[ev_idx], mean=spec.mean, std=spec.std, tta=tta)
    labels = target.labels[ev_idx]
    metrics = evaluation_metrics(labels, scores, train_acc)
    metrics.update(n_finetune=int(len(ft_idx)), n_eval=int(len(ev_idx)),
                   n_finetune_patients=int(len(set(target.groups[ft_idx]))))
    if len(val_idx):  # early stopping: the epoch restored, chosen on the held-out part of the fine-tune set
        metrics.update(selected_epoch=selected_epoch(history), n_val=len(val_idx))
    plain = None
    if tta != "none":  # both: Shen's Table 4 is per-image AUC without augmented prediction, Tables 2-3 with (A-AUC)
        plain = predict(model, target.images[ev_idx], mean=spec.mean, std=spec.std)
        metrics.update(auc_tta=metrics["auc"], auc_plain=binary_metrics(labels, plain)["auc"])
    ft_ids = target.image_ids[ft_idx].tolist()
    eval_ids = target.image_ids[ev_idx].tolist()
    split = {"hash": content_hash({"target": cell.target, "finetune": ft_ids, "eval": eval_ids}),
             "finetune_image_ids": ft_ids,
             "finetune_patient_ids": None if target.patient_ids is None else target.patient_ids[ft_idx].tolist()}
    if len(val_idx):
        split["validation_image_ids"] = target.image_ids[val_idx].tolist()
    preds = {"image_id": target.image_ids[ev_idx].tolist(),
             "patient_id": None if target.patient_ids is None else target.patient_ids[ev_idx].tolist(),
             # the split/bootstrap group: patient, else near-duplicate cluster, else the image itself
             "group_id": target.groups[ev_idx].tolist(),
             "label": labels.astype(int).tolist(), "score": scores.astype(float).tolist()}
    if plain is not None:
        preds["score_plain"] = plain.astype(float).tolist()
    kept = kept_epoch(history)
    if kept is not None:
        metrics["running_train_acc"] = kept["running_train_acc"]
    t_end = time.perf_counter()
    data = {"target": dataset_summary(target)}
    if weights.get("source_data"):
        data["source"] = weights.pop("source_data")
    out = {**rec, "status": "ok", "metrics": metrics, "predictions": preds, "history": history,
           "split": split, "data": data, "weights": weights, "seeds": seeds, "grad_accum": grad_accum,
           "bn_recalibration": bn_recalibration(cell),
           "timing": {"setup_s": t_ready - t0, "finetune_s": t_trained - t_ready, "eval_s": t_end - t_trained,
                      "total_s": t_end - t0, **throughput(len(train_idx) * len(history),
                                                          t_trained - t_ready, len(ev_idx), t_end - t_trained)}}
    diagnostics = record_flags(out)
    return {**out, "flags": diagnostics["flags"] if diagnostics else [], "diagnostics": diagnostics}


def throughput(trained: int, finetune_s: float, n_eval: int, eval_s: float) -> dict:
    """``timing.train_images_per_s`` (images x epochs trained per second of the fine-tuning phase; None without
    fine-tuning) and ``timing.eval_images_per_s`` (evaluation images scored per second of the evaluation phase):
    what ``bench plan`` estimates cells of other targets and schedules from (:func:`bench.runner.plan.estimate_seconds`)."""
    return {"train_images_per_s": trained / finetune_s if trained and finetune_s > 0 else None,
            "eval_images_per_s": n_eval / eval_s if n_eval and eval_s > 0 else None}


def bn_recalibration(cell: Cell) -> dict:
    """Whether the cell's networks had their BatchNorm statistics re-estimated for their final weights: after
    fine-tuning (None without) and after source pre-training (None for random and ImageNet sources)."""
    cfg = cell.settings
    return {"finetune": cfg.finetune.bn_recalibrate if cfg.finetune is not None else None,
            "pretrain": bool(cfg.pretrain.get("bn_recalibrate")) if cfg.pretrain is not None else None}
