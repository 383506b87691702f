"""benchmarks/gpu.py runs on a CPU too (tiny settings), so it works unchanged on the first GPU (issue 15)."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def gpu_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lean_loop_trains_the_network(gpu_bench):
    from bench.backbones import create_backbone

    torch.manual_seed(0)
    model = create_backbone("toy_cnn", 2)
    before = [p.detach().clone() for p in model.parameters()]
    images, labels = gpu_bench.synthetic_images(16, 16)
    seconds = gpu_bench.lean_epochs(model, images, labels, batch_size=8, epochs=1, device=torch.device("cpu"))
    assert seconds > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_fit_against_lean_loop_for_the_toy_backbone_on_cpu(gpu_bench):
    row = gpu_bench.fit_vs_lean("toy_cnn", size=16, n_images=16, batch_size=8, epochs=1, device=torch.device("cpu"))
    assert row["backbone"] == "toy_cnn" and row["device"] == "cpu"
    for key in ("fit_img_s", "lean_img_s", "fit_over_lean", "predict_img_s"):
        assert math.isfinite(row[key]) and row[key] > 0, key
    table = gpu_bench.report(None, [row])
    assert "| toy_cnn |" in table and "fit/lean" in table


def test_sampler_without_nvml_says_so(gpu_bench, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # as if nvidia-ml-py were not installed
    with gpu_bench.UtilisationSampler(period_s=0.01) as sampler:
        pass
    assert sampler.problem.startswith("no NVML") and sampler.mean(0, 1e12) is None
