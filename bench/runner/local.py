"""The local scheduler: worker processes, or every job in the runner's own process.

``workers = N >= 1`` starts N worker processes (``spawn`` context: no fork after torch is loaded), each with
an equal share of the CPU cores as torch threads. On a machine with GPUs, several workers share each GPU so
small cells overlap (:func:`worker_gpus`): ``workers_per_gpu`` of them per GPU ("auto": from the GPU's free
memory and the CPU cores), each pinned to its GPU through ``CUDA_VISIBLE_DEVICES``; ``workers > 1`` given
with ``workers_per_gpu: auto`` spreads that many evenly over the GPUs. ``device: cpu`` hides the GPUs from
the workers, ``device: cuda:N`` puts them all on GPU N. Where NVIDIA's MPS daemon runs, the workers sharing
a GPU run their kernels concurrently instead of time-slicing it. A worker keeps the datasets in memory across the cells it runs. If a worker dies under a
cell (segfault, OOM killer, ``kill -9``), the runner starts a new worker and retries the cell, up to
``max_attempts`` in all; then the cell becomes a ``failed`` record (``WorkerCrashed``). ``workers = 0``
runs every job in the runner's own process (no isolation, no start-up cost). Jobs are dispatched in plan
order as their dependencies finish; every job is claimed first (:mod:`bench.runner.claims`), so any
number of runners may share one results folder; a job claimed by a live runner elsewhere is waited for,
a stale claim is taken over.

The function that computes one job is injectable (``job_fn``, default
:func:`bench.runner.worker.compute_job`, see :data:`bench.runner.worker.JobFn`): scheduler tests pass a
stand-in that sleeps, fails or raises instead of training a network. With worker processes it must be
picklable (a module-level function). A plan with SVCCA runs (kind "svcca") needs
:func:`bench.runner.svcca.compute_job_or_svcca`, which computes them and hands every other job to
:func:`~bench.runner.worker.compute_job` (this module cannot import it: :mod:`bench.runner.svcca` runs its
analysis through this scheduler).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from bench.fileio import write_json_atomic
from bench.records import read_record, record_path
from bench.runner.claims import Claim, try_claim
from bench.runner.plan import Job, Plan, pretrain_state, result_folder
from bench.runner.worker import (
    JobFn,
    SuiteSpec,
    compute_job,
    crashed_record,
    dependency_failed_record,
    execute_claimed,
    worker_main,
)
from bench.suite import ExecutorSettings


GIB_PER_WORKER = 4.0
"""GPU memory planned per worker by ``workers_per_gpu: auto`` (a 224 px fine-tune at batch 32 takes 1-3 GiB)."""
MAX_WORKERS_PER_GPU = 8


def gpu_free_gib() -> list[float]:
    """Free memory in GiB of each GPU this process sees (``CUDA_VISIBLE_DEVICES`` applies); [] without CUDA."""
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [torch.cuda.mem_get_info(i)[0] / 2**30 for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no usable CUDA: CPU workers
        return []


def auto_workers_per_gpu(free_gib: list[float], cores: int) -> int:
    """Workers per GPU: as many as the free memory of the fullest GPU and the CPU cores per GPU allow, 1 to 8."""
    by_memory = int(min(free_gib) // GIB_PER_WORKER)
    return max(1, min(cores // len(free_gib), by_memory, MAX_WORKERS_PER_GPU))


def worker_gpus(settings: ExecutorSettings) -> list[str | None]:
    """One entry per worker process to start: the ``CUDA_VISIBLE_DEVICES`` it gets ("" hides every GPU), or
    None on a machine without GPUs (a CPU worker, as always)."""
    if settings.workers == 0:
        return []
    free = [] if settings.device == "cpu" else gpu_free_gib()
    if not free and settings.device not in (None, "cpu"):
        raise ValueError(f"executor.device {settings.device!r}: torch sees no CUDA GPU here; use cpu")
    if not free:
        return ["" if settings.device == "cpu" else None] * settings.workers
    seen = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [g.strip() for g in seen.split(",")] if seen else [str(i) for i in range(len(free))]
    if settings.device and settings.device.startswith("cuda:"):
        k = int(settings.device.split(":")[1])
        if k >= len(names):
            raise ValueError(f"executor.device {settings.device!r}: this machine has {len(names)} GPU(s)")
        names, free = names[k:k + 1], free[k:k + 1]
    per, n = settings.workers_per_gpu, None
    if per == "auto" and settings.workers > 1:  # the workers asked for, spread evenly
        per, n = -(-settings.workers // len(names)), settings.workers
    elif per == "auto":
        per = auto_workers_per_gpu(free, os.cpu_count() or 1)
    return [names[i // per] for i in range(n or per * len(names))]


class WorkerStartError(RuntimeError):
    """A worker process died before it could load the suite (a broken environment, not a cell failure)."""


@dataclass
class RunSummary:
    results_dir: Path
    computed: int = 0
    skipped: int = 0
    failed: int = 0
    na: int = 0
    pretrained: int = 0
    kept_failed: int = 0
    by_others: int = 0
    blocked: int = 0  # cells left pending by --run-rest (their data or weights are missing)
    analyses: int = 0  # SVCCA runs computed
    analyses_failed: int = 0
    analysis_failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)


def _folder(plan: Plan, job: Job) -> Path:
    return result_folder(plan.results_root, plan.suite.name, job.kind)


def _job_dict(job: Job) -> dict:
    return {"key": job.key, "kind": job.kind, "config": job.config}


@dataclass(eq=False)
class _Slot:
    name: str
    proc: object
    conn: object
    job: Job | None = None
    claim: Claim | None = None
    ready: bool = False


class LocalScheduler:
    """Dispatch the plan's jobs to workers as their dependencies finish (see the module docstring)."""

    def __init__(self, plan: Plan, settings: ExecutorSettings, summary: RunSummary, *, say, progress: bool,
                 job_fn: JobFn | None = None):
        self.plan, self.s, self.summary, self.say = plan, settings, summary, say
        if job_fn is None and plan.analyses:
            raise ValueError("a plan with SVCCA runs needs their job function: pass "
                             "job_fn=bench.runner.svcca.compute_job_or_svcca")
        self.job_fn: JobFn = job_fn or compute_job
        self.suite = plan.suite
        self.cells = {**{c.cell_id: c for c in self.suite.cells}, **{j.key: j.analysis for j in plan.analyses}}
        self.svcca_index = {j.key: i for i, j in enumerate(plan.analyses, len(plan.analyses_done) + 1)}
        self.svcca_total = len(plan.analyses) + len(plan.analyses_done)
        self.pending: deque[Job] = deque(plan.jobs)
        self.pretrain_failed: dict[str, str] = dict(plan.pretrain_failed)
        self.attempts: dict[str, int] = {}
        self.elsewhere: set[str] = set()
        self.slots: list[_Slot] = []
        self.gpus = worker_gpus(settings)  # the GPU of each worker; its length is the number of workers
        self.spec = SuiteSpec.of(self.suite)
        n_jobs = len(self.pending)
        self.bar = tqdm(total=n_jobs, desc=self.suite.name, unit="job", file=sys.stderr, disable=not progress,
                        dynamic_ncols=True)
        self.ok = self.failed = 0
        self.own_pretrain: set[str] = set(plan.pretrain)
        self.pretrain_ok: set[str] = set()  # finished by this runner (its job function said "ok")
        # Each pending job's result file as it was when the plan was made: a different file later means
        # another runner wrote it during this run (os.replace always makes a new inode).
        self.initial = {j.key: _signature(self._result_path(j)) for j in self.pending}

    # ------------------------------------------------------------------ workers
    def _start_worker(self, i: int) -> _Slot:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe()
        threads = self.s.threads or max(1, (os.cpu_count() or 1) // max(1, len(self.gpus)))
        gpu = self.gpus[i % len(self.gpus)]
        name = f"w{i}"
        proc = ctx.Process(target=worker_main, name=f"bench-{name}", daemon=True,
                           args=(child_conn, self.spec, str(self.plan.results_root), threads, gpu,
                                 self.s.heartbeat_s, name, self.job_fn))
        proc.start()
        child_conn.close()
        return _Slot(name=name, proc=proc, conn=parent_conn)

    def _stop_workers(self, *, kill: bool = False) -> None:
        for slot in self.slots:
            try:
                if kill:
                    slot.proc.terminate()
                else:
                    slot.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for slot in self.slots:
            slot.proc.join(timeout=10)
            if slot.proc.is_alive():
                slot.proc.terminate()

    # ------------------------------------------------------------------ bookkeeping
    def _postfix(self) -> None:
        running = sum(1 for s in self.slots if s.job is not None)
        self.bar.set_postfix_str(f"ok {self.ok} failed {self.failed} running {running}"
                                 + (f" elsewhere {len(self.elsewhere)}" if self.elsewhere else ""), refresh=False)

    def _done(self, job: Job, summary: dict) -> None:
        st = summary["status"]
        s = self.summary
        if job.kind == "pretrain":
            self.own_pretrain.discard(job.key)
            if st == "ok":
                self.pretrain_ok.add(job.key)
                s.pretrained += 1
                self.ok += 1
            else:
                self.pretrain_failed[job.key] = summary.get("reason") or "failed"
                self.failed += 1
                self.say(f"{job.label} FAILED: {summary.get('reason')}")
        elif job.kind == "svcca":
            if st == "failed":
                s.analyses_failed += 1
                self.failed += 1
                s.analysis_failures.append((job.key, summary.get("reason")))
                self.say(f"svcca {job.key} FAILED: {summary.get('reason')}")
            else:
                s.analyses += 1
                self.ok += 1
        elif st == "failed":
            s.failed += 1
            self.failed += 1
            s.failures.append((job.key, summary.get("reason")))
            self.say(f"cell {job.key} ({job.label}) FAILED: {summary.get('reason')}")
            if summary.get("traceback"):
                self.say(summary["traceback"].rstrip())
        elif st == "na":
            s.na += 1
            self.ok += 1
        else:
            s.computed += 1
            self.ok += 1
        self.elsewhere.discard(job.key)
        self.bar.update(1)
        self._postfix()

    def _already_done(self, job: Job) -> bool:
        """Whether another runner finished ``job`` during this run (or it was done before a retry started)."""
        path = self._result_path(job)
        new = _signature(path) != self.initial.get(job.key)
        if job.kind == "pretrain":
            state, reason = pretrain_state(self.plan.results_root, job.key)
            if state == "done":
                return True
            if state == "failed" and new:
                self.pretrain_failed[job.key] = reason or "failed"
                return True
            return False
        rec = read_record(path)
        return rec is not None and (rec.get("status") in ("ok", "na") or new)

    def _result_path(self, job: Job) -> Path:
        return record_path(_folder(self.plan, job), job.key)

    def _skip_done(self, job: Job) -> None:
        self.own_pretrain.discard(job.key)
        if job.kind in ("cell", "na"):
            self.summary.by_others += 1
        self.elsewhere.discard(job.key)
        self.bar.update(1)

    def _dep_state(self, job: Job, memo: dict) -> str:
        """"ready", "wait" or "failed" for a cell's source pre-training."""
        for pid in job.deps:
            if pid not in memo:
                if pid in self.pretrain_ok:
                    memo[pid] = "ready"
                elif pid in self.pretrain_failed:
                    memo[pid] = "failed"
                elif pid in self.own_pretrain:
                    memo[pid] = "wait"
                else:
                    state, reason = pretrain_state(self.plan.results_root, pid)
                    if state == "failed":
                        self.pretrain_failed[pid] = reason or "failed"
                    memo[pid] = {"done": "ready", "failed": "failed"}.get(state, "wait")
            if memo[pid] != "ready":
                return memo[pid]
        return "ready"

    def _claim(self, job: Job) -> Claim | None | bool:
        """A claim; None if a live runner elsewhere holds it; False if the job is settled (done elsewhere,
        or given up after too many worker deaths)."""
        claim = try_claim(_folder(self.plan, job), job.key, stale_after_s=self.s.stale_after_s)
        if claim is None:
            return None
        if self._already_done(job):  # finished by another runner between our look and our claim
            claim.release()
            self._skip_done(job)
            return False
        attempt = max(claim.attempt, self.attempts.get(job.key, 0) + 1)
        claim.attempt = attempt
        if attempt > self.s.max_attempts and job.kind != "na":
            self._give_up(job, claim, "a worker died under it each time")
            return False
        return claim

    def _give_up(self, job: Job, claim: Claim, detail: str) -> None:
        n = claim.attempt - 1
        if job.kind == "pretrain":
            meta = {"status": "failed", "cell_id": job.key, "config": job.config,
                    "reason": f"WorkerCrashed: {detail}; {n} attempt(s)"}
            write_json_atomic(self._result_path(job), meta)
            summary = {"status": "failed", "reason": meta["reason"]}
            self.own_pretrain.discard(job.key)
        else:
            rec = crashed_record(self.suite.name, self.cells[job.key], detail, n)
            write_json_atomic(self._result_path(job), rec)
            summary = {"status": "failed", "reason": rec["reason"]}
        claim.release()
        self._done(job, summary)

    # ------------------------------------------------------------------ the loop
    def _next_ready(self) -> tuple[Job, Claim] | None:
        """The first pending job that can start now (claimed), settling finished/failed ones on the way."""
        memo: dict[str, str] = {}
        for _ in range(len(self.pending)):
            job = self.pending.popleft()
            if job.key in self.elsewhere and self._already_done(job):
                self._skip_done(job)
                continue
            if job.kind in ("cell", "svcca") and job.deps:
                dep = self._dep_state(job, memo)
                if dep == "wait":
                    self.pending.append(job)
                    continue
                if dep == "failed":
                    claim = self._claim(job)
                    if claim is None:
                        self.pending.append(job)
                    elif claim:
                        pid = job.deps[0]
                        rec = dependency_failed_record(self.suite.name, self.cells[job.key], pid,
                                                       self.pretrain_failed[pid])
                        write_json_atomic(self._result_path(job), rec)
                        claim.release()
                        self._done(job, {"status": "failed", "reason": rec["reason"]})
                    continue
            claim = self._claim(job)
            if claim is False:
                continue
            if claim is None:
                self.elsewhere.add(job.key)
                self.pending.append(job)
                continue
            self.elsewhere.discard(job.key)
            return job, claim
        return None

    def _execute_inline(self, job: Job, claim: Claim) -> None:
        self.attempts[job.key] = claim.attempt
        summary = execute_claimed(_job_dict(job), claim, heartbeat_s=self.s.heartbeat_s, job_fn=self.job_fn,
                                  suite_name=self.suite.name, cells=self.cells, results_root=self.plan.results_root,
                                  echo=self.say)
        self._done(job, summary)

    def _busy(self) -> bool:
        return any(s.job is not None for s in self.slots)

    def run(self) -> None:
        inline, threads, saved = self.s.workers == 0, None, {}
        if inline and self.s.device:  # the cells computed here use it (bench.batches.default_device)
            from bench.batches import DEVICE_ENV

            saved[DEVICE_ENV] = os.environ.get(DEVICE_ENV)
            os.environ[DEVICE_ENV] = self.s.device
        if inline and self.s.threads:
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(self.s.threads)
        try:
            return self._run(inline)
        finally:
            if threads is not None:
                torch.set_num_threads(threads)
            for key, value in saved.items():
                os.environ.pop(key) if value is None else os.environ.update({key: value})

    def _run(self, inline: bool) -> None:
        try:
            while self.pending or self._busy():
                progressed = False
                while inline or any(s.job is None for s in self.slots) or len(self.slots) < len(self.gpus):
                    nxt = self._next_ready()
                    if nxt is None:
                        break
                    job, claim = nxt
                    progressed = True
                    if job.kind == "svcca":
                        self.say(f"svcca {self.svcca_index[job.key]}/{self.svcca_total}: {job.label}")
                    if inline or job.kind == "na":
                        self._execute_inline(job, claim)
                        continue
                    slot = next((s for s in self.slots if s.job is None), None)
                    if slot is None:  # worker i gets the GPU self.gpus[i]; reuse the index of a dead one
                        used = {int(s.name[1:]) for s in self.slots}
                        slot = self._start_worker(min(set(range(len(self.slots) + 1)) - used))
                        self.slots.append(slot)
                    self._send(slot, job, claim)
                self._postfix()
                if self._busy():
                    self._collect(timeout=0.5)
                elif self.pending and not progressed:
                    time.sleep(0.5)  # everything left runs elsewhere, or waits for what does
        except BaseException:
            self._stop_workers(kill=True)
            raise
        finally:
            self.bar.close()
        self._stop_workers()

    def _send(self, slot: _Slot, job: Job, claim: Claim) -> None:
        self.attempts[job.key] = claim.attempt
        slot.job, slot.claim = job, claim
        slot.conn.send({"job": _job_dict(job), "claim_path": str(claim.path), "token": claim.token,
                        "attempt": claim.attempt})

    def _collect(self, timeout: float) -> None:
        from multiprocessing.connection import wait

        busy = [s for s in self.slots if s.job is not None]
        handles = {}
        for s in busy:
            handles[s.conn] = s
            handles[s.proc.sentinel] = s
        for h in wait(list(handles), timeout=timeout):
            slot = handles[h]
            if slot.job is None or slot not in self.slots:
                continue  # already handled (its pipe and its process both signalled)
            if h is slot.conn:
                try:
                    msg = slot.conn.recv()
                except (EOFError, OSError):
                    msg = None
                if msg is None:
                    self._crashed(slot)
                elif msg.get("ready"):
                    slot.ready = True
                else:
                    job = slot.job
                    slot.job, slot.claim = None, None
                    self._done(job, msg)
            elif not slot.proc.is_alive():
                self._crashed(slot)

    def _crashed(self, slot: _Slot) -> None:
        """The worker died under a job: retry it (new worker) or, after ``max_attempts``, record the failure."""
        job, claim = slot.job, slot.claim
        slot.job = slot.claim = None
        slot.proc.join(timeout=5)
        code = slot.proc.exitcode
        detail = (f"killed by signal {signal.Signals(-code).name}" if code is not None and code < 0
                  else f"exit code {code}")
        if not slot.ready:  # it never got as far as loading the suite: not the cell's fault
            claim.release()
            raise WorkerStartError(f"worker process {slot.name} could not start ({detail}; its error is printed "
                                   "above). If it could not import a plugin module, put it on PYTHONPATH.")
        self.say(f"worker {slot.name} died ({detail}) while running {job.label}")
        self.slots.remove(slot)  # a new worker starts when a job needs it
        claim.attempt = self.attempts.get(job.key, 1)
        if claim.attempt >= self.s.max_attempts:
            claim.attempt += 1
            self._give_up(job, claim, detail)
            return
        claim.release()
        self.pending.appendleft(job)


def _signature(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def run_local(plan: Plan, settings: ExecutorSettings, summary: RunSummary, *, say, progress: bool,
              job_fn: JobFn | None = None) -> None:
    """Run ``plan`` with the local scheduler; ``job_fn`` computes one job (default: the real one)."""
    LocalScheduler(plan, settings, summary, say=say, progress=progress, job_fn=job_fn).run()
