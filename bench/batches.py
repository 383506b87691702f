"""Images as network inputs: uint8 ``(N, H, W)`` arrays (the dataset contract) to normalised float batches.

Kept apart from :mod:`bench.train` so that everything that feeds a network (training, prediction, BatchNorm
re-estimation, activations for SVCCA) converts images the same way without importing the training loop.
"""
from __future__ import annotations

import functools
import os
import warnings

import numpy as np
import torch

__all__ = ["amp_dtype", "default_device", "device_problem", "gather", "normalize", "resident", "to_batch",
           "to_device", "to_float"]


DEVICE_ENV = "BENCH_DEVICE"
"""Environment variable naming the device bench computes on ("cpu", "cuda", "cuda:N"); ``bench run --device``
sets it for the cells it runs in its own process (worker processes are pinned through ``CUDA_VISIBLE_DEVICES``)."""


def default_device() -> torch.device:
    """``$BENCH_DEVICE`` if set, else a GPU where torch sees one, else the CPU."""
    name = os.environ.get(DEVICE_ENV)
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_problem(name: str) -> str | None:
    """Why ``name`` ("cpu", "cuda", "cuda:N") cannot be computed on here, or None if it can."""
    if name == "cpu":
        return None
    if not torch.cuda.is_available():
        return (f"--device {name}: torch {torch.__version__} sees no CUDA GPU here (CUDA build: "
                f"{torch.version.cuda or 'none'}); run with --device cpu, or on a machine with a GPU")
    n = torch.cuda.device_count()
    if ":" in name and int(name.split(":", 1)[1]) >= n:
        return f"--device {name}: this machine has {n} GPU(s), cuda:0 to cuda:{n - 1}"
    return None


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype on ``device``: None on the CPU (no autocast; results as they always were),
    bfloat16 on a GPU that supports it (no loss scaling needed), else float16 (with a GradScaler)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def resident(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 ``(N, H, W)`` images as one tensor on ``device``: shares the array's memory on the CPU, and on
    a GPU is copied there once, so batches are gathered on the device (no per-step copy from host memory)."""
    with warnings.catch_warnings():  # a read-only array (a memory map): the tensor is only ever read
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        t = torch.from_numpy(np.ascontiguousarray(images))
    return t.to(device, non_blocking=True) if device.type != "cpu" else t


def gather(images: torch.Tensor, idx: torch.Tensor | slice) -> torch.Tensor:
    """Rows ``idx`` of resident uint8 ``(N, H, W)`` images -> float ``(B, 1, H, W)`` in [0, 1], on their device
    (the same numbers as :func:`to_float` on the same rows)."""
    return images[idx].float().div_(255.0).unsqueeze(1)


def to_float(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, H, W)`` -> float ``(B, 1, H, W)`` in [0, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True).float().div_(255.0)
    return x.unsqueeze(1)


def place(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` moved to ``device``; on a GPU also to channels_last, the layout of the batches :func:`normalize`
    builds there (cuDNN's fast depthwise and bf16 kernels want it: efficientnet_lite0). Used by training and
    prediction alike, so a network is never scored in another layout than it trained in."""
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """float ``(B, 1, H, W)`` in [0, 1] -> normalised ``(B, 3, H, W)`` (gray repeated on 3 channels)."""
    x = x.expand(-1, 3, -1, -1)
    m, s = _stats(tuple(mean), tuple(std), x.device)
    x = (x - m) / s
    if x.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@functools.lru_cache(maxsize=64)
def _stats(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean`` and ``std`` as ``(1, 3, 1, 1)`` tensors on ``device``, made once (a copy to a GPU per batch
    would wait for the GPU each step)."""
    return (torch.tensor(mean, device=device).view(1, 3, 1, 1), torch.tensor(std, device=device).view(1, 3, 1, 1))


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor on ``device`` without making the host wait for the GPU: from pinned memory, queued
    behind the GPU's work (a copy from ordinary memory waits for the stream). The tensor itself on the CPU."""
    if device.type != "cuda":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def to_batch(images: np.ndarray, mean, std, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, H, W)`` -> normalised float ``(B, 3, H, W)`` on ``device``."""
    return normalize(to_float(images, device), mean, std)
