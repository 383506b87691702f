"""``run_suite``: the checks before a run (results folder, pre-flight, changed data), then the plan executed.

See :mod:`bench.runner` for how the result store makes runs resumable.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from bench.errors import UserError
from bench.fileio import write_json_atomic
from bench.records import MANIFEST, read_record, read_record_any, record_path
from bench.runner.datasets import forget_datasets
from bench.runner.executors import RunSummary, run_local, run_submitit
from bench.runner.freshness import changed_results, format_changed, move_aside
from bench.runner.plan import build_plan, svcca_jobs
from bench.runner.preflight import (
    BlockedError,
    blockers,
    format_blockers,
    preload_datasets,
)
from bench.suite import ExecutorSettings, Suite, SuiteError


class ChangedDataError(UserError):
    """Finished results were computed on other data or weights than the suite points at now."""


def executor_settings(suite: Suite, **overrides) -> ExecutorSettings:
    """The suite's ``executor:`` block with command-line overrides (None values are ignored)."""
    upd = {k: v for k, v in overrides.items() if v is not None}
    return ExecutorSettings(**{**suite.config.executor.model_dump(), **upd})


def check_results_folder(suite: Suite, out: Path) -> None:
    """Refuse a results folder that belongs to another suite (a renamed or copied folder)."""
    man = read_record_any(out / MANIFEST)
    if man and man.get("suite") != suite.name:
        raise SuiteError(f"{out}: this results folder belongs to suite {man.get('suite')!r} "
                         f"({man.get('path') or 'no file'}), not {suite.name!r}; use another --results root, or "
                         f"move the folder back to {out.parent / str(man.get('suite'))}")
    # Another suite file with the same name (a copy that kept `name:`) would mix its cells into this folder. The
    # same file edited is the same suite; a folder whose suite file no longer exists (moved) is taken over.
    old = Path(man["path"]).resolve() if man and man.get("path") else None
    if old is not None and suite.path is not None and old.exists() and old != Path(suite.path).resolve():
        raise SuiteError(f"{out}: this results folder belongs to suite file {old}; {suite.path} has the same name "
                         f"{suite.name!r}. Give it another 'name:' (rename it), or pass --results another root")


def write_manifest(suite: Suite, out: Path, settings: ExecutorSettings) -> None:
    """``_suite.json``: the suite's name, file, cell ids and NA reasons (read by ``bench status``)."""
    import datetime as dt

    man = {"suite": suite.name, "path": str(suite.path) if suite.path else None,
           "config": suite.config.model_dump(mode="json"),
           "cells": {c.cell_id: {**c.axes, "na": c.na_reason, "pretrain_id": c.pretrain_id} for c in suite.cells},
           "executor": settings.model_dump(mode="json")}
    analyses = svcca_jobs(suite)
    if analyses:  # the SVCCA runs, for `bench status`
        man["analyses"] = {j.analysis_id: j.axes for j in analyses}
    old = read_record_any(out / MANIFEST) or {}
    if {k: v for k, v in old.items() if k != "written"} != man:  # a finished suite's re-run writes nothing
        write_json_atomic(out / MANIFEST, {**man, "written": dt.datetime.now(dt.timezone.utc).isoformat(
            timespec="seconds")})


def run_suite(suite: Suite, *, results_root: str | Path = "results", progress: bool = True, log=None,
              executor: ExecutorSettings | None = None, retry_failed: bool = False, run_rest: bool = False,
              recompute_changed: bool = False) -> RunSummary:
    """Run every unfinished cell of ``suite``; write one record per cell under ``results_root/<suite>``.

    Before anything is computed: cells that cannot start (a missing data folder or ImageNet weights file) stop
    the run with one message listing every problem (:mod:`bench.runner.preflight`), finished results computed on
    other data or weights than today's are refused (:mod:`bench.runner.freshness`), and every dataset the
    pending cells need is loaded once, so that unreadable images are listed together.

    Args:
        executor: how to run (default: the suite's ``executor:`` block; local, 1 worker process).
        retry_failed: recompute cells (and source pre-trainings) that failed in an earlier run;
            by default they are kept and counted in ``RunSummary.kept_failed``.
        run_rest: compute the cells that can start and leave the others pending (``RunSummary.blocked``).
        recompute_changed: move finished results whose data or weights changed to ``_replaced/`` and
            recompute them, instead of refusing.
    """
    from tqdm import tqdm

    results_root = Path(results_root)
    out = results_root / suite.name
    settings = executor or executor_settings(suite)
    check_results_folder(suite, out)
    forget_datasets()
    say = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    t0 = time.perf_counter()
    plan = build_plan(suite, results_root, retry_failed=retry_failed)
    blocked = blockers(suite, [j.cell for j in plan.cells if j.kind == "cell"])
    if blocked and not run_rest:
        n_pending = sum(1 for j in plan.cells if j.kind == "cell")
        rest = n_pending - len({c for b in blocked for c in b.cells})
        raise BlockedError(f"{format_blockers(blocked, n_pending)}\nNothing was computed. Fix the above"
                           + (f", or pass --run-rest to compute the other {rest} cell(s) now (the blocked ones stay "
                              "pending)." if rest else "."))
    blocked_ids = {c for b in blocked for c in b.cells}
    readable = {j.cell.cell_id for j in plan.cells if j.kind == "cell" and j.cell.cell_id not in blocked_ids}
    changed = changed_results(suite, results_root, skip=blocked_ids)
    if changed:
        message = format_changed(changed, out)
        if not recompute_changed:
            raise ChangedDataError(f"{message}\nThey are not reused. Point the suite back at the data they were "
                                   "computed on, use another --results root to keep both, or pass "
                                   "--recompute-changed to recompute them (the old files are moved to "
                                   f"{out / '_replaced'}/, not deleted).")
        where = move_aside(changed, suite, results_root)
        say(f"{message}\nrecomputing them; the old files are in {where}")
        plan = build_plan(suite, results_root, retry_failed=retry_failed)
    if blocked:
        say(f"{format_blockers(blocked, len(readable) + len(blocked_ids))}\n--run-rest: they stay pending")
        plan.cells = [j for j in plan.cells if j.kind != "cell" or j.cell.cell_id not in blocked_ids]
        plan.keep_only(plan.cells + plan.analyses)
    preload_datasets(plan.jobs)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(suite, out, settings)
    remove_stale_temp_files([out, out / "svcca", results_root / "pretrain"])
    summary = RunSummary(results_dir=out, skipped=len(plan.done), kept_failed=len(plan.failed_kept),
                         blocked=len(blocked_ids))
    if not plan.jobs:
        summary.seconds = time.perf_counter() - t0
        return summary
    job_fn = None
    if plan.analyses:  # the SVCCA runs are jobs of the plan (after the cells)
        from bench.runner.svcca import compute_job_or_svcca as job_fn
    if settings.kind == "slurm":
        run_submitit(plan, settings, summary, say=say, progress=progress, retry_failed=retry_failed, job_fn=job_fn)
    else:
        run_local(plan, settings, summary, say=say, progress=progress, job_fn=job_fn)
    summary.seconds = time.perf_counter() - t0
    return summary


STALE_TEMP_SECONDS = 6 * 3600


def remove_stale_temp_files(folders: list[Path], older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete the temp files of atomic writes that a killed process left behind (``.<name>.*.tmp``,
    ``*.pt.tmp``). Only old ones: a runner sharing the folder may be writing one right now."""
    now, n = time.time(), 0
    for folder in folders:
        for p in folder.glob("*.tmp") if folder.is_dir() else ():
            try:
                if now - p.stat().st_mtime > older_than:
                    p.unlink()
                    n += 1
            except FileNotFoundError:  # another runner removed or renamed it meanwhile
                pass
    return n


def suite_records(suite: Suite, results_root: str | Path = "results") -> list[dict]:
    """The records of exactly this suite's current cells (older configs in the folder are ignored)."""
    out = Path(results_root) / suite.name
    recs = (read_record(record_path(out, c.cell_id)) for c in suite.cells)
    return [r for r in recs if r is not None]
