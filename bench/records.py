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
from collections.abc import Callable, Hashable, Iterable, Iterator
from pathlib import Path

from bench.fileio import write_json_atomic  # noqa: F401  (bench.records' name for it, used across bench)
from bench.record_model import record_problem

SCHEMA = 1
FINISHED = ("ok", "na")
AXES = ("backbone", "target", "source", "ft_fraction", "transfer", "train_mode", "seed")
"""A cell record's axes (``record["cell"]``), in the order reports sort records by."""


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
    """A record, or None if the file is missing or not a complete, well-formed record (a cell record is checked
    against :class:`bench.record_model.CellRecord`; :func:`damaged_records` says what is wrong with one)."""
    try:
        rec = json.loads(Path(path).read_text())
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not (isinstance(rec, dict) and "status" in rec and "cell_id" in rec):
        return None
    return None if record_problem(rec) else rec


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


def record_file_problem(path: str | Path) -> str | None:
    """What is wrong with a ``*.json`` file of a results folder as a record ("not readable JSON",
    ``"metrics.auc: Input should be a valid number"``), or None when it reads as a record or other JSON object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "not readable JSON"
    return record_problem(obj) if isinstance(obj, dict) and "cell_id" in obj else None


def damaged_records(results_dir: str | Path, skip: set[str] | frozenset = frozenset()) -> list[Path]:
    """The ``*.json`` files of a results folder that are not readable JSON (a damaged or foreign file), or cell
    records that are not well-formed (:func:`bench.record_model.record_problem`); the manifest and other whole
    JSON objects are not listed. ``skip``: file names already read as records (so a large folder is not parsed
    twice)."""
    return [p for p in sorted(Path(results_dir).glob("*.json")) if p.name not in skip and record_file_problem(p)]


def load_records(results_dir: str | Path) -> list[dict]:
    return list(iter_records(results_dir))


def is_finished(results_dir: str | Path, cell_id: str) -> bool:
    rec = read_record(record_path(results_dir, cell_id))
    return rec is not None and rec.get("status") in FINISHED


SVCCA_DIR = "svcca"  # results/<suite>/svcca/: the per-layer SVCCA records (see bench.runner.svcca)


SVCCA_KEY = ("backbone", "source", "target", "seed")


def latest_svcca_records(folder: str | Path) -> list[dict]:
    """The newest SVCCA record of each (backbone, source, target, seed) under ``folder``
    (``results/<suite>/svcca``); a suite edited between runs leaves stale ones behind."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    recs = (read_record(path) for path in sorted(folder.glob("*.json")))

    def job(rec: dict) -> dict:
        return rec.get("job") or {}

    latest = newest_per_key((r for r in recs if r is not None and r.get("kind") == "svcca"),
                            lambda r: tuple(job(r).get(k) for k in SVCCA_KEY))
    return sorted(latest, key=lambda r: tuple(str(job(r).get(k)) for k in SVCCA_KEY))


# --------------------------------------------------------------------------- choosing and ordering records

def record_date(record: dict) -> str:
    """When a record was written (``provenance.date``, ISO 8601 UTC, so strings sort by time); "" if unknown."""
    return (record.get("provenance") or {}).get("date", "")


def newest_per_key(records: Iterable[dict], key: Callable[[dict], Hashable]) -> list[dict]:
    """The newest record (by :func:`record_date`) of each ``key(record)``, in the order the keys first appear.

    Of records written at the same second, the first one given is kept.
    """
    newest: dict = {}
    for r in records:
        k = key(r)
        if k not in newest or record_date(r) > record_date(newest[k]):
            newest[k] = r
    return list(newest.values())


def axis_value(record: dict, axis: str):
    """A record's value on an axis; records from before the train_mode axis have the default mode."""
    value = (record.get("cell") or {}).get(axis)
    return "default" if axis == "train_mode" and value is None else value


def latest_per_cell(records: list[dict]) -> tuple[list[dict], int]:
    """One record per set of axes, the newest (a suite edited between runs leaves stale records behind);
    returns them and how many older ones were left out."""
    best = newest_per_key(records, lambda r: tuple(axis_value(r, k) for k in AXES))
    return best, len(records) - len(best)


def current_records(folder: str | Path, records: list[dict]) -> list[dict]:
    """The records of the suite's current cells, by the folder's manifest (written by every ``bench run``); all of
    them when there is no manifest or none of them is current (a folder copied without its manifest)."""
    cells = (read_record_any(Path(folder) / MANIFEST) or {}).get("cells") or {}
    current = [r for r in records if r.get("cell_id") in cells]
    return current if current else records


def in_suite_order(records: Iterable[dict], manifest: dict | None) -> list[dict]:
    """Records in one canonical order, so ``bench run`` and ``bench report`` render identical files: the suite's
    own cell order (backbones, sources ... as listed in the suite) from its manifest, then any other record by
    its axes (the default train mode first)."""
    position = {cid: i for i, cid in enumerate((manifest or {}).get("cells") or {})}
    return sorted(records, key=lambda r: (position.get(r.get("cell_id"), len(position)), tuple(
        "" if k == "train_mode" and axis_value(r, k) == "default" else str(axis_value(r, k)) for k in AXES)))
