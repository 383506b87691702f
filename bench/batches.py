"""Images as network inputs: uint8 ``(N, H, W)`` arrays (the dataset contract) to normalised float batches.

Kept apart from :mod:`bench.train` so that everything that feeds a network (training, prediction, BatchNorm
re-estimation, activations for SVCCA) converts images the same way without importing the training loop.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["default_device", "normalize", "to_batch", "to_float"]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_float(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, H, W)`` -> float ``(B, 1, H, W)`` in [0, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True).float().div_(255.0)
    return x.unsqueeze(1)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """float ``(B, 1, H, W)`` in [0, 1] -> normalised ``(B, 3, H, W)`` (gray repeated on 3 channels)."""
    x = x.expand(-1, 3, -1, -1)
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    x = (x - m) / s
    if x.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def to_batch(images: np.ndarray, mean, std, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, H, W)`` -> normalised float ``(B, 3, H, W)`` on ``device``."""
    return normalize(to_float(images, device), mean, std)
