"""Training and prediction: one readable loop, no file I/O.

Images arrive as ``(N, H, W)`` uint8 arrays (the dataset contract); they are turned into
normalised 3-channel float batches here, on the fly, so a whole target fits in memory as bytes.
The learning rate warms up linearly (optional) and then decays with a cosine to zero: a constant
rate collapsed source pre-training and damaged pretrained models during small fine-tunes.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_batch(images: np.ndarray, mean, std, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, H, W)`` -> normalised float ``(B, 3, H, W)`` on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True).float().div_(255.0)
    x = x.unsqueeze(1).expand(-1, 3, -1, -1)
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    x = (x - m) / s
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 0 at ``total`` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_batchnorm_train(model: nn.Module, train: bool) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(train)


def fit(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, epochs: int, lr: float, batch_size: int,
        weight_decay: float = 1e-4, warmup_epochs: int = 0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        seed: int = 0, bn_train: bool = True, augment: bool = True, device: torch.device | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``model`` in place for a fixed number of epochs; return the per-epoch history.

    No epoch is selected: the model after the last epoch is the result (there is no held-out split
    to select on, and selecting on the evaluation set would inflate every number).

    Args:
        bn_train: BatchNorm layers in training mode (batch statistics updated) or frozen.
        augment: random horizontal flips (mammograms of both lateralities exist).
        on_epoch: called with each epoch's history entry (progress output).
    """
    device = device or default_device()
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(labels)
    # Drop a last batch of 1: BatchNorm cannot train on a single image.
    steps_per_epoch = max(1, n // batch_size if n % batch_size == 1 else math.ceil(n / batch_size))
    total, warmup = epochs * steps_per_epoch, warmup_epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup))
    gen = torch.Generator().manual_seed(seed)
    y_all = torch.as_tensor(labels, dtype=torch.long)
    use_amp = device.type == "cuda"
    history = []
    for epoch in range(epochs):
        model.train()
        set_batchnorm_train(model, bn_train)
        order = torch.randperm(n, generator=gen).numpy()
        t0, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size]
            x = to_batch(images[idx], mean, std, device)
            y = y_all[idx].to(device)
            if augment:
                flip = torch.rand(len(idx), generator=gen) < 0.5
                x[flip.to(device)] = x[flip.to(device)].flip(-1)
            with torch.autocast(device.type, enabled=use_amp):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(idx)
        entry = {"epoch": epoch + 1, "loss": loss_sum / seen, "running_train_acc": correct / seen,
                 "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        history.append(entry)
        if on_epoch:
            on_epoch(entry)
    return history


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, *, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
            batch_size: int = 128, device: torch.device | None = None) -> np.ndarray:
    """Malignancy scores as logit margins ``logit[1] - logit[0]`` (never saturated probabilities:
    out of domain those tie and give a fake AUC of exactly 0.5)."""
    device = device or default_device()
    model.to(device).eval()
    out = []
    for i in range(0, len(images), batch_size):
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            logits = model(to_batch(images[i:i + batch_size], mean, std, device)).float()
        out.append((logits[:, 1] - logits[:, 0]).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
