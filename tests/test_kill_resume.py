"""Crash-safe resume: ``kill -9`` of the runner or of a worker, at several points, then ``bench run`` again.

Checked: nothing on disk is ever half-written (every record parses, every checkpoint loads with
``weights_only=True``); no finished record is ever rewritten; only the jobs that were in flight are
started again; and the final records and report equal those of an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from bench.cli import write_suite_reports
from bench.records import read_record
from bench.runner import suite_records
from bench.runner.claims import read_claim
from bench.runner.worker import JOURNAL
from bench.suite import build_suite
from conftest import child_env

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent

RAW = {"name": "killme", "plugins": ["plugins_faults"],
       "axes": {"backbone": ["fault_slow"], "source": ["random", "synth-ddsm"], "ft_fraction": [0, 0.25],
                "target": ["synth-inbreast"], "transfer": ["full"], "seeds": 1},
       "image_size": 32, "pretrain": {"epochs": 1, "batch_size": 16, "val_fraction": 0.0},
       "finetune": {"epochs": 1, "batch_size": 8},
       "data": {"synth-inbreast": {"n_images": 40}, "synth-ddsm": {"n_images": 64}},
       "executor": {"threads": 1}}  # bit-identical results need the same torch thread count in every run


def _start(suite_file: Path, results: Path, workers: int, sleep: float = 0.25) -> subprocess.Popen:
    env = child_env(REPO, REPO / "tests", BENCH_FAULT_SLEEP=str(sleep))
    return subprocess.Popen([sys.executable, "-m", "bench", "run", str(suite_file), "--workers", str(workers),
                             "--no-progress", "--results", str(results), "--reports", str(results.parent / "rep")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: kill -9 takes its workers too


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.time()
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"the runner finished before the kill point: {proc.stderr.read()}")
        if time.time() - t0 > timeout:
            pytest.fail("kill point never reached")
        time.sleep(0.02)


def _claims(folder: Path) -> list[dict]:
    return [{**(read_claim(p)[0] or {}), "key": p.stem} for p in (folder / ".claims").glob("*.claim")]


def _in_flight(folder: Path) -> list[dict]:
    """Claims of jobs that have started (journal) and not ended: a kill now interrupts them."""
    path = folder / JOURNAL
    events = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    started = Counter(e["key"] for e in events if e["event"] == "start")
    ended = Counter(e["key"] for e in events if e["event"] == "end")
    return [c for c in _claims(folder) if started[c["key"]] > ended[c["key"]]]


def _finished(folder: Path) -> dict[str, tuple]:
    out = {}
    for p in folder.glob("*.json"):
        rec = read_record(p)
        if rec is not None and rec.get("status") in ("ok", "na"):
            st = p.stat()
            out[p.name] = (st.st_ino, st.st_mtime_ns)
    return out


def _check_store(root: Path, suite_dir: Path) -> None:
    """Every file a reader can see is whole."""
    for p in list(suite_dir.glob("*.json")) + list((root / "pretrain").glob("*.json")):
        assert isinstance(json.loads(p.read_text()), dict), p
    for p in (root / "pretrain").glob("*.pt"):
        assert torch.load(p, map_location="cpu", weights_only=True)


def test_kill_at_several_points_then_resume_equals_an_uninterrupted_run(tmp_path):
    suite = build_suite(json.loads(json.dumps(RAW)))
    suite_file = tmp_path / "killme.yaml"
    suite_file.write_text(yaml.safe_dump(RAW))
    # The reference runs in a fresh process like every other run here: torch state left behind by other
    # tests in this process could change the last bits of a float.  The sleep changes no number.
    ref_root = tmp_path / "ref"
    ref = _start(suite_file, ref_root, workers=0, sleep=0)
    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err

    root = tmp_path / "res"
    out = root / "killme"
    snapshots: list[dict] = []

    def records() -> int:
        return len(_finished(out))

    # 1. kill -9 the runner (jobs run in its own process) while a source pre-training is in flight.
    p = _start(suite_file, root, workers=0)
    _wait_for(lambda: bool(_in_flight(root / "pretrain")), p)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    _check_store(root, out)
    snapshots.append(_finished(out))

    # 2. one worker process: kill -9 the worker in the middle of a cell (the runner retries it), then the
    #    runner and its worker together, each time while a cell is in flight.
    p = _start(suite_file, root, workers=1)
    done_before = records()

    def worker_busy() -> list[int]:
        return [c["pid"] for c in _in_flight(out) if c.get("pid") not in (None, p.pid)]

    _wait_for(lambda: records() >= done_before + 1 and worker_busy(), p)
    os.kill(worker_busy()[0], signal.SIGKILL)
    _wait_for(lambda: records() >= done_before + 3 and worker_busy(), p)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(0.3)
    _check_store(root, out)
    snapshots.append(_finished(out))

    # 3. resume to the end.
    p = _start(suite_file, root, workers=0)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    _check_store(root, out)

    final = _finished(out)
    for snap in snapshots:  # no finished record was ever rewritten
        assert {k: final[k] for k in snap} == snap

    events = [json.loads(x) for x in (out / JOURNAL).read_text().splitlines()]
    events += [json.loads(x) for x in (root / "pretrain" / JOURNAL).read_text().splitlines()]
    starts = Counter(e["key"] for e in events if e["event"] == "start")
    ends = Counter(e["key"] for e in events if e["event"] == "end")
    assert set(ends.values()) == {1}  # every job finished exactly once
    interrupted = sum(starts.values()) - sum(ends.values())
    assert interrupted == 3  # only what was in flight at the three kills was started again

    ref = {r["cell_id"]: r for r in suite_records(suite, ref_root)}
    got = {r["cell_id"]: r for r in suite_records(suite, root)}
    assert set(got) == set(ref) == {c.cell_id for c in suite.cells}
    for cid, r in ref.items():
        assert got[cid]["status"] == r["status"]
        assert got[cid]["metrics"] == r["metrics"] and got[cid]["predictions"] == r["predictions"]
    a = write_suite_reports(list(ref.values()), "killme", tmp_path / "rep_ref").read_text()
    b = write_suite_reports(list(got.values()), "killme", tmp_path / "rep_got").read_text()
    assert a == b


def test_sigterm_stops_the_runner_and_its_workers_and_the_rerun_completes(tmp_path):
    """``kill PID`` (SIGTERM) of ``bench run --workers 1`` while its worker is in the middle of a cell: the runner
    says so and exits with 143, its worker does not outlive it (it used to finish its job as an orphan), and the
    same command then completes the suite."""
    suite_file = tmp_path / "killme.yaml"
    suite_file.write_text(yaml.safe_dump(RAW))
    root = tmp_path / "res"
    out = root / "killme"
    p = _start(suite_file, root, workers=1, sleep=2.0)  # 2 s per training step: the worker is busy for a while

    def worker_busy() -> list[int]:
        return [c["pid"] for c in _in_flight(out) + _in_flight(root / "pretrain") if c.get("pid") not in (None, p.pid)]

    _wait_for(worker_busy, p)
    worker = worker_busy()[0]
    os.kill(p.pid, signal.SIGTERM)  # the runner only, as `kill PID` does: not its process group
    _, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    assert "terminated (SIGTERM): finished cells are saved" in err and "Traceback" not in err, err
    deadline = time.time() + 10
    while time.time() < deadline and Path(f"/proc/{worker}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{worker}").exists(), f"worker {worker} outlived its runner"
    _check_store(root, out)
    p = _start(suite_file, root, workers=0, sleep=0)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    suite = build_suite(json.loads(json.dumps(RAW)))
    assert sum(1 for rec in suite_records(suite, root) if rec.get("status") in ("ok", "na")) == len(suite.cells)
