"""Seeds derived by hashing the axes they depend on (benchopt's ``RunContext.get_seed`` idea).

Each random stream of a cell is seeded from exactly the axes it must depend on, so

- changing or adding an axis value never reseeds another cell (no seed is a running counter);
- the design stays paired: every cell with the same ``(backbone, seed)`` starts from the same random
  initialisation (a source pre-training included), and every cell with the same
  ``(target, ft_fraction, seed)`` fine-tunes on the same split, in the same batch order with the same flips.
"""
from __future__ import annotations

import hashlib
import json


def derive_seed(*parts: object) -> int:
    """A seed in ``[0, 2**31)`` from the SHA-256 of ``parts`` (JSON-encoded; order matters, floats as given).

    >>> derive_seed("init", "resnet18", 0) == derive_seed("init", "resnet18", 0)
    True
    """
    blob = json.dumps([str(p) if not isinstance(p, (int, float, str)) else p for p in parts], separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big") % (2 ** 31)


def init_seed(backbone: str, seed: int) -> int:
    """Seed of the random initialisation: shared by every cell (and pre-training) of ``(backbone, seed)``."""
    return derive_seed("init", backbone, int(seed))


def split_seed(target: str, ft_fraction: float, seed: int) -> int:
    """Seed of the fine-tune/evaluation split and of the fine-tuning batch order and flips."""
    return derive_seed("split", target, float(ft_fraction), int(seed))


def cell_seeds(axes: dict) -> dict[str, int]:
    """The seed vector of a cell, from its axes (recorded in every record)."""
    return {"init": init_seed(axes["backbone"], axes["seed"]),
            "split": split_seed(axes["target"], axes["ft_fraction"], axes["seed"])}


def pretrain_seeds(cfg: dict) -> dict[str, int]:
    """The seed vector of a source pre-training: the backbone's shared init, its own held-out split/order."""
    return {"init": init_seed(cfg["backbone"], cfg["seed"]),
            "split": split_seed(cfg["source"], float(cfg.get("val_fraction", 0.0)), cfg["seed"])}
