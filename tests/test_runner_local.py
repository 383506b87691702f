"""The local scheduler with a stand-in job function: claims, dependencies, failures, crashes (milliseconds each,
no network is trained; :mod:`tests.test_runner` keeps the end-to-end runs)."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.fileio import write_json_atomic
from bench.records import pretrain_paths, read_record, record_path
from bench.runner import build_plan, executor_settings
from bench.runner.claims import read_claim, try_claim
from bench.runner.executors import RunSummary, run_local
from bench.runner.local import LocalScheduler
from bench.runner.plan import result_folder, svcca_dir
from bench.runner.worker import JOURNAL, compute_job, error_info
from bench.suite import build_suite
from conftest import child_env

RAW = {"name": "local", "axes": {"backbone": ["toy_cnn"], "source": ["random", "synth-ddsm"], "ft_fraction": [0, 0.25],
                                 "target": ["synth-inbreast"], "transfer": ["full"], "seeds": 2},
       "image_size": 32}
ERROR_KEYS = {"class", "kind", "message", "cause", "traceback", "user_error"}


@dataclass
class StandIn:
    """A job function that trains nothing: it sleeps ``sleep`` seconds and writes a minimal result.

    It raises for the keys in ``raise_for``, returns a failed result for those in ``fail_for``, and SIGKILLs
    its own worker process for those in ``crash_for`` (only in a worker: never pytest itself). Module-level and
    picklable, so worker processes can run it; ``calls`` is filled in the process that calls it."""

    sleep: float = 0.002
    raise_for: frozenset = frozenset()
    fail_for: frozenset = frozenset()
    crash_for: frozenset = frozenset()
    calls: list = field(default_factory=list)

    def __call__(self, job: dict, *, suite_name: str, cells: dict, results_root: Path, echo=None) -> dict:
        key, kind = job["key"], job["kind"]
        self.calls.append((key, kind, threading.current_thread().name))
        time.sleep(self.sleep)
        if key in self.crash_for and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        if key in self.raise_for:
            raise RuntimeError(f"injected fault in {key}")
        status = "failed" if key in self.fail_for else "na" if kind == "na" else "ok"
        reason = "StandInFailure: told to fail" if status == "failed" else None
        if kind == "pretrain":
            ckpt, meta = pretrain_paths(results_root, key)
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            ckpt.write_bytes(b"")
            write_json_atomic(meta, {"status": status, "cell_id": key, "config": job["config"], "reason": reason})
        else:
            rec = {"schema": 1, "suite": suite_name, "cell_id": key, "status": status, "reason": reason}
            if status == "failed":
                rec["error"] = error_info(RuntimeError("told to fail"))
            write_json_atomic(record_path(result_folder(results_root, suite_name, kind), key), rec)
        out = {"key": key, "kind": kind, "status": status, "reason": reason, "seconds": self.sleep}
        if status == "failed":
            out.update(error_kind="exception", traceback=None)
        return out


def _plan(tmp_path, **axes):
    suite = build_suite({**RAW, "axes": {**RAW["axes"], **axes}})
    return suite, build_plan(suite, tmp_path)


def _run(plan, job_fn, *, said=None, **settings) -> RunSummary:
    summary = RunSummary(results_dir=plan.out)
    settings = executor_settings(plan.suite, **{"workers": 0, **settings})
    run_local(plan, settings, summary, say=(said.append if said is not None else lambda m: None), progress=False,
              job_fn=job_fn)
    return summary


def _starts(folder: Path) -> Counter:
    p = folder / JOURNAL
    lines = [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []
    return Counter(e["key"] for e in lines if e["event"] == "start")


def _record(plan, cell) -> dict:
    return read_record(record_path(plan.out, cell.cell_id))


def test_the_real_job_function_is_the_default():
    suite, plan = _plan(Path("/nonexistent"))
    sched = LocalScheduler(plan, executor_settings(suite, workers=0), RunSummary(results_dir=plan.out),
                           say=print, progress=False)
    assert sched.job_fn is compute_job


def test_every_job_runs_once_pretraining_before_its_cells_and_the_summary_counts_them(tmp_path):
    suite, plan = _plan(tmp_path)
    fn = StandIn()
    summary = _run(plan, fn)
    order = [k for k, _, _ in fn.calls]
    assert sorted(order) == sorted(j.key for j in plan.jobs) and len(set(order)) == len(order)
    for c in suite.cells:
        if c.pretrain_id and not c.na_reason:
            assert order.index(c.pretrain_id) < order.index(c.cell_id)
    n_na = sum(1 for c in suite.cells if c.na_reason)
    assert summary.na == n_na and summary.computed == len(suite.cells) - n_na and summary.pretrained == 2
    assert summary.failed == 0 and set(_starts(plan.out).values()) == {1}
    assert not list((plan.out / ".claims").glob("*.claim"))
    assert build_plan(suite, tmp_path).jobs == []  # everything is done: a second plan has nothing to run


def test_a_job_function_that_raises_or_fails_becomes_a_failed_record_and_the_rest_completes(tmp_path):
    suite, plan = _plan(tmp_path, source=["random"], ft_fraction=[0.25, 0.5])
    raised, failed, *rest = suite.cells
    said: list[str] = []
    summary = _run(plan, StandIn(raise_for={raised.cell_id}, fail_for={failed.cell_id}), said=said)
    rec = _record(plan, raised)
    assert rec["status"] == "failed" and rec["reason"] == f"RuntimeError: injected fault in {raised.cell_id}"
    assert set(rec["error"]) == ERROR_KEYS and rec["error"]["class"] == "RuntimeError"
    assert rec["error"]["kind"] == "exception" and "Traceback" in rec["error"]["traceback"]
    assert rec["cell"]["backbone"] == "toy_cnn" and rec["provenance"]
    assert _record(plan, failed)["status"] == "failed"
    assert all(_record(plan, c)["status"] == "ok" for c in rest)
    assert summary.failed == 2 and summary.computed == len(rest)
    assert {k for k, _ in summary.failures} == {raised.cell_id, failed.cell_id}
    assert any(f"cell {raised.cell_id}" in m and "FAILED: RuntimeError: injected fault" in m for m in said)


def test_a_pretraining_that_raises_fails_its_cells_as_dependency_failures(tmp_path):
    suite, plan = _plan(tmp_path, ft_fraction=[0.25], seeds=1)
    pid = next(iter(plan.pretrain))
    fn = StandIn(raise_for={pid})
    summary = _run(plan, fn)
    meta = read_record(pretrain_paths(tmp_path, pid)[1])
    assert meta["status"] == "failed" and set(meta["error"]) == ERROR_KEYS
    users = [c for c in suite.cells if c.pretrain_id == pid]
    others = [c for c in suite.cells if c.pretrain_id != pid]
    assert users and others
    for c in users:
        rec = _record(plan, c)
        assert rec["status"] == "failed" and set(rec["error"]) == ERROR_KEYS
        assert rec["error"]["kind"] == "dependency" and "injected fault" in rec["reason"]
    assert {k for k, _, _ in fn.calls} == {pid} | {c.cell_id for c in others}  # its cells never start
    assert summary.failed == len(users) and summary.pretrained == 0


def test_a_job_claimed_by_a_live_runner_elsewhere_is_waited_for_not_run(tmp_path):
    suite, plan = _plan(tmp_path, source=["random"], ft_fraction=[0.25], seeds=2)
    theirs, mine = suite.cells
    claim = try_claim(plan.out, theirs.cell_id, stale_after_s=60)  # held by a live owner (this process)

    def other_runner():
        time.sleep(0.3)
        write_json_atomic(record_path(plan.out, theirs.cell_id), {"cell_id": theirs.cell_id, "status": "ok"})
        claim.release()

    t = threading.Thread(target=other_runner)
    t.start()
    fn = StandIn()
    summary = _run(plan, fn)
    t.join()
    assert [k for k, _, _ in fn.calls] == [mine.cell_id]
    assert summary.by_others == 1 and summary.computed == 1


def _dead_pid() -> int:
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


def _leave_claim(folder: Path, key: str, attempt: int) -> None:
    """A claim left by a runner on this host that was killed (``kill -9``) during attempt ``attempt``."""
    c = try_claim(folder, key, stale_after_s=60)
    info, _ = read_claim(c.path)
    c.path.write_text(json.dumps({**info, "pid": _dead_pid(), "attempt": attempt}))


def test_a_stale_claim_is_taken_over_and_given_up_after_max_attempts(tmp_path):
    suite, plan = _plan(tmp_path, source=["random"], ft_fraction=[0.25], seeds=2)
    retried, given_up = suite.cells
    _leave_claim(plan.out, retried.cell_id, attempt=1)
    _leave_claim(plan.out, given_up.cell_id, attempt=2)
    fn = StandIn()
    summary = _run(plan, fn, max_attempts=2)
    assert [k for k, _, _ in fn.calls] == [retried.cell_id]
    rec = _record(plan, given_up)
    assert rec["status"] == "failed" and rec["error"]["class"] == "WorkerCrashed" and set(rec["error"]) == ERROR_KEYS
    assert "2 attempt(s)" in rec["reason"]
    assert summary.computed == 1 and summary.failed == 1
    assert not list((plan.out / ".claims").glob("*.claim"))


def runner_main(root: str, sleep: str) -> None:
    """One runner process of the test below: ``python -c 'from test_runner_local import runner_main; ...'``."""
    _, plan = _plan(Path(root), ft_fraction=[0.25, 0.5], seeds=3)
    s = _run(plan, StandIn(sleep=float(sleep)))
    print(json.dumps({"computed": s.computed, "by_others": s.by_others}))


def test_two_runner_processes_on_one_folder_never_run_the_same_job_twice(tmp_path):
    suite, plan = _plan(tmp_path, ft_fraction=[0.25, 0.5], seeds=3)
    here = str(Path(__file__).parent)
    env = child_env(Path(here).parent, here)
    code = f"from test_runner_local import runner_main; runner_main({str(tmp_path)!r}, '0.25')"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    starts = _starts(plan.out) + _starts(tmp_path / "pretrain")
    assert set(starts) == {j.key for j in plan.jobs} and set(starts.values()) == {1}
    pids = Counter(json.loads(x)["pid"] for x in (plan.out / JOURNAL).read_text().splitlines())
    assert len(pids) == 2  # both runners did part of the work
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert sum(s["computed"] for s in summaries) == len(suite.cells)
    assert sum(s["by_others"] for s in summaries) <= len(suite.cells)
    assert all(_record(plan, c)["status"] == "ok" for c in suite.cells)


@pytest.mark.slow
def test_a_worker_killed_under_a_job_is_retried_then_recorded_and_the_rest_completes(tmp_path):
    suite, plan = _plan(tmp_path, source=["random"], ft_fraction=[0.25, 0.5], seeds=1)
    crash, ok = suite.cells
    said: list[str] = []
    summary = _run(plan, StandIn(crash_for={crash.cell_id}), said=said, workers=1, max_attempts=2)
    rec = _record(plan, crash)
    assert rec["status"] == "failed" and rec["error"]["class"] == "WorkerCrashed" and set(rec["error"]) == ERROR_KEYS
    assert "SIGKILL" in rec["reason"] and "2 attempt(s)" in rec["reason"]
    assert _starts(plan.out)[crash.cell_id] == 2 and _record(plan, ok)["status"] == "ok"
    assert summary.failed == 1 and summary.computed == 1
    assert any("died (killed by signal SIGKILL)" in m for m in said)
    assert not list((plan.out / ".claims").glob("*.claim"))


def test_svcca_runs_are_jobs_after_their_pretraining_and_fail_like_cells(tmp_path):
    raw = {**RAW, "axes": {**RAW["axes"], "ft_fraction": [0.25], "seeds": 1},
           "analysis": {"svcca": {"targets": ["synth-inbreast", "synth-mias"]}}}
    suite = build_suite(raw)
    plan = build_plan(suite, tmp_path)
    assert [j.kind for j in plan.jobs] == ["pretrain", "cell", "cell", "svcca", "svcca"]
    with pytest.raises(ValueError, match="compute_job_or_svcca"):  # the default job function computes no SVCCA
        LocalScheduler(plan, executor_settings(suite, workers=0), RunSummary(results_dir=plan.out), say=print,
                       progress=False)
    bad, good = plan.analyses
    fn = StandIn(raise_for={bad.key})
    summary = _run(plan, fn)
    order = [k for k, _, _ in fn.calls]
    assert order.index(bad.deps[0]) < order.index(bad.key) and order[-2:] == [bad.key, good.key]
    rec = read_record(record_path(svcca_dir(tmp_path, suite.name), bad.key))
    assert rec["status"] == "failed" and rec["kind"] == "svcca" and rec["layers"] == []
    assert set(rec["error"]) == ERROR_KEYS and rec["error"]["message"] == f"injected fault in {bad.key}"
    assert rec["job"] == bad.analysis.axes and rec["analysis_id"] == bad.key
    assert summary.analyses == 1 and summary.analyses_failed == 1 and summary.computed == 2
    assert [k for k, _ in summary.analysis_failures] == [bad.key] and summary.failed == 0


def test_svcca_runs_of_a_failed_pretraining_fail_as_dependency_failures(tmp_path):
    raw = {**RAW, "axes": {**RAW["axes"], "source": ["synth-ddsm"], "ft_fraction": [0.25], "seeds": 1},
           "analysis": {"svcca": {"targets": ["synth-inbreast"]}}}
    suite = build_suite(raw)
    plan = build_plan(suite, tmp_path)
    pid = next(iter(plan.pretrain))
    fn = StandIn(raise_for={pid})
    summary = _run(plan, fn)
    rec = read_record(record_path(svcca_dir(tmp_path, suite.name), plan.analyses[0].key))
    assert rec["status"] == "failed" and rec["error"]["kind"] == "dependency" and set(rec["error"]) == ERROR_KEYS
    assert [k for k, _, _ in fn.calls] == [pid] and summary.analyses_failed == 1
