"""A tiny suite end to end: pre-training once, records, resume, failures, the report and the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bench.cli import main
from bench.records import load_records
from bench.runner import run_suite
from bench.suite import build_suite
from conftest import child_env

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny",
    "axes": {"backbone": ["toy_cnn"], "source": ["random", "synth-ddsm"], "ft_fraction": [0, 0.25],
             "target": ["synth-inbreast", "synth-ultrasound"], "transfer": ["full", "hybrid"], "seeds": 1},
    "image_size": 32,
    "pretrain": {"epochs": 1, "batch_size": 32},
    "finetune": {"epochs": 2, "batch_size": 8},
    "data": {"synth-ddsm": {"n_images": 120}, "synth-inbreast": {"n_images": 60},
             "synth-ultrasound": {"n_images": 60}},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    suite = build_suite(json.loads(json.dumps(TINY)))
    first = run_suite(suite, results_root=root, progress=False, log=lambda m: None)
    return suite, root, first


def test_every_cell_has_a_record_with_the_right_status(tiny_run):
    suite, root, first = tiny_run
    recs = {r["cell_id"]: r for r in load_records(root / "tiny")}
    assert set(recs) == {c.cell_id for c in suite.cells}
    for c in suite.cells:
        assert recs[c.cell_id]["status"] == ("na" if c.na_reason else "ok"), recs[c.cell_id].get("reason")
    assert first.failed == 0 and first.computed + first.na == len(suite.cells)


def test_pretraining_ran_once_and_is_reused(tiny_run):
    suite, root, first = tiny_run
    assert first.pretrained == 1
    ckpts = list((root / "pretrain").glob("*.pt"))
    assert len(ckpts) == 1
    users = [r for r in load_records(root / "tiny") if r["status"] == "ok" and r["cell"]["source"] == "synth-ddsm"]
    assert len(users) >= 3 and {r["weights"]["pretrain_id"] for r in users} == {ckpts[0].stem}


def test_stored_metrics_equal_sklearn_on_the_stored_predictions(tiny_run):
    _, root, _ = tiny_run
    for r in load_records(root / "tiny"):
        if r["status"] != "ok":
            continue
        p, m = r["predictions"], r["metrics"]
        y, s = np.array(p["label"]), np.array(p["score"])
        assert m["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert m["val_acc"] == pytest.approx(np.mean((s > 0) == y), abs=1e-12)
        if r["cell"]["ft_fraction"] > 0:
            assert m["beta"] == pytest.approx(m["train_acc"] / m["val_acc"])
        else:
            assert m["train_acc"] is None and m["beta"] is None and m["n_eval"] == len(y) == 60


def test_no_patient_in_both_finetune_and_evaluation(tiny_run):
    _, root, _ = tiny_run
    for r in load_records(root / "tiny"):
        if r["status"] == "ok" and r["cell"]["ft_fraction"] > 0 and r["predictions"]["patient_id"]:
            assert set(r["split"]["finetune_image_ids"]).isdisjoint(r["predictions"]["image_id"])
            assert set(r["split"]["finetune_patient_ids"]).isdisjoint(r["predictions"]["patient_id"])
            assert r["metrics"]["n_finetune"] + r["metrics"]["n_eval"] == 60


def test_paired_splits_are_identical_across_sources(tiny_run):
    _, root, _ = tiny_run
    splits = {}
    for r in load_records(root / "tiny"):
        if r["status"] == "ok" and r["cell"]["ft_fraction"] > 0:
            key = (r["cell"]["target"], r["cell"]["seed"])
            splits.setdefault(key, set()).add((r["split"]["hash"], tuple(r["split"]["finetune_image_ids"])))
    assert splits and all(len(v) == 1 for v in splits.values())


def test_second_run_recomputes_nothing(tiny_run):
    suite, root, _ = tiny_run
    before = {p: p.stat().st_mtime_ns for p in (root / "tiny").glob("*.json")}
    second = run_suite(suite, results_root=root, progress=False, log=lambda m: None)
    assert second.computed == 0 and second.skipped == len(suite.cells) and second.pretrained == 0
    assert before == {p: p.stat().st_mtime_ns for p in (root / "tiny").glob("*.json")}


def test_a_failing_cell_becomes_a_record_and_the_suite_goes_on(tmp_path, monkeypatch):
    # a weights file that is there (so the pre-flight check passes) but is no checkpoint fails only its cells
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "toy_cnn.pth").write_bytes(b"not a checkpoint")
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "w"))
    raw = json.loads(json.dumps(TINY))
    raw["axes"].update(source=["random", "imagenet"], target=["synth-inbreast"], ft_fraction=[0.25],
                       transfer=["full"])
    suite = build_suite(raw)
    summary = run_suite(suite, results_root=tmp_path, progress=False, log=lambda m: None)
    recs = {r["cell"]["source"]: r for r in load_records(tmp_path / "tiny")}
    assert recs["random"]["status"] == "ok"
    assert recs["imagenet"]["status"] == "failed" and "toy_cnn.pth" in recs["imagenet"]["reason"]
    assert summary.failed == 1 and summary.computed == 1


def test_cli_run_then_report_regenerates_tables(tmp_path, monkeypatch, capsys):
    suite_file = tmp_path / "tiny.yaml"
    import yaml

    suite_file.write_text(yaml.safe_dump(TINY))
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(suite_file), "--no-progress"]) == 0
    report = Path("reports/tiny/report.md")
    first = report.read_text()
    assert "synth-inbreast" in first and "No FT" in first and "NA" in first
    report.unlink()
    assert main(["report", "results/tiny"]) == 0
    assert report.read_text() == first  # from the records alone, identical


def _bench(*args, cwd=None):
    env = child_env(Path(__file__).resolve().parent.parent)
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_cli_bad_suite_is_one_clear_message_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("axes:\n  backbone: [resnet81]\n  source: [random]\n  ft_fraction: [0.1]\n"
                   "  target: [synth-inbreast]\n")
    out = _bench("validate", str(bad))
    assert out.returncode == 2
    assert "bad.yaml: axes.backbone[0]: unknown backbone 'resnet81'" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_validate_prints_cells_na_and_jobs():
    out = _bench("validate", "smoke")
    assert out.returncode == 0, out.stderr
    assert "cells:" in out.stdout and "NA" in out.stdout and "pre-training jobs: 1" in out.stdout


def test_verify_recomputes_metrics_and_catches_a_tampered_record(tiny_run, tmp_path, capsys):
    import shutil

    _, root, _ = tiny_run
    copy = tmp_path / "tiny"
    shutil.copytree(root / "tiny", copy)
    assert main(["verify", str(copy)]) == 0
    victim = next(p for p in copy.glob("*.json") if json.loads(p.read_text())["status"] == "ok")
    rec = json.loads(victim.read_text())
    rec["metrics"]["auc"] = min(1.0, rec["metrics"]["auc"] + 0.05)
    victim.write_text(json.dumps(rec))
    assert main(["verify", str(copy)]) == 1
    assert rec["cell_id"] in capsys.readouterr().out
