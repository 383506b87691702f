"""Training and prediction: one readable loop, no file I/O.

Images arrive as ``(N, H, W)`` uint8 arrays (the dataset contract); they are turned into
normalised 3-channel float batches here, on the fly, so a whole target fits in memory as bytes.
Training follows a *schedule*: a list of stages (:class:`bench.suite.schedule.Stage`), each naming what
is trainable, its learning rate, weight decay and epochs. Within a stage the learning rate warms up
linearly (optional) and then decays with a cosine to zero (or stays constant): a constant rate
collapsed source pre-training and damaged pretrained models during small fine-tunes.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from bench.augment import augment_batch, tta_views
from bench.batches import amp_dtype, default_device, gather, normalize, place, resident, to_device
from bench.batches import to_batch, to_float  # noqa: F401 - re-exported (bench.runner.svcca imports to_batch here)
from bench.batchnorm import recalibrate, training_batchnorm_layers
from bench.train_modes import (
    Stage,
    apply_trainable,
    balanced_class_weights,
    set_train_mode,
    trainable_parameters,
)

if TYPE_CHECKING:
    from bench.backbones import BackboneSpec


class DivergedError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the epoch, step and loss value."""


# LambdaLR warns when it steps before the optimiser; float16's GradScaler skips the optimiser on purpose.
_SKIPPED_STEP_WARNING = r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`"


def lr_factor(step: int, total: int, warmup: int, decay: str = "cosine") -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 0 at ``total`` steps (or constant)."""
    if step < warmup:
        return (step + 1) / warmup
    if decay == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_batchnorm_train(model: nn.Module, train: bool) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(train)


def margin_loss(margins: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Cross-entropy of 2-class logits from their margins ``logit[1] - logit[0]`` (optionally class-weighted)."""
    m = torch.as_tensor(margins, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)
    ce = F.softplus(torch.where(y == 1, -m, m))
    if weights is not None:
        ce = ce * torch.as_tensor(weights, dtype=torch.float64)[torch.as_tensor(labels, dtype=torch.long)]
    return float(ce.mean())


def fit(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, batch_size: int, epochs: int | None = None,
        lr: float | None = None, weight_decay: float = 1e-4, warmup_epochs: int = 0,
        schedule: Sequence[Stage] | None = None, backbone: BackboneSpec | None = None,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), seed: int = 0, bn_train: bool = True,
        bn_recalibrate: bool = True, augment: bool | str = True, class_weights: str | None = None,
        grad_accum: int = 1,
        val_images: np.ndarray | None = None, val_labels: np.ndarray | None = None, select_on: str = "loss",
        patience: int | None = None, device: torch.device | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``model`` in place through a schedule of stages; return the per-epoch history.

    Without validation images no epoch is selected: the model after the last epoch is the result
    (selecting on the evaluation set would inflate every number). With ``val_images`` (held out from
    the fine-tune part by the caller), the epoch with the best validation ``select_on`` ("loss" or
    "auc") is restored at the end and marked ``"selected": True`` in the history.

    Args:
        epochs, lr, weight_decay, warmup_epochs: a one-stage schedule training everything; ignored
            when ``schedule`` is given.
        schedule: the stages, trained in order with a fresh AdamW optimiser each (see
            :mod:`bench.train_modes` for ``trainable``). Frozen parameters have ``requires_grad``
            False and their BatchNorm layers stay in eval mode; all are trainable again on return.
        backbone: the network's spec, to find its stages when a stage's ``trainable`` is not "all"
            (optional for networks made by ``create_backbone``).
        bn_train: BatchNorm layers of the trainable part in training mode (batch statistics updated).
        bn_recalibrate: before each validation and at the end of each stage, re-estimate the running
            statistics of the BatchNorm layers that trained in the stage for the current weights, on
            ``images`` without augmentation (:func:`bench.batchnorm.recalibrate`), so the network evaluated
            is the network that trained. It never changes the weights' trajectory (training normalises by
            batch statistics); the history entry of such an epoch says how many layers (``bn_recalibrated``)
            and how long it took (``bn_seconds``).
        augment: "flip" (random horizontal flips; True), "falconi" or "none" (False); see :mod:`bench.augment`.
        class_weights: "balanced" weighs the cross-entropy by MorphHR's eq. 6 weights computed on
            ``labels``; None or "none" for plain cross-entropy.
        grad_accum: split each batch into this many micro-batches and accumulate their gradients: the
            same effective batch and update, less memory. Without BatchNorm in training mode the result
            equals ``grad_accum=1`` up to float error (BatchNorm statistics are per micro-batch). A
            micro-batch is never smaller than 2 images, so a short last batch is split into fewer parts.
        patience: with validation, end a stage after this many epochs without improvement (the next
            stage, if any, still runs); None runs every epoch.
        on_epoch: called with each epoch's history entry (progress output).

    On a GPU the images stay on the device as uint8 and batches are gathered there; losses and
    accuracies stay on the device until the epoch ends (one host sync per epoch, not one per step).
    Autocast runs in bfloat16 where the GPU supports it, else float16 with loss scaling; none on the CPU.
    AdamW is the fused implementation on the GPU (one kernel per step) and the default one on the CPU.

    Raises:
        DivergedError: at the end of an epoch in which a training loss was NaN or infinite, naming the
            first such step (the check reads the epoch's losses once, so it does not block every step).
    """
    if grad_accum < 1 or grad_accum > batch_size:
        raise ValueError(f"grad_accum must be between 1 and batch_size ({batch_size}), got {grad_accum}")
    if schedule is None:
        if epochs is None or lr is None:
            raise TypeError("fit needs either epochs and lr, or a schedule")
        schedule = [Stage.one_stage(epochs=epochs, lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs)]
    policy = ("flip" if augment else "none") if isinstance(augment, bool) else augment
    if select_on not in ("loss", "auc"):
        raise ValueError(f"select_on must be 'loss' or 'auc', got {select_on!r}")
    device = device or default_device()
    place(model, device)
    n = len(labels)
    # Drop a last batch of 1: BatchNorm cannot train on a single image.
    steps_per_epoch = max(1, n // batch_size if n % batch_size == 1 else math.ceil(n / batch_size))
    gen = torch.Generator().manual_seed(seed)
    x_all = resident(images, device)
    y_all = torch.as_tensor(labels, dtype=torch.long).to(device)
    weights = balanced_class_weights(labels) if class_weights == "balanced" else None
    w_dev = None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=device)
    validate = val_images is not None and len(val_images) > 0
    dtype = amp_dtype(device)
    # float16 autocast needs loss scaling or small gradients underflow; bfloat16 does not; a pass-through on the CPU.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    history: list[dict] = []
    best: tuple[float, int, dict] | None = None  # (score, epoch, state) of the best validation epoch
    epoch = 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # dropout and the falconi augmentation draw from the global RNG
        for stage_no, stage in enumerate(schedule, 1):
            names = trainable_parameters(model, stage.trainable, backbone)
            apply_trainable(model, names)
            params = [p for p in model.parameters() if p.requires_grad]
            # On the GPU one fused kernel per step instead of several per parameter group (a step of vgg16's 138 M
            # weights is latency-bound otherwise); the CPU keeps the default (foreach) so its results stay as they were.
            opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay,
                                    **({"fused": True} if device.type == "cuda" else {}))
            total, warmup = stage.epochs * steps_per_epoch, stage.warmup_epochs * steps_per_epoch
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s, total=total, warmup=warmup, decay=stage.lr_decay: lr_factor(s, total, warmup, decay))
            stale = 0
            for _ in range(stage.epochs):
                epoch += 1
                set_train_mode(model, bn_train)
                moving = training_batchnorm_layers(model) if bn_recalibrate else []
                t0 = time.perf_counter()
                order = to_device(torch.randperm(n, generator=gen), device)
                batches = [order[step * batch_size:(step + 1) * batch_size] for step in range(steps_per_epoch)]
                flips = _draw_flips(batches, gen, device) if policy == "flip" else None
                # Per micro-batch, kept on the device until the epoch ends: (step, images, loss, correct, lr).
                steps: list[tuple[int, int, torch.Tensor, torch.Tensor, float]] = []
                for step, idx in enumerate(batches):
                    x = gather(x_all, idx)
                    if flips is not None:  # as augment_batch's "flip" (same draws), without a host sync
                        f = flips[step * batch_size:step * batch_size + len(idx)].view(-1, 1, 1, 1)
                        x = torch.where(f, x.flip(-1), x)
                    else:
                        x = augment_batch(x, policy, gen)
                    x = normalize(x, mean, std)
                    y = y_all[idx]
                    opt.zero_grad(set_to_none=True)
                    lr_now = sched.get_last_lr()[0]
                    # Micro-batches of at least 2 images (BatchNorm cannot train on one), as even as possible.
                    chunks = max(1, min(grad_accum, len(idx) // 2))
                    for xm, ym in zip(torch.tensor_split(x, chunks), torch.tensor_split(y, chunks)):
                        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                            logits = model(xm)
                        if w_dev is None:
                            loss = F.cross_entropy(logits.float(), ym)
                        else:
                            loss = (w_dev[ym] * F.cross_entropy(logits.float(), ym, reduction="none")).mean()
                        scaler.scale(loss * (len(ym) / len(idx))).backward()
                        steps.append((step, len(ym), loss.detach(), (logits.argmax(1) == ym).sum(), lr_now))
                    scaler.step(opt)  # skips the step when a scaled gradient overflowed
                    scaler.update()
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message=_SKIPPED_STEP_WARNING)
                        sched.step()
                loss_sum, correct, seen = _epoch_totals(steps, epoch, steps_per_epoch)
                entry = {"epoch": epoch, "loss": loss_sum / seen, "running_train_acc": correct / seen,
                         "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
                if len(schedule) > 1:
                    entry["stage"] = stage_no
                if validate:
                    _recalibrate(entry, model, images, moving, mean=mean, std=std, device=device)
                    margins = predict(model, val_images, mean=mean, std=std, device=device)
                    entry["val_loss"] = margin_loss(margins, val_labels, weights)
                    both = len(np.unique(val_labels)) == 2
                    entry["val_auc"] = float(roc_auc_score(val_labels, margins)) if both else None
                    score = entry["val_loss"] if select_on == "loss" else -(entry["val_auc"] or 0.0)
                    if best is None or score < best[0]:
                        best = (score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
                        stale = 0
                    else:
                        stale += 1
                history.append(entry)
                if on_epoch:
                    on_epoch(entry)
                if validate and patience is not None and stale >= patience:
                    break
            if not validate:  # the stage leaves statistics that match its last weights
                _recalibrate(history[-1], model, images, moving, mean=mean, std=std, device=device)
    apply_trainable(model, {name for name, _ in model.named_parameters()})
    if best is not None:
        model.load_state_dict(best[2])
        for entry in history:
            entry["selected"] = entry["epoch"] == best[1]
    return history


def _draw_flips(batches: list[torch.Tensor], gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """The epoch's random horizontal flips (p = 0.5), drawn from ``gen`` batch by batch exactly as
    :func:`bench.augment.augment_batch` draws them, and sent to ``device`` once."""
    return to_device(torch.cat([torch.rand(len(idx), generator=gen) < 0.5 for idx in batches]), device)


def _epoch_totals(steps: list, epoch: int, steps_per_epoch: int) -> tuple[float, int, int]:
    """``(loss_sum, correct, seen)`` of an epoch's micro-batches, read from the device in one sync.

    The sums are taken on the host in step order, with each loss as the float32 it is: the same numbers
    as summing ``loss.item()`` step by step. Raises :class:`DivergedError` naming the first step whose loss
    was NaN or infinite.
    """
    values = torch.stack([torch.stack([loss.double(), hits.double()]) for _, _, loss, hits, _ in steps]).tolist()
    bad = [i for i, (loss, _) in enumerate(values) if not math.isfinite(loss)]
    if bad:
        (step, _, _, _, lr), last = steps[bad[0]], steps[bad[-1]][0]
        where = f"step {step + 1}/{steps_per_epoch}" + (f" (and later, up to step {last + 1})" if last > step else "")
        raise DivergedError(f"loss is {values[bad[0]][0]} at epoch {epoch}, {where} (lr {lr:.3g}): training diverged")
    loss_sum, correct = 0.0, 0
    for (_, size, _, _, _), (loss, hits) in zip(steps, values):
        loss_sum += loss * size
        correct += int(hits)
    return loss_sum, correct, sum(size for _, size, _, _, _ in steps)


def _recalibrate(entry: dict, model: nn.Module, images: np.ndarray, layers: list, *, mean, std,
                 device: torch.device) -> None:
    """Re-estimate ``layers``' statistics on ``images``; note how many and how long in the history ``entry``."""
    if layers:
        t0 = time.perf_counter()
        entry["bn_recalibrated"] = recalibrate(model, images, mean=mean, std=std, layers=layers, device=device)
        entry["bn_seconds"] = time.perf_counter() - t0


def selected_epoch(history: list[dict]) -> int | None:
    """The epoch :func:`fit` restored by early stopping, or None (no validation: the last epoch is used)."""
    return next((e["epoch"] for e in history if e.get("selected")), None)


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, *, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
            batch_size: int = 128, tta: str = "none", device: torch.device | None = None) -> np.ndarray:
    """Malignancy scores as logit margins ``logit[1] - logit[0]`` (never saturated probabilities:
    out of domain those tie and give a fake AUC of exactly 0.5).

    ``tta``: "none", "hflip" (mean margin over the image and its horizontal flip) or "flips" (Shen et al.'s
    augmented prediction: the image and its horizontal, vertical and double flips).
    """
    device = device or default_device()
    views = tta_views(tta)
    place(model, device).eval()
    if len(images) == 0:
        return np.zeros(0, dtype=np.float32)
    dtype = amp_dtype(device)
    x_all = resident(images, device)
    out = []
    for i in range(0, len(images), batch_size):
        x = normalize(gather(x_all, slice(i, i + batch_size)), mean, std)
        margin = 0.0
        for dims in views:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = model(x.flip(dims) if dims else x).float()
            margin = margin + (logits[:, 1] - logits[:, 0])
        out.append(margin / len(views))
    return torch.cat(out).cpu().numpy()  # one host sync for all the batches
