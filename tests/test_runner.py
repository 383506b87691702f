"""The runner at scale: claims, derived seeds, the plan, failure isolation end to end, submitit (the scheduler's own
tests, with a stand-in job function, are in tests/test_runner_local.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.cli import main
from bench.records import load_records
from bench.runner import build_plan, executor_settings, run_suite
from bench.runner.claims import claim_path, list_claims, read_claim, try_claim
from bench.runner.plan import format_plan
from bench.runner.seeds import cell_seeds, derive_seed
from bench.runner.worker import JOURNAL
from bench.suite import build_suite

REPO = Path(__file__).resolve().parent.parent
QUIET = {"progress": False, "log": lambda m: None}


def _suite(**over) -> dict:
    raw = {"name": "runner", "plugins": ["plugins_faults"],
           "axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0.25],
                    "target": ["synth-inbreast"], "transfer": ["full"], "seeds": 1},
           "image_size": 32, "pretrain": {"epochs": 1, "batch_size": 16, "val_fraction": 0.0},
           "finetune": {"epochs": 1, "batch_size": 8},
           "data": {"synth-inbreast": {"n_images": 40}, "synth-ddsm": {"n_images": 60}}}
    for k, v in over.items():
        if k == "axes":
            raw["axes"] = {**raw["axes"], **v}
        else:
            raw[k] = v
    return raw


def journal_starts(folder: Path) -> Counter:
    p = folder / JOURNAL
    lines = [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []
    return Counter(e["key"] for e in lines if e["event"] == "start")


# --------------------------------------------------------------------------- claims

def test_a_claim_is_exclusive_and_released_only_by_its_owner(tmp_path):
    a = try_claim(tmp_path, "cell1", stale_after_s=60)
    assert a is not None and a.attempt == 1
    assert try_claim(tmp_path, "cell1", stale_after_s=60) is None  # a live owner (this process)
    other = try_claim(tmp_path, "cell2", stale_after_s=60)
    assert other is not None
    a.release()
    assert not claim_path(tmp_path, "cell1").exists() and claim_path(tmp_path, "cell2").exists()


def test_a_claim_of_a_dead_process_is_taken_over_at_once(tmp_path):
    a = try_claim(tmp_path, "cell", stale_after_s=3600)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=False)
    info, _ = read_claim(a.path)
    a.path.write_text(json.dumps({**info, "pid": int(dead.stdout)}))  # the owner is gone (kill -9)
    b = try_claim(tmp_path, "cell", stale_after_s=3600)
    assert b is not None and b.attempt == 2 and b.token != a.token
    a.release()  # the old owner's release must not remove the new owner's claim
    assert claim_path(tmp_path, "cell").exists()


def test_a_claim_without_heartbeat_goes_stale(tmp_path):
    a = try_claim(tmp_path, "cell", stale_after_s=5)
    a.start_heartbeat(0.05)
    time.sleep(0.2)
    assert time.time() - a.path.stat().st_mtime < 1  # the heartbeat keeps it fresh
    a._stop.set()
    old = time.time() - 60
    os.utime(a.path, (old, old))  # no heartbeat for a minute (a worker on another host died)
    assert [c["stale"] for c in list_claims(tmp_path, 5)] == [True]
    assert try_claim(tmp_path, "cell", stale_after_s=5) is not None


# --------------------------------------------------------------------------- seeds and the plan

def test_seeds_hash_the_cells_own_axes_and_keep_the_design_paired():
    small = build_suite(_suite(axes={"source": ["random", "synth-ddsm"], "seeds": [0, 1]}))
    big = build_suite(_suite(axes={"source": ["random", "synth-ddsm"], "seeds": [0, 1, 7],
                                   "ft_fraction": [0.25, 0.5], "target": ["synth-inbreast", "synth-mias"]}))
    by_axes = {tuple(sorted(c.axes.items())): c for c in big.cells}
    for c in small.cells:  # adding axis values neither renames nor reseeds the existing cells
        twin = by_axes[tuple(sorted(c.axes.items()))]
        assert twin.cell_id == c.cell_id and cell_seeds(twin.axes) == cell_seeds(c.axes)
    seeds = {c.cell_id: cell_seeds(c.axes) for c in big.cells}
    for c in big.cells:
        for d in big.cells:
            same_init = (c.backbone, c.seed) == (d.backbone, d.seed)
            assert (seeds[c.cell_id]["init"] == seeds[d.cell_id]["init"]) == same_init
            same_split = (c.target, c.ft_fraction, c.seed) == (d.target, d.ft_fraction, d.seed)
            assert (seeds[c.cell_id]["split"] == seeds[d.cell_id]["split"]) == same_split
    assert derive_seed("a", 1) != derive_seed("a", 2) and 0 <= derive_seed("x") < 2 ** 31


def test_executor_settings_do_not_enter_cell_ids():
    a = build_suite(_suite())
    b = build_suite(_suite(executor={"kind": "slurm", "workers": 4, "array_parallelism": 3}))
    assert [c.cell_id for c in a.cells] == [c.cell_id for c in b.cells]
    assert executor_settings(b, workers=2).workers == 2 and executor_settings(b).kind == "slurm"


def test_plan_orders_pretraining_before_its_cells_and_lists_na(tmp_path):
    suite = build_suite(_suite(axes={"source": ["random", "imagenet", "synth-ddsm"], "ft_fraction": [0, 0.25]}))
    plan = build_plan(suite, tmp_path)
    kinds = [j.kind for j in plan.jobs]
    assert kinds[0] == "pretrain" and kinds.count("pretrain") == 1 and kinds.count("na") == 1
    pid = plan.jobs[0].key
    users = [j for j in plan.cells if j.deps]
    assert {j.cell.source for j in users} == {"synth-ddsm"} and all(j.deps == (pid,) for j in users)
    text = format_plan(plan)
    assert "1 to run" in text and "2 cell(s) wait for it" in text and "NA x1" in text and "estimate" in text


# --------------------------------------------------------------------------- failures

@pytest.mark.slow
def test_injected_failures_become_the_right_records_and_the_rest_completes(tmp_path, capsys):
    # 0.4 of 20 patients x 2 images = 16 fine-tune images: two batches of 8, i.e. 4 per step after one OOM retry
    raw = _suite(axes={"backbone": ["toy_cnn", "fault_raise", "fault_nan", "fault_oom"],
                       "source": ["random", "synth-ddsm"], "ft_fraction": [0.4]},
                 exclude=[{"backbone": ["toy_cnn", "fault_nan", "fault_oom"], "source": "synth-ddsm"}])
    suite = build_suite(raw)
    inline = executor_settings(suite, workers=0)
    first = run_suite(suite, results_root=tmp_path, executor=inline, **QUIET)
    recs = {(r["cell"]["backbone"], r["cell"]["source"]): r for r in load_records(tmp_path / "runner")}
    assert recs[("toy_cnn", "random")]["status"] == "ok"
    oom = recs[("fault_oom", "random")]
    assert oom["status"] == "ok" and oom["grad_accum"] == 2 and oom["oom_retries"] == 1  # half batch, same effect
    assert any("out of memory" in line for line in oom["log"])
    raised = recs[("fault_raise", "random")]
    assert raised["status"] == "failed" and raised["error"]["class"] == "RuntimeError"
    assert raised["error"]["message"] == "injected fault" and "Traceback" in raised["error"]["traceback"]
    nan = recs[("fault_nan", "random")]
    assert nan["status"] == "failed" and nan["error"]["kind"] == "diverged" and nan["error"]["class"] == "DivergedError"
    dep = recs[("fault_raise", "synth-ddsm")]
    assert dep["status"] == "failed" and dep["error"]["kind"] == "dependency" and "injected fault" in dep["reason"]
    pre = [json.loads(p.read_text()) for p in (tmp_path / "pretrain").glob("*.json")]
    assert [m["status"] for m in pre] == ["failed"]
    assert first.failed == 3 and first.computed == 2
    more = build_suite({**raw, "axes": {**raw["axes"], "seeds": 2}})  # the cost estimate uses recorded timings
    text = format_plan(build_plan(more, tmp_path))
    assert "estimate from recorded timings" in text and "rough" not in text  # same size and schedule: close match
    bigger = build_suite({**raw, "image_size": 48})  # only the same backbones at another size were recorded
    assert "of them rough (only the same backbone was recorded" in format_plan(build_plan(bigger, tmp_path))
    for r in recs.values():  # provenance in every record
        prov = r["provenance"]
        assert {"commit", "dirty", "torch", "cuda", "cudnn", "device", "hostname", "packages"} <= set(prov)
        if r["status"] == "ok":
            assert prov["split_hash"] == r["split"]["hash"]

    # Failed cells are kept: a second run recomputes nothing and says so.
    starts = journal_starts(tmp_path / "runner")
    second = run_suite(suite, results_root=tmp_path, executor=inline, **QUIET)
    assert second.kept_failed == 3 and second.computed == second.failed == 0 and second.skipped == 2
    assert journal_starts(tmp_path / "runner") == starts
    assert main(["status", str(tmp_path / "runner")]) == 0
    out = capsys.readouterr().out
    assert "done 2" in out and "failed 3" in out and "diverged 1" in out and "--retry-failed" in out

    # --retry-failed retries exactly the failures (the pre-training included).
    third = run_suite(suite, results_root=tmp_path, executor=inline, retry_failed=True, **QUIET)
    assert third.failed == 3 and third.computed == 0 and third.skipped == 2
    again = journal_starts(tmp_path / "runner")
    assert {k for k in again if again[k] == 2} == {r["cell_id"] for r in recs.values() if r["status"] == "failed"
                                                   and r["error"]["kind"] != "dependency"}
    assert sum(journal_starts(tmp_path / "pretrain").values()) == 2


# The scheduling itself (claims, a worker killed under a cell, two runners on one folder, failures turned into
# records) is tested with a stand-in job function in tests/test_runner_local.py, in milliseconds; the tests here
# train real (toy) networks end to end.


# --------------------------------------------------------------------------- submitit

@pytest.mark.slow
def test_the_submitit_executor_completes_a_suite(tmp_path):
    raw = _suite(axes={"source": ["random", "synth-ddsm"], "ft_fraction": [0, 0.25]},
                 executor={"kind": "slurm", "cluster": "local", "array_parallelism": 2, "timeout_min": 10,
                           "cpus_per_task": 1},
                 analysis={"svcca": {"targets": ["synth-inbreast"], "max_datapoints": 200}})  # one SVCCA run too
    suite = build_suite(raw)
    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests")] + ([env_path] if env_path else []))
    try:
        summary = run_suite(suite, results_root=tmp_path, **QUIET)
    finally:
        if env_path is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = env_path
    recs = load_records(tmp_path / "runner")
    assert len(recs) == len(suite.cells) and {r["status"] for r in recs} == {"ok"}
    assert summary.computed == 4 and summary.pretrained == 1 and summary.failed == 0
    assert summary.analyses == 1 and summary.analyses_failed == 0  # the SVCCA run is a job of the same arrays
    (svcca,) = load_records(tmp_path / "runner" / "svcca")
    assert svcca["status"] == "ok" and "submitit_local_job_id" in svcca["provenance"]["slurm"]
    assert all(r["provenance"]["slurm"] and "submitit_local_job_id" in r["provenance"]["slurm"] for r in recs)
    starts = journal_starts(tmp_path / "runner")
    assert set(starts.values()) == {1}


def test_a_run_removes_old_temp_files_left_by_a_kill_and_keeps_fresh_ones(tmp_path):
    """Atomic writes leave `.<name>.*.tmp` behind when killed; the next run deletes the old ones only (a runner
    sharing the folder may be writing a fresh one)."""
    from bench.runner import STALE_TEMP_SECONDS

    raw = {"name": "tmpclean", "axes": {"backbone": ["toy_cnn"], "source": ["imagenet"], "ft_fraction": [0],
                                        "target": ["synth-inbreast"]}}  # every cell NA: runs in no time
    suite = build_suite(raw)
    folder, pre = tmp_path / "tmpclean", tmp_path / "pretrain"
    folder.mkdir()
    pre.mkdir()
    old = [folder / ".abc.json.x1.tmp", pre / "xyz.pt.tmp"]
    fresh = folder / ".def.json.x2.tmp"
    for p in [*old, fresh]:
        p.write_text("partial")
    past = time.time() - STALE_TEMP_SECONDS - 60
    for p in old:
        os.utime(p, (past, past))
    run_suite(suite, results_root=tmp_path, progress=False, log=lambda m: None)
    assert not any(p.exists() for p in old) and fresh.exists()
