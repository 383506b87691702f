"""Per-cell result records: one JSON file per cell, written atomically, loaded into DataFrames.

A record is a plain dict (JSON object) with these keys:

- ``schema`` (int), ``suite`` (str), ``cell_id`` (str)
- ``status``: ``"ok"`` | ``"na"`` | ``"failed"``; ``reason``: str or None (why NA / why failed)
- ``cell``: the axes, ``{"backbone", "source", "ft_fraction", "target", "transfer", "seed"}``
- ``config``: the whole resolved cell config (what the cell id hashes)
- ``metrics``: ``auc, accuracy, f1, sensitivity, specificity, train_acc, val_acc, beta,
  n_finetune, n_eval`` (train_acc and beta are None when nothing was fine-tuned)
- ``predictions``: columns ``image_id, patient_id, label, score`` (score = logit margin)
- ``history``: list of per-epoch dicts; ``timing``; ``seeds`` (``init``, ``split``: hashes of the axes)
- ``grad_accum`` (1, or more after out-of-memory retries, with ``oom_retries``); ``log``: the cell's messages
- ``provenance``: git commit, dirty flag and diff hash, package/torch/CUDA/cuDNN versions, device, host,
  torch threads, Slurm job ids, date, ``split_hash`` and ``weights_sha256`` (see :mod:`bench.provenance`)
- failed records only: ``error``: ``{"class", "kind", "message", "cause", "traceback"}`` where kind is
  ``exception`` | ``diverged`` (NaN/Inf loss) | ``oom`` | ``dependency`` (its source pre-training failed) |
  ``crash`` (its worker process died ``max_attempts`` times)

A results folder also holds ``_suite.json`` (the suite's cells, for ``bench status``), ``.claims/``
(who is computing what) and ``.journal.jsonl`` (start/end of every job); none of them is a record.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA = 1
FINISHED = ("ok", "na")


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` via a temp file in the same folder and ``os.replace``.

    A reader sees either the old file, or the whole new one: never a half-written record.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def record_path(results_dir: str | Path, cell_id: str) -> Path:
    return Path(results_dir) / f"{cell_id}.json"


def pretrain_paths(results_root: str | Path, pretrain_id: str) -> tuple[Path, Path]:
    """A source pre-training's checkpoint and its JSON sidecar: ``<results_root>/pretrain/<id>.pt`` and ``.json``."""
    d = Path(results_root) / "pretrain"
    return d / f"{pretrain_id}.pt", d / f"{pretrain_id}.json"


def load_pretrained_meta(results_root: str | Path, pretrain_id: str) -> dict | None:
    """The sidecar of a finished source pre-training (its checkpoint exists and the sidecar says ok), else None."""
    ckpt, meta = pretrain_paths(results_root, pretrain_id)
    if not ckpt.exists():
        return None
    rec = read_record(meta)
    return rec if rec and rec.get("status") == "ok" else None


def read_record(path: str | Path) -> dict | None:
    """A record, or None if the file is missing or not a complete record."""
    try:
        rec = json.loads(Path(path).read_text())
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) and "status" in rec and "cell_id" in rec else None


MANIFEST = "_suite.json"  # results/<suite>/_suite.json: the suite's cells, written by `bench run`


def read_record_any(path: str | Path) -> dict | None:
    """Any JSON object (a manifest, a record), or None if the file is missing or not a whole JSON object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def iter_records(results_dir: str | Path) -> Iterator[dict]:
    """Every complete record in a suite's results folder (temp files and other JSON are skipped)."""
    for p in sorted(Path(results_dir).glob("*.json")):
        rec = read_record(p)
        if rec is not None:
            yield rec


def damaged_records(results_dir: str | Path, skip: set[str] | frozenset = frozenset()) -> list[Path]:
    """The ``*.json`` files of a results folder that are not readable JSON (a damaged or foreign file); the
    manifest and other whole JSON objects are not listed. ``skip``: file names already read as records (so a
    large folder is not parsed twice)."""
    bad = []
    for p in sorted(Path(results_dir).glob("*.json")):
        if p.name in skip:
            continue
        try:
            json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            bad.append(p)
    return bad


def load_records(results_dir: str | Path) -> list[dict]:
    return list(iter_records(results_dir))


def is_finished(results_dir: str | Path, cell_id: str) -> bool:
    rec = read_record(record_path(results_dir, cell_id))
    return rec is not None and rec.get("status") in FINISHED


SVCCA_DIR = "svcca"  # results/<suite>/svcca/: the per-layer SVCCA records (see bench.runner.svcca)


def latest_svcca_records(folder: str | Path) -> list[dict]:
    """The newest SVCCA record of each (backbone, source, target, seed) under ``folder``
    (``results/<suite>/svcca``); a suite edited between runs leaves stale ones behind."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    latest: dict[tuple, dict] = {}
    for path in sorted(folder.glob("*.json")):
        rec = read_record(path)
        if rec is None or rec.get("kind") != "svcca":
            continue
        job = rec.get("job") or {}
        key = tuple(job.get(k) for k in ("backbone", "source", "target", "seed"))
        date = (rec.get("provenance") or {}).get("date", "")
        if key not in latest or date > (latest[key].get("provenance") or {}).get("date", ""):
            latest[key] = rec
    return sorted(latest.values(), key=lambda r: tuple(str((r.get("job") or {}).get(k))
                                                        for k in ("backbone", "source", "target", "seed")))
