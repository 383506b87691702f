"""What is known to sink cells before anything runs: missing data folders, missing ImageNet weights, unreadable
images. ``bench validate`` and ``bench plan`` report it (with how many cells each problem would sink and the
fix); ``bench run`` stops before computing anything unless told to run the cells that can start
(``--run-rest``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from bench.errors import UserError
from bench.suite import Cell, Suite

__all__ = ["Blocker", "BlockedError", "blockers", "data_problem", "format_blockers", "preload_datasets"]


class BlockedError(UserError):
    """Cells of a suite cannot start (data or weights missing); the message lists every problem once."""


@dataclass
class Blocker:
    """One missing thing and the cells it would sink."""

    what: str  # "data folder of 'inbreast'" / "ImageNet weights of 'resnet50'"
    message: str  # the full message, with the fix
    cells: list[str] = field(default_factory=list)


def data_problem(name: str, options: dict | None) -> str | None:
    """Why dataset ``name`` has no folder here (None when it has one, or needs none)."""
    from bench.data import DATASETS, data_root
    from bench.data.items import DatasetFormatError

    if not DATASETS.get(name).needs_root:
        return None
    try:
        data_root(name, (options or {}).get("root"))
    except DatasetFormatError as exc:
        return str(exc)
    return None


def _weights_problem(backbone: str, explicit: str | None) -> str | None:
    """Why ``source: imagenet`` cannot load this backbone's weights here (None when it can). Loads nothing."""
    from bench.backbones.specs import (
        DOWNLOAD_ENV,
        WeightsNotFoundError,
        find_imagenet_weights,
        imagenet_state_dict,
    )

    found = find_imagenet_weights(backbone, explicit, follow_weights_from=True)
    if os.environ.get(DOWNLOAD_ENV) == "1" or (found is not None and (found.path is None or found.path.is_file())):
        return None
    try:  # nothing is found, so nothing is loaded: this only builds the message the run would print
        imagenet_state_dict(backbone, explicit)
    except WeightsNotFoundError as exc:
        return str(exc)
    return None


def blockers(suite: Suite, cells: list[Cell] | None = None) -> list[Blocker]:
    """Every missing data folder and ImageNet weights file among ``cells`` (default: all the suite's cells that
    are not NA), each with the cells it would sink."""
    found: dict[str, Blocker] = {}
    memo: dict[tuple, str | None] = {}
    for c in suite.cells if cells is None else cells:
        if c.na_reason:
            continue
        cfg = c.config
        checks = [(("data", c.target, json.dumps(cfg.get("target_data"), sort_keys=True)),
                   f"data folder of {c.target!r}", lambda: data_problem(c.target, cfg.get("target_data")))]
        if c.pretrain_id:
            src = cfg["pretrain"]
            checks.append((("data", c.source, json.dumps(src.get("source_data"), sort_keys=True)),
                           f"data folder of {c.source!r}", lambda: data_problem(c.source, src.get("source_data"))))
        if c.source == "imagenet":
            checks.append((("weights", c.backbone, cfg.get("weights")), f"ImageNet weights of {c.backbone!r}",
                           lambda: _weights_problem(c.backbone, cfg.get("weights"))))
        for key, what, check in checks:
            if key not in memo:
                memo[key] = check()
            if memo[key]:
                found.setdefault(memo[key], Blocker(what, memo[key])).cells.append(c.cell_id)
    for b in found.values():
        b.cells = list(dict.fromkeys(b.cells))
    return list(found.values())


def format_blockers(found: list[Blocker], n_cells: int) -> str:
    """``N of M cells cannot start here:`` and one line per problem (with its count of cells)."""
    sunk = len({cid for b in found for cid in b.cells})
    lines = [f"{sunk} of {n_cells} cell(s) cannot start here:"]
    for b in found:
        lines.append(f"  {b.what} ({len(b.cells)} cell(s)): {b.message}")
    return "\n".join(lines)


def preload_datasets(jobs) -> None:
    """Load every dataset the pending ``jobs`` need (targets and pre-training sources) before any of them runs,
    so that unreadable images are listed once, dataset by dataset, instead of failing each cell in turn."""
    from bench.data.items import DatasetFormatError
    from bench.runner.datasets import get_dataset

    wanted: dict[tuple, tuple] = {}
    for job in jobs:
        if job.kind == "pretrain":
            c = job.config
            wanted.setdefault((c["source"], json.dumps(c["source_data"], sort_keys=True), json.dumps(c["image_size"])),
                              (c["source"], c["source_data"], c["image_size"]))
        elif job.kind == "cell" and not job.cell.na_reason:
            c = job.cell.config
            wanted.setdefault((job.cell.target, json.dumps(c["target_data"], sort_keys=True),
                               json.dumps(c["image_size"])), (job.cell.target, c["target_data"], c["image_size"]))
    problems: dict[str, None] = {}
    for name, options, size in wanted.values():
        try:
            get_dataset(name, options, size)
        except DatasetFormatError as exc:
            problems[str(exc)] = None
    if problems:
        raise DatasetFormatError("\n".join(problems) if len(problems) == 1 else
                                 f"{len(problems)} datasets cannot be loaded:\n  " + "\n  ".join(problems))
