"""Run a suite: pre-train the sources it needs (once, cached), then every unfinished cell.

The result store is the state: a cell whose record exists with status ok or na is skipped, so a
re-run (after a crash, a kill or an edit that adds cells) computes only what is missing. A failed
cell is retried on the next run. One cell's failure becomes a ``failed`` record; the suite goes on.
"""
from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from bench.provenance import provenance
from bench.records import is_finished, read_record, record_path, write_json_atomic
from bench.suite import Cell, Suite


@dataclass
class RunSummary:
    results_dir: Path
    computed: int = 0
    skipped: int = 0
    failed: int = 0
    na: int = 0
    pretrained: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)


def failed_record(suite: str, cell: Cell, exc: BaseException) -> dict:
    from bench.runner.cell import base_record

    return {**base_record(suite, cell), "status": "failed", "reason": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(), "metrics": {}, "predictions": None, "history": []}


def _user_error(exc: BaseException) -> bool:
    """Errors whose message is the whole story (no traceback needed in the progress output)."""
    return isinstance(exc, (FileNotFoundError, ValueError, KeyError))


def run_suite(suite: Suite, *, results_root: str | Path = "results", progress: bool = True,
              log=None) -> RunSummary:
    """Run every unfinished cell of ``suite``; write one record per cell under ``results_root/<suite>``."""
    from bench.runner.cell import run_cell
    from bench.runner.pretrain import ensure_pretrained, load_pretrained_meta

    results_root = Path(results_root)
    out = results_root / suite.name
    out.mkdir(parents=True, exist_ok=True)
    summary = RunSummary(results_dir=out)
    t0 = time.perf_counter()
    say = log or (lambda msg: tqdm.write(msg, file=sys.stderr))

    todo = []
    for cell in suite.cells:
        if is_finished(out, cell.cell_id):
            summary.skipped += 1
        else:
            todo.append(cell)
    if not todo:
        say(f"{suite.name}: all {len(suite.cells)} cells already have records in {out}; nothing to compute")
        summary.seconds = time.perf_counter() - t0
        return summary

    # Phase 1: source pre-trainings needed by pending cells and not cached yet.
    failed_pretrain: dict[str, BaseException] = {}
    jobs = {c.pretrain_id: c.config["pretrain"] for c in todo if c.pretrain_id and c.na_reason is None}
    for pid, cfg in jobs.items():
        if load_pretrained_meta(results_root, pid) is not None:
            continue
        try:
            ensure_pretrained(cfg, pid, results_root, log=say)
            summary.pretrained += 1
        except Exception as exc:  # noqa: BLE001 - becomes failed records of the dependent cells
            failed_pretrain[pid] = exc
            say(f"pre-training {cfg['backbone']} on {cfg['source']} FAILED: {type(exc).__name__}: {exc}")

    # Phase 2: the cells.
    bar = tqdm(todo, desc=suite.name, unit="cell", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    for cell in bar:
        bar.set_postfix_str(f"{cell.backbone}/{cell.source}/ft{cell.ft_fraction:g}/{cell.target}/{cell.transfer}"
                            f"/s{cell.seed}", refresh=True)
        try:
            if cell.pretrain_id in failed_pretrain:
                raise RuntimeError(f"source pre-training failed: {failed_pretrain[cell.pretrain_id]}")
            rec = run_cell(cell, suite=suite.name, results_root=results_root, log=say)
        except Exception as exc:  # noqa: BLE001 - a failure is a record, and the suite goes on
            rec = failed_record(suite.name, cell, exc)
            summary.failed += 1
            summary.failures.append((cell.cell_id, rec["reason"]))
            say(f"cell {cell.cell_id} ({cell.target}, {cell.source}, ft {cell.ft_fraction:g}, {cell.transfer}) "
                f"FAILED: {rec['reason']}")
            if not _user_error(exc):
                say(rec["traceback"])
        else:
            if rec["status"] == "na":
                summary.na += 1
            else:
                summary.computed += 1
        rec["provenance"] = provenance()
        write_json_atomic(record_path(out, cell.cell_id), rec)
    bar.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def suite_records(suite: Suite, results_root: str | Path = "results") -> list[dict]:
    """The records of exactly this suite's current cells (older configs in the folder are ignored)."""
    out = Path(results_root) / suite.name
    recs = (read_record(record_path(out, c.cell_id)) for c in suite.cells)
    return [r for r in recs if r is not None]
