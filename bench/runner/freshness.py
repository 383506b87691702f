"""Whether a finished result was computed on the data and weights a suite points at now.

The data root is not part of a cell id (moved data keeps its results), so changed *content* is caught here:
every record stores a fingerprint of the target dataset it saw (``data.target``), a cell fed by a source
pre-training also the source's (``data.source``), and ``provenance.weights_sha256`` of the weights it started
from; a pre-training sidecar stores its source's fingerprint. Before anything is reused, these are compared
with the data and weights as they are now. A mismatch is never reused silently: ``bench run`` refuses and
names the dataset, or with ``--recompute-changed`` moves the old files aside (nothing is deleted) and
recomputes them.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.records import pretrain_paths, read_record, record_path
from bench.suite import Suite

__all__ = ["Changed", "changed_results", "data_fingerprint", "dataset_summary", "format_changed", "move_aside"]


def data_fingerprint(ds) -> str:
    """SHA-256 (20 hex digits) of what a loaded dataset *is*: its images at the loaded size, labels, image ids and
    split groups. Independent of where the folder lies and of file dates; computed once per loaded dataset."""
    cached = ds.meta.get("content_fingerprint")
    if cached:
        return cached
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ds.images).tobytes())
    for arr in (ds.labels, ds.image_ids, ds.groups):
        h.update(json.dumps(np.asarray(arr).tolist()).encode())
    ds.meta["content_fingerprint"] = h.hexdigest()[:20]
    return ds.meta["content_fingerprint"]


def dataset_summary(ds) -> dict:
    """What a record stores of a dataset it used: name, fingerprint and counts (for the message on a change)."""
    return {"name": ds.name, "fingerprint": data_fingerprint(ds), "n_images": int(len(ds)),
            "n_malignant": int(np.sum(ds.labels))}


@dataclass
class Changed:
    """Finished results computed on data or weights that have changed since."""

    what: str  # e.g. "dataset 'folder' at 64 px"
    detail: str  # e.g. "48 images (20 malignant) then, 40 (25 malignant) now"
    cells: list[str] = field(default_factory=list)  # cell ids whose records are stale
    pretrain: list[str] = field(default_factory=list)  # pretrain ids whose checkpoints are stale


def _counts(s: dict) -> str:
    return f"{s.get('n_images')} images ({s.get('n_malignant')} malignant)"


def _differs(then: dict, now: dict, when: str) -> str:
    """``48 images (20 malignant) when computed, 40 (25 malignant) now; content fingerprint 1a2b3c4d -> 5e6f7a8b``"""
    return (f"{_counts(then)} {when}, {_counts(now)} now; content fingerprint {then['fingerprint'][:8]} -> "
            f"{now['fingerprint'][:8]} (images, labels, ids or patient groups differ)")


def _key(name: str, options: dict, image_size) -> tuple[str, str, str]:
    return name, json.dumps(options, sort_keys=True), json.dumps(image_size)


def changed_results(suite: Suite, results_root: str | Path, *, skip: set[str] = frozenset()) -> list[Changed]:
    """The suite's finished records and cached pre-trainings whose data or weights differ from today's.

    Loads each dataset a finished result used (through the decode cache: a scan and one file read for a real
    dataset) and hashes today's ImageNet weights. Not checked: records written before fingerprints existed, the
    cells in ``skip``, and results whose dataset folder is missing now (moved away; reported elsewhere for cells
    still to run). A folder that is there but unreadable raises its loading error.
    """
    from bench.provenance import weights_sha256
    from bench.runner.datasets import get_dataset

    root = Path(results_root)
    out = root / suite.name
    now: dict[tuple, dict] = {}

    def current(name: str, options: dict, image_size) -> dict | None:
        k = _key(name, options, image_size)
        if k not in now:
            from bench.runner.preflight import data_problem

            # a missing folder (data moved away, a report-only machine): the results cannot be checked, and are
            # kept; a folder that is there but unreadable raises its own message (every bad file listed)
            now[k] = None if data_problem(name, options) else dataset_summary(get_dataset(name, options, image_size))
        return now[k]

    found: dict[tuple, Changed] = {}

    def note(what: str, detail: str) -> Changed:
        return found.setdefault((what, detail), Changed(what, detail))

    stale_pretrain: dict[str, Changed] = {}
    for pid, cfg in suite.pretrain_jobs.items():
        meta = read_record(pretrain_paths(root, pid)[1])
        then = ((meta or {}).get("data") or {}).get("source")
        if not meta or meta.get("status") != "ok" or not then:
            continue
        cur = current(cfg["source"], cfg["source_data"], cfg["image_size"])
        if cur and cur["fingerprint"] != then["fingerprint"]:
            ch = note(f"source dataset {cfg['source']!r} at {cfg['image_size']} px",
                      _differs(then, cur, "when pre-trained"))
            ch.pretrain.append(pid)
            stale_pretrain[pid] = ch
    for cell in suite.cells:
        if cell.na_reason or cell.cell_id in skip:
            continue
        rec = read_record(record_path(out, cell.cell_id))
        if not rec or rec.get("status") != "ok" or not rec.get("data"):
            continue
        cfg = cell.config
        then = rec["data"].get("target")
        cur = current(cell.target, cfg["target_data"], cfg["image_size"])
        if then and cur and cur["fingerprint"] != then["fingerprint"]:
            note(f"dataset {cell.target!r} at {cfg['image_size']} px",
                 _differs(then, cur, "when computed")).cells.append(cell.cell_id)
            continue
        if cell.pretrain_id in stale_pretrain:
            stale_pretrain[cell.pretrain_id].cells.append(cell.cell_id)
            continue
        if cell.source != "random":  # the ImageNet file, or the source pre-training's checkpoint
            was = (rec.get("provenance") or {}).get("weights_sha256")
            is_ = weights_sha256(rec, root)
            if was and is_ and was != is_:
                what = (f"ImageNet weights of {cell.backbone!r}" if cell.source == "imagenet" else
                        f"source pre-training checkpoint {pretrain_paths(root, cell.pretrain_id)[0]}")
                note(what, f"SHA-256 {was[:12]} when computed, {is_[:12]} now").cells.append(cell.cell_id)
    return [c for c in found.values() if c.cells or c.pretrain]


def format_changed(changes: list[Changed], folder: Path) -> str:
    n_cells = sum(len(c.cells) for c in changes)
    n_pre = sum(len(c.pretrain) for c in changes)
    lines = [f"{folder}: {n_cells} finished cell(s)"
             + (f" and {n_pre} source pre-training(s)" if n_pre else "")
             + " were computed on other data or weights than the suite points at now:"]
    for c in changes:
        lines.append(f"  {c.what}: {c.detail} ({len(c.cells)} cell(s)"
                     + (f", {len(c.pretrain)} pre-training(s)" if c.pretrain else "") + ")")
    return "\n".join(lines)


def move_aside(changes: list[Changed], suite: Suite, results_root: str | Path) -> Path:
    """Move the stale records and pre-training files to ``<results>/<suite>/_replaced/<UTC time>/`` (kept, not
    deleted), so that the next plan computes them again. Returns that folder."""

    root = Path(results_root)
    dest = root / suite.name / "_replaced" / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    moves: dict[Path, Path] = {}
    for c in changes:
        for cid in c.cells:
            moves[record_path(root / suite.name, cid)] = dest / f"{cid}.json"
        for pid in c.pretrain:
            for p in pretrain_paths(root, pid):
                moves[p] = dest / "pretrain" / p.name
    by_dir = defaultdict(list)
    for src, dst in moves.items():
        by_dir[dst.parent].append((src, dst))
    for d, pairs in by_dir.items():
        d.mkdir(parents=True, exist_ok=True)
        for src, dst in pairs:
            if src.exists():
                shutil.move(str(src), str(dst))
    return dest
