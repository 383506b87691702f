"""Execute one job (a cell or a source pre-training) and write its result; the worker-process loop.

Whatever happens inside a job becomes a result on disk, never an exception out of :func:`execute`:

- an exception becomes a ``failed`` record with the error class, message, traceback and the job's log;
- a NaN/Inf loss is :class:`bench.train.DivergedError` (error kind ``diverged``);
- an out-of-memory error is retried with half the batch per step and twice the gradient accumulation
  (the same effective batch), down to one image per step, before it becomes a failed record (kind ``oom``);
- a failed source pre-training writes a ``failed`` sidecar; the runner marks its dependent cells failed.

Records and checkpoints are written atomically (temp file + ``os.replace``), the record last.
The function that computes a job is a parameter (:data:`JobFn`; the real one is :func:`compute_job`):
:func:`execute` journals it and turns an exception out of it into a ``failed`` result too.
A worker process (:func:`worker_main`) runs jobs its runner sends it one at a time; it owns each job's
claim (heartbeat) while it runs, and exits when its runner is gone after finishing the job in hand.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.fileio import write_json_atomic
from bench.records import SCHEMA
from bench.runner.plan import SvccaJob, result_folder, svcca_jobs


@dataclass(frozen=True)
class SuiteSpec:
    """What a fresh process needs to rebuild the same suite (plugins are imported again)."""

    raw: dict
    name: str
    path: str | None

    @classmethod
    def of(cls, suite) -> SuiteSpec:
        return cls(raw=suite.config.model_dump(mode="json"), name=suite.name,
                   path=str(suite.path) if suite.path else None)

    def build(self):
        from bench.suite import build_suite

        return build_suite(self.raw, path=Path(self.path) if self.path else None, name=self.name)


def error_kind(exc: BaseException) -> str:
    from bench.train import DivergedError

    if isinstance(exc, DivergedError):
        return "diverged"
    if is_oom(exc):
        return "oom"
    return "exception"


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _user_error(exc: BaseException) -> bool:
    """Errors whose message is the whole story (no traceback needed in the progress output)."""
    from bench.errors import UserError

    return isinstance(exc, (FileNotFoundError, ValueError, KeyError, UserError))


def error_info(exc: BaseException, *, cause: str | None = None) -> dict:
    kind = error_kind(exc)
    return {"class": type(exc).__name__, "kind": kind, "message": str(exc), "cause": cause,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            # the message is the whole story: no traceback in the progress output (the record keeps it)
            "user_error": _user_error(exc) or kind in ("diverged", "oom")}


def job_targets(suite) -> dict:
    """What the job keys of ``suite`` name: its cells by cell id, its SVCCA runs (:class:`SvccaJob`) by analysis id."""
    return {**{c.cell_id: c for c in suite.cells}, **{j.analysis_id: j for j in svcca_jobs(suite)}}


def base_failed(suite: str, cell, *, reason: str, error: dict, log: list[str] | None = None) -> dict:
    """A ``failed`` record of a cell, or of an SVCCA run when ``cell`` is a :class:`SvccaJob`."""
    from bench.provenance import provenance

    fail = {"status": "failed", "reason": reason, "error": error, "traceback": error.get("traceback"),
            "log": (log or [])[-200:]}
    if isinstance(cell, SvccaJob):
        return {**cell.record_head(suite), **fail, "layers": [], "provenance": provenance()}
    from bench.runner.cell import base_record

    return {**base_record(suite, cell), **fail, "metrics": {}, "predictions": None, "history": [],
            "provenance": provenance()}


def failed_record(suite: str, cell, exc: BaseException, *, log: list[str] | None = None,
                  cause: str | None = None) -> dict:
    """A ``failed`` record for ``cell`` from an exception."""
    return base_failed(suite, cell, reason=f"{type(exc).__name__}: {exc}", error=error_info(exc, cause=cause),
                       log=log)


def dependency_failed_record(suite: str, cell, pretrain_id: str, reason: str) -> dict:
    """A ``failed`` record for a cell whose source pre-training failed."""
    msg = f"source pre-training {pretrain_id} failed: {reason}"
    return base_failed(suite, cell, reason=f"DependencyFailed: {msg}",
                       error={"class": "DependencyFailed", "kind": "dependency", "message": msg,
                              "cause": f"pretrain {pretrain_id}", "traceback": None, "user_error": True})


def crashed_record(suite: str, cell, detail: str, attempts: int) -> dict:
    """A ``failed`` record for a cell whose worker process died under it."""
    msg = f"the worker process died while computing this cell ({detail}); {attempts} attempt(s)"
    return base_failed(suite, cell, reason=f"WorkerCrashed: {msg}",
                       error={"class": "WorkerCrashed", "kind": "crash", "message": msg, "cause": None,
                              "traceback": None, "user_error": False})


def with_oom_retry(fn, batch_size: int, log):
    """``fn(grad_accum)``, retried on out-of-memory with twice the accumulation until 1 image per step."""
    accum = 1
    while True:
        try:
            return fn(accum), accum
        except Exception as exc:
            if not is_oom(exc) or accum * 2 > batch_size:
                raise
            accum *= 2
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            log(f"out of memory ({type(exc).__name__}); retrying with {batch_size // accum} images per step and "
                f"{accum}-step gradient accumulation (effective batch {batch_size} kept)")


JOURNAL = ".journal.jsonl"


def journal(folder: Path, event: str, key: str, **extra) -> None:
    """Append one line to ``<folder>/.journal.jsonl`` (start/end of every job, who ran it): an audit trail.

    Lines are short single ``O_APPEND`` writes, which POSIX keeps whole between concurrent writers."""
    import json
    import platform

    line = json.dumps({"event": event, "key": key, "host": platform.node(), "pid": os.getpid(),
                       "time": time.time(), **extra}) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


JobFn = Callable[..., dict]
"""Computes one job: ``job_fn(job, *, suite_name, cells, results_root, echo) -> summary``.

``job`` is ``{"key", "kind" ("pretrain" | "cell" | "na"), "config"}``; ``cells`` maps cell ids to cells;
``echo(msg)`` prints a progress line. It writes the job's result (a cell's record under
``results_root/suite_name``, a pre-training's checkpoint and sidecar under ``results_root/pretrain``) and
returns ``{"key", "kind", "status" ("ok" | "na" | "failed"), "reason", "seconds"}``, plus ``error_kind`` and
``traceback`` (None for a user error) when it failed. If it raises, :func:`execute` writes the failure."""


def execute(job: dict, *, suite_name: str, cells: dict, results_root: Path, echo=None,
            job_fn: JobFn | None = None) -> dict:
    """Run one job with ``job_fn`` (default :func:`compute_job`) and write its result; return a short summary
    for the runner (never raises an ``Exception``: one out of ``job_fn`` becomes a failed result)."""
    folder = result_folder(results_root, suite_name, job["kind"])
    journal(folder, "start", job["key"], kind=job["kind"])
    t0 = time.perf_counter()
    try:
        summary = (job_fn or compute_job)(job, suite_name=suite_name, cells=cells, results_root=results_root,
                                          echo=echo)
    except Exception as exc:  # noqa: BLE001 - a failure is a result, and the suite goes on
        summary = write_failure(job, exc, suite_name=suite_name, cells=cells, results_root=results_root, t0=t0)
    journal(folder, "end", job["key"], kind=job["kind"], status=summary["status"])
    return summary


def write_failure(job: dict, exc: BaseException, *, suite_name: str, cells: dict, results_root: Path,
                  log: list[str] | None = None, t0: float) -> dict:
    """Write the ``failed`` result of ``job`` (a cell's record, a pre-training's sidecar) for ``exc``; return
    the runner's summary of it."""
    from bench.provenance import provenance, record_provenance
    from bench.records import pretrain_paths, record_path

    key, kind = job["key"], job["kind"]
    if kind == "pretrain":
        err = error_info(exc)
        meta = {"schema": SCHEMA, "status": "failed", "cell_id": key, "config": job["config"],
                "reason": f"{type(exc).__name__}: {exc}", "error": err, "log": (log or [])[-200:],
                "provenance": provenance()}
        write_json_atomic(pretrain_paths(results_root, key)[1], meta)
        return {"key": key, "kind": kind, "status": "failed", "reason": meta["reason"], "error_kind": err["kind"],
                "traceback": None if err["user_error"] else err["traceback"], "seconds": time.perf_counter() - t0}
    rec = failed_record(suite_name, cells[key], exc, log=log)
    if kind != "svcca":
        rec["provenance"] = record_provenance(rec, results_root)
    write_json_atomic(record_path(result_folder(results_root, suite_name, kind), key), rec)
    return record_summary(job, rec, t0)


def record_summary(job: dict, rec: dict, t0: float) -> dict:
    """The runner's summary of a cell's record."""
    summary = {"key": job["key"], "kind": job["kind"], "status": rec["status"], "reason": rec.get("reason"),
               "seconds": time.perf_counter() - t0}
    if rec["status"] == "failed":
        summary["error_kind"] = rec["error"]["kind"]
        summary["traceback"] = None if rec["error"].get("user_error") else rec["error"].get("traceback")
    return summary


def log_collector(echo=None) -> tuple[list[str], Callable[[str], None]]:
    """``(lines, log)``: ``log(msg)`` keeps each message of a job (for its record) and echoes it when asked."""
    lines: list[str] = []

    def log(msg: str) -> None:
        lines.append(msg)
        if echo:
            echo(msg)

    return lines, log


def compute_job(job: dict, *, suite_name: str, cells: dict, results_root: Path, echo=None) -> dict:
    """The real :data:`JobFn`: train a source network or compute a cell (out-of-memory retries included)."""
    from bench.provenance import record_provenance
    from bench.records import record_path

    lines, log = log_collector(echo)
    t0 = time.perf_counter()
    key, kind = job["key"], job["kind"]
    if kind == "pretrain":
        from bench.runner.pretrain import ensure_pretrained

        cfg = job["config"]
        try:
            _, accum = with_oom_retry(lambda a: ensure_pretrained(cfg, key, results_root, log=log, grad_accum=a),
                                      cfg["batch_size"], log)
            return {"key": key, "kind": kind, "status": "ok", "reason": None, "seconds": time.perf_counter() - t0}
        except Exception as exc:  # noqa: BLE001 - a failed pre-training is a failed sidecar
            return write_failure(job, exc, suite_name=suite_name, cells=cells, results_root=results_root,
                                 log=lines, t0=t0)

    from bench.runner.cell import run_cell

    cell = cells[key]
    out = results_root / suite_name
    try:
        ft = cell.settings.finetune
        batch = ft.batch_size if ft is not None else 1
        rec, accum = with_oom_retry(lambda a: run_cell(cell, suite=suite_name, results_root=results_root, log=log,
                                                       grad_accum=a), batch, log)
        if accum > 1:
            rec["oom_retries"] = accum.bit_length() - 1
        rec["log"] = lines[-200:]
    except Exception as exc:  # noqa: BLE001 - a failure is a record, and the suite goes on
        return write_failure(job, exc, suite_name=suite_name, cells=cells, results_root=results_root, log=lines,
                             t0=t0)
    rec["provenance"] = record_provenance(rec, results_root)
    write_json_atomic(record_path(out, key), rec)
    return record_summary(job, rec, t0)


def execute_claimed(job: dict, claim, *, heartbeat_s: float, **kw) -> dict:
    """:func:`execute` while owning ``claim`` (heartbeat on), then release it."""
    claim.adopt()
    claim.start_heartbeat(heartbeat_s)
    try:
        return execute(job, **kw)
    finally:
        claim.release()


def worker_main(conn, spec: SuiteSpec, results_root: str, threads: int, gpu: str | None, heartbeat_s: float,
                name: str, job_fn: JobFn | None = None) -> None:
    """Body of a local worker process: receive jobs on ``conn``, execute them with ``job_fn`` (default
    :func:`compute_job`), send back summaries."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the runner, which stops its workers
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before torch initialises CUDA
    import multiprocessing as mp

    import torch

    from bench.runner.claims import Claim

    torch.set_num_threads(threads)
    suite = spec.build()
    cells = job_targets(suite)
    parent = mp.parent_process()
    root = Path(results_root)

    def echo(msg: str) -> None:
        print(f"[{name}] {msg}", file=sys.stderr, flush=True)

    conn.send({"ready": True, "pid": os.getpid()})
    while True:
        if not conn.poll(1.0):
            if parent is not None and not parent.is_alive():
                return
            continue
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        job, claim = msg["job"], Claim(path=Path(msg["claim_path"]), token=msg["token"], attempt=msg["attempt"])
        summary = execute_claimed(job, claim, heartbeat_s=heartbeat_s, job_fn=job_fn, suite_name=spec.name,
                                  cells=cells, results_root=root, echo=echo)
        try:
            conn.send(summary)
        except (BrokenPipeError, OSError):
            return  # the runner is gone; the result is on disk
