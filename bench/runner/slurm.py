"""The Slurm executor (:func:`run_submitit`), through submitit.

One job array of source pre-trainings, then one array of ``min(array_parallelism, pending cells)`` tasks,
each of which runs the local scheduler in-process on the shared results folder (claims keep them from
computing a cell twice). On Slurm the cell array depends on the pre-training array (``afterany``); tasks
are ``submitit.helpers.Checkpointable``, so preemption or timeout requeues them and they resume from the
store. ``cluster: local`` (submitit's local executor) runs the same path without Slurm, for tests.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from bench.records import read_record, record_path
from bench.runner.local import RunSummary, run_local
from bench.runner.plan import Plan, pretrain_state, svcca_dir
from bench.runner.worker import JobFn, SuiteSpec
from bench.suite import ExecutorSettings

# --------------------------------------------------------------------------- Slurm via submitit

try:
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover - submitit is a dependency
    _Checkpointable = object


class SuiteTask(_Checkpointable):
    """One Slurm array task: run the suite in-process on the shared results folder (claims prevent
    duplicates). ``only`` restricts it to one source pre-training (the first array). Requeued on
    preemption/timeout by submitit; the store makes the restart resume."""

    def __init__(self, spec: SuiteSpec, results_root: str, settings: dict, retry_failed: bool,
                 only: str | None = None, job_fn: JobFn | None = None):
        self.spec, self.results_root, self.settings = spec, results_root, settings
        self.retry_failed, self.only, self.job_fn = retry_failed, only, job_fn

    def __call__(self) -> dict:
        import torch

        from bench.runner.plan import build_plan

        s = ExecutorSettings(**{**self.settings, "kind": "local", "workers": 0})
        torch.set_num_threads(s.threads or s.cpus_per_task)
        suite = self.spec.build()
        root = Path(self.results_root)
        plan = build_plan(suite, root, retry_failed=self.retry_failed)
        if self.only is not None:
            plan.cells, plan.analyses = [], []
            plan.pretrain = {k: v for k, v in plan.pretrain.items() if k == self.only}
        summary = RunSummary(results_dir=plan.out)
        run_local(plan, s, summary, say=lambda m: print(m, file=sys.stderr, flush=True), progress=False,
                  job_fn=self.job_fn)
        return {"computed": summary.computed, "failed": summary.failed, "pretrained": summary.pretrained,
                "na": summary.na, "analyses": summary.analyses, "analyses_failed": summary.analyses_failed}


def _submitit_executor(folder: Path, s: ExecutorSettings, name: str):
    import submitit

    ex = submitit.AutoExecutor(folder=folder, cluster=None if s.cluster == "slurm" else s.cluster)
    params: dict = {"timeout_min": s.timeout_min, "name": name}
    if ex.cluster == "slurm":
        params.update(slurm_array_parallelism=s.array_parallelism, cpus_per_task=s.cpus_per_task,
                      gpus_per_node=s.gpus_per_task, slurm_additional_parameters=dict(s.slurm_extra))
        if s.partition:
            params["slurm_partition"] = s.partition
        if s.mem_gb:
            params["mem_gb"] = s.mem_gb
    ex.update_parameters(**params)
    return ex


def run_submitit(plan: Plan, settings: ExecutorSettings, summary: RunSummary, *, say, progress: bool,
                 retry_failed: bool, job_fn: JobFn | None = None) -> None:
    """Submit the plan as two job arrays and follow them through the store until they end; ``job_fn`` computes
    one job in the tasks (see :func:`bench.runner.local.run_local`)."""
    spec = SuiteSpec.of(plan.suite)
    folder = plan.out / ".submitit"
    sdict = settings.model_dump()
    ex = _submitit_executor(folder, settings, f"bench-{plan.suite.name}")
    root = str(plan.results_root)
    before = {c.cell_id: (read_record(record_path(plan.out, c.cell_id)) or {}).get("status")
              for c in plan.suite.cells}
    pre_jobs = []
    if plan.pretrain:
        tasks = [SuiteTask(spec, root, sdict, retry_failed, only=pid, job_fn=job_fn) for pid in plan.pretrain]
        with ex.batch():
            pre_jobs = [ex.submit(t) for t in tasks]
        say(f"submitted {len(pre_jobs)} source pre-training job(s): {', '.join(j.job_id for j in pre_jobs)}")
        if ex.cluster == "slurm":
            array_id = pre_jobs[0].job_id.split("_")[0]
            ex.update_parameters(slurm_additional_parameters={**settings.slurm_extra,
                                                              "dependency": f"afterany:{array_id}"})
        else:
            _follow(plan, pre_jobs, say, progress, label="pre-training")
    n_cells = (sum(1 for j in plan.cells + plan.analyses if j.kind != "na")
               or (1 if plan.cells or plan.analyses else 0))
    n_tasks = min(settings.array_parallelism, n_cells)
    cell_jobs = []
    if n_tasks:
        with ex.batch():
            cell_jobs = [ex.submit(SuiteTask(spec, root, sdict, retry_failed, job_fn=job_fn)) for _ in range(n_tasks)]
        say(f"submitted {len(cell_jobs)} cell worker task(s): {', '.join(j.job_id for j in cell_jobs)}")
    _follow(plan, pre_jobs + cell_jobs, say, progress, label="cells")
    for j in pre_jobs + cell_jobs:
        exc = j.exception()
        if exc is not None:
            say(f"job {j.job_id} ended with an error (its cells stay pending; run again to resume): "
                f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}")
    for c in plan.suite.cells:
        rec = read_record(record_path(plan.out, c.cell_id)) or {}
        if before[c.cell_id] in ("ok", "na") or rec.get("status") is None:
            continue
        if before[c.cell_id] == "failed" and not retry_failed:
            continue
        st = rec["status"]
        if st == "ok":
            summary.computed += 1
        elif st == "na":
            summary.na += 1
        elif st == "failed":
            summary.failed += 1
            summary.failures.append((c.cell_id, rec.get("reason")))
    for job in plan.analyses:
        rec = read_record(record_path(svcca_dir(plan.results_root, plan.suite.name), job.key)) or {}
        if rec.get("status") == "ok":
            summary.analyses += 1
        elif rec.get("status") == "failed":
            summary.analyses_failed += 1
            summary.analysis_failures.append((job.key, rec.get("reason")))
    summary.pretrained = sum(1 for pid in plan.pretrain if pretrain_state(plan.results_root, pid)[0] == "done")


def _follow(plan: Plan, jobs: list, say, progress: bool, *, label: str) -> None:
    """Wait for ``jobs``, printing done/failed counts from the store and each new failure."""
    seen_failed: set[str] = set()
    t0 = time.time()
    last = ""
    while True:
        states = [read_record(record_path(plan.out, c.cell_id)) for c in plan.suite.cells]
        done = sum(1 for r in states if r and r.get("status") in ("ok", "na"))
        failed = [r for r in states if r and r.get("status") == "failed"]
        for r in failed:
            if r["cell_id"] not in seen_failed:
                seen_failed.add(r["cell_id"])
                if r["cell_id"] in plan.failed_kept:
                    continue
                say(f"cell {r['cell_id']} FAILED: {r.get('reason')}")
        running = sum(1 for j in jobs if not j.done())
        line = (f"{plan.suite.name} [{label}]: {done} done, {len(failed)} failed, "
                f"{len(plan.suite.cells) - done - len(failed)} to go; {running} job(s) active, "
                f"{time.time() - t0:.0f}s")
        if progress and line.split(";")[0] != last:
            say(line)
            last = line.split(";")[0]
        if running == 0:
            return
        time.sleep(1.0)
