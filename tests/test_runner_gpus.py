"""Several worker processes per GPU (issue 15), on a machine with a simulated GPU count.

There is no GPU here: the tests replace :func:`bench.runner.local.gpu_free_gib` (the free memory of each GPU
torch sees) and check which ``CUDA_VISIBLE_DEVICES`` each worker process gets. The workers run a stand-in job
function that trains nothing and writes the ``CUDA_VISIBLE_DEVICES`` and process id it ran with.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from bench.fileio import write_json_atomic
from bench.records import read_record, record_path
from bench.runner import build_plan, executor_settings, local
from bench.runner.executors import RunSummary, run_local
from bench.runner.plan import result_folder
from bench.suite import ExecutorSettings, build_suite

RAW = {"name": "gpus", "axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0.25, 0.5],
                                "target": ["synth-inbreast"], "transfer": ["full"], "seeds": 2},
       "image_size": 32}


@dataclass
class WhereRan:
    """A job function that writes where it ran (``CUDA_VISIBLE_DEVICES`` and process id) into its record."""

    def __call__(self, job: dict, *, suite_name: str, cells: dict, results_root: Path, echo=None) -> dict:
        key, kind = job["key"], job["kind"]
        rec = {"schema": 1, "suite": suite_name, "cell_id": key, "status": "ok", "reason": None,
               "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid()}
        write_json_atomic(record_path(result_folder(results_root, suite_name, kind), key), rec)
        return {"key": key, "kind": kind, "status": "ok", "reason": None, "seconds": 0.0}


@pytest.fixture
def gpus(monkeypatch):
    """Simulate GPUs: call with the free GiB of each (and the CPU cores)."""
    def simulate(free_gib: list[float], cores: int = 16) -> None:
        monkeypatch.setattr(local, "gpu_free_gib", lambda: list(free_gib))
        monkeypatch.setattr(local.os, "cpu_count", lambda: cores)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return simulate


def test_auto_workers_per_gpu_follows_memory_and_cores(gpus):
    assert local.auto_workers_per_gpu([140.0], 16) == 8  # capped at 8
    assert local.auto_workers_per_gpu([140.0, 140.0], 8) == 4  # 8 cores for 2 GPUs
    assert local.auto_workers_per_gpu([10.0], 16) == 2  # 10 GiB free: 2 workers of 4 GiB
    assert local.auto_workers_per_gpu([1.0], 1) == 1  # never fewer than one


def test_workers_per_gpu_lays_out_workers_gpu_by_gpu(gpus, monkeypatch):
    gpus([80.0, 80.0], cores=16)
    assert local.worker_gpus(ExecutorSettings()) == ["0"] * 8 + ["1"] * 8  # default: auto, 8 per GPU
    assert local.worker_gpus(ExecutorSettings(workers_per_gpu=3)) == ["0", "0", "0", "1", "1", "1"]
    assert local.worker_gpus(ExecutorSettings(workers=3)) == ["0", "0", "1"]  # workers given: spread evenly
    assert local.worker_gpus(ExecutorSettings(workers_per_gpu=2, device="cuda:1")) == ["1", "1"]
    assert local.worker_gpus(ExecutorSettings(workers=2, device="cpu")) == ["", ""]  # GPUs hidden
    assert local.worker_gpus(ExecutorSettings(workers=0)) == []  # in this process
    with pytest.raises(ValueError, match="has 2 GPU"):
        local.worker_gpus(ExecutorSettings(device="cuda:2"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # the runner itself sees two of the machine's GPUs
    assert local.worker_gpus(ExecutorSettings(workers_per_gpu=1)) == ["4", "6"]


def test_without_gpus_workers_are_cpu_workers_as_before(gpus):
    gpus([])
    assert local.worker_gpus(ExecutorSettings()) == [None]
    assert local.worker_gpus(ExecutorSettings(workers=3, workers_per_gpu=4)) == [None] * 3


def test_n_workers_start_per_gpu_each_pinned_to_its_gpu(gpus, tmp_path):
    """2 simulated GPUs x 2 workers per GPU: four worker processes, two with CUDA_VISIBLE_DEVICES=0, two with 1."""
    gpus([80.0, 80.0], cores=16)
    suite = build_suite(RAW)
    plan = build_plan(suite, tmp_path)
    assert len(plan.jobs) == 4
    settings = executor_settings(suite, workers_per_gpu=2)
    run_local(plan, settings, RunSummary(results_dir=plan.out), say=lambda m: None, progress=False, job_fn=WhereRan())
    recs = [read_record(record_path(plan.out, c.cell_id)) for c in suite.cells]
    by_worker = {r["pid"]: r["visible"] for r in recs}
    assert len(by_worker) == 4, "each of the four jobs went to its own worker"
    assert Counter(by_worker.values()) == {"0": 2, "1": 2}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu_is_one_clear_error(capsys):
    from bench.cli import main

    assert main(["run", "smoke", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "no CUDA GPU" in err and "Traceback" not in err


def test_device_flag_reaches_the_cells_and_their_records(tmp_path, monkeypatch):
    """--device cpu (in this process): the cell computes on the CPU and its record's provenance says so."""
    from bench.cli import main

    monkeypatch.delenv("BENCH_DEVICE", raising=False)
    raw = {**RAW, "axes": {**RAW["axes"], "ft_fraction": [0.5], "seeds": 1}, "finetune": {"epochs": 1},
           "data": {"synth-inbreast": {"n_images": 24}}}
    path = tmp_path / "dev.yaml"
    path.write_text(json.dumps(raw))
    assert main(["run", str(path), "--workers", "0", "--device", "cpu", "--no-progress", "--results",
                 str(tmp_path / "r"), "--reports", str(tmp_path / "rep")]) == 0
    suite = build_suite(raw)
    rec = read_record(record_path(tmp_path / "r" / suite.name, suite.cells[0].cell_id))
    assert rec["status"] == "ok" and rec["provenance"]["device"] == "cpu"
    assert "BENCH_DEVICE" not in os.environ  # set for the run only
