"""The slurm executor on a real (single-node) Slurm. Skipped unless one answers; start one with
``scripts/slurm-single-node.sh`` (Debian's slurm-wlm), see README "Running at scale"."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.records import load_records
from bench.runner import run_suite
from bench.suite import build_suite

REPO = Path(__file__).resolve().parent.parent


def _slurm_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=3, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mixed", "allocated"))


pytestmark = [pytest.mark.slow, pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster answers (sinfo)")]


def test_a_suite_runs_as_slurm_job_arrays_on_a_shared_results_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(REPO / "tests")]))
    raw = {"name": "slurm", "plugins": ["plugins_faults"],
           "axes": {"backbone": ["toy_cnn"], "source": ["random", "synth-ddsm"], "ft_fraction": [0, 0.25],
                    "target": ["synth-inbreast"], "seeds": 1},
           "image_size": 32, "pretrain": {"epochs": 1, "batch_size": 16, "val_fraction": 0.0},
           "finetune": {"epochs": 1, "batch_size": 8},
           "data": {"synth-inbreast": {"n_images": 40}, "synth-ddsm": {"n_images": 60}},
           "executor": {"kind": "slurm", "cluster": "slurm", "array_parallelism": 2, "timeout_min": 10,
                        "gpus_per_task": 0, "cpus_per_task": 1}}
    suite = build_suite(raw)
    summary = run_suite(suite, results_root=tmp_path, progress=False, log=lambda m: None)
    recs = load_records(tmp_path / "slurm")
    assert len(recs) == 4 and {r["status"] for r in recs} == {"ok"}
    assert summary.computed == 4 and summary.pretrained == 1
    assert all(r["provenance"]["slurm"]["slurm_job_id"] for r in recs)
