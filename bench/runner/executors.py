"""Executors: the local scheduler (:mod:`bench.runner.local`: worker processes or in-process) and the Slurm
executor (:mod:`bench.runner.slurm`: submitit). This module re-exports both, for code that imports them
from here."""
from __future__ import annotations

from bench.runner.local import LocalScheduler, RunSummary, WorkerStartError, run_local
from bench.runner.slurm import SuiteTask, run_submitit

__all__ = ["LocalScheduler", "RunSummary", "SuiteTask", "WorkerStartError", "run_local", "run_submitit"]
