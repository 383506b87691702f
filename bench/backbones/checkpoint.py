"""Reading weights files: a state dict loaded safely (``weights_only=True`` or safetensors), and timm's own
download (only when the caller allows it). Imports nothing else of bench.
"""
from __future__ import annotations

from pathlib import Path

import torch


def load_checkpoint(path: str | Path) -> dict:
    """A state dict from a file, loaded safely (``weights_only=True`` or safetensors); accepts {'state_dict': ...}."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ... here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a checkpoint torch can load safely (weights_only=True): {first[:200]}. "
                         "Save a plain state dict: torch.save(model.state_dict(), path)") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd


def download_timm(timm_name: str) -> dict | None:
    """timm's own download of ``timm_name``'s pretrained weights (the caller checks ``BENCH_ALLOW_DOWNLOAD=1``)."""
    import os

    import timm

    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    return timm.create_model(timm_name, pretrained=True).state_dict()
