"""Run a suite: plan it (source pre-trainings before the cells that use them), then execute the plan.

The result store is the state: a cell whose record has status ok or na is done, and is never
recomputed; a cell with a ``failed`` record is kept as it is unless ``retry_failed``; everything else is
computed. So a re-run after a crash, a ``kill -9`` or an edit that adds cells computes only what is
missing. Several runners (or Slurm array tasks) may work on one results folder at once: each job is
claimed first (:mod:`bench.runner.claims`). Executors: :mod:`bench.runner.executors`.

The names below are imported on first use, so that ``bench status`` (which reads only a results folder through
:mod:`bench.runner.status`) loads neither torch nor the backbones.
"""
from __future__ import annotations

from bench.lazy import lazy_exports

_WHERE = {
    "MANIFEST": "bench.records",
    "BlockedError": "bench.runner.preflight",
    "ChangedDataError": "bench.runner.run",
    "Plan": "bench.runner.plan",
    "RunSummary": "bench.runner.executors",
    "STALE_TEMP_SECONDS": "bench.runner.run",
    "build_plan": "bench.runner.plan",
    "check_results_folder": "bench.runner.run",
    "executor_settings": "bench.runner.run",
    "failed_record": "bench.runner.worker",
    "remove_stale_temp_files": "bench.runner.run",
    "run_suite": "bench.runner.run",
    "suite_records": "bench.runner.run",
    "write_manifest": "bench.runner.run",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
