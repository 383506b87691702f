"""The seed study's SVCCA protocol as a suite analysis: a toy_cnn run, its records, resume, the report and the CLI."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import yaml

from bench.cli import main
from bench.records import read_record, record_path
from bench.runner import build_plan, executor_settings, run_suite
from bench.runner.plan import format_plan
from bench.runner.svcca import (
    layer_activations,
    run_svcca,
    svcca_dir,
    svcca_jobs,
    svcca_records,
)
from bench.runner.worker import JOURNAL
from bench.suite import SuiteError, build_suite

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny-svcca",
    "axes": {"backbone": ["toy_cnn"], "source": ["random", "synth-ddsm"], "ft_fraction": [0],
             "target": ["synth-inbreast"], "transfer": ["full"], "seeds": 2},
    "image_size": 32,
    "pretrain": {"epochs": 1, "batch_size": 32},
    "finetune": {"epochs": 2, "batch_size": 8},
    "data": {"synth-ddsm": {"n_images": 120}, "synth-inbreast": {"n_images": 60},
             "synth-ultrasound": {"n_images": 60}},
    "analysis": {"svcca": {"targets": ["synth-inbreast", "synth-ultrasound"], "max_datapoints": 1000}},
}
LAYERS = ["conv1", "block1", "block2", "block3", "block4"]


def _raw(**svcca) -> dict:
    raw = json.loads(json.dumps(TINY))
    raw["analysis"]["svcca"].update(svcca)
    return raw


@pytest.fixture(scope="module")
def svcca_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("results")
    suite = build_suite(_raw())
    first = run_svcca(suite, results_root=root, log=lambda m: None)
    return suite, root, first


def test_one_record_per_target_and_seed_with_five_layers_in_unit_interval(svcca_run):
    suite, root, first = svcca_run
    assert first.analyses == 4 and first.analyses_failed == 0  # 1 source (synth-ddsm) x 2 targets x 2 seeds
    recs = svcca_records(svcca_dir(root, suite.name), suite)
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs)
    assert {(r["job"]["target"], r["job"]["seed"]) for r in recs} == {(t, s) for t in ("synth-inbreast",
                                                                                        "synth-ultrasound")
                                                                      for s in (0, 1)}
    for rec in recs:
        assert [layer["layer"] for layer in rec["layers"]] == LAYERS
        for layer in rec["layers"]:
            for ref in ("finetuned", "bn_only"):
                for measure in ("svcca", "pwcca", "cka"):
                    assert 0 <= layer[ref][measure] <= 1 + 1e-9, (layer["layer"], ref, measure)
            assert layer["datapoints"] <= 1000
        # 20 % of 60 images fine-tunes B, the other 80 % are fed to A, B and B'
        assert rec["n_finetune"] == 12 and rec["n_eval"] == 48
        assert rec["weights"]["source"] == "synth-ddsm" and rec["history"]


def test_fine_tuning_changes_the_network_so_similarity_is_below_one(svcca_run):
    suite, root, _ = svcca_run
    recs = svcca_records(svcca_dir(root, suite.name), suite)
    assert all(min(layer["finetuned"]["svcca"] for layer in r["layers"]) < 0.999 for r in recs)


def test_second_run_recomputes_nothing(svcca_run):
    suite, root, _ = svcca_run
    folder = svcca_dir(root, suite.name)
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}
    again = run_svcca(suite, results_root=root, log=lambda m: None)
    assert again.analyses == 0 and again.skipped == 4
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")} == before


def test_changing_an_analysis_setting_gives_new_ids_and_the_same_split(svcca_run):
    suite, _, _ = svcca_run
    other = build_suite(_raw(pooling="mean"))
    old, new = svcca_jobs(suite), svcca_jobs(other)
    assert {j.analysis_id for j in old}.isdisjoint({j.analysis_id for j in new})
    assert [j.cell.cell_id for j in old] == [j.cell.cell_id for j in new]  # networks A and B unchanged


def test_report_and_cli_render_the_svcca_table_and_figure(svcca_run, tmp_path, monkeypatch):
    _suite, root, _ = svcca_run
    suite_file = tmp_path / "tiny-svcca.yaml"
    suite_file.write_text(yaml.safe_dump(_raw()))
    monkeypatch.chdir(tmp_path)
    # `bench svcca` only runs the analysis: the records from the fixture are reused, nothing is recomputed
    assert main(["svcca", str(suite_file), "--results", str(root), "--reports", "reports"]) == 0
    report = (tmp_path / "reports" / "tiny-svcca" / "report.md").read_text()
    assert "per-layer SVCCA" in report and "BN-only reference (B′)" in report and "![" in report
    header = next(ln for ln in report.splitlines() if ln.startswith("| Target") and "conv1" in ln)
    assert [c.strip() for c in header.strip("|").split("|")][2:] == LAYERS
    assert (tmp_path / "reports" / "tiny-svcca" / "svcca.png").stat().st_size > 1000
    assert r"\begin{tabular}" in (tmp_path / "reports" / "tiny-svcca" / "report.tex").read_text()


def _small(**svcca) -> dict:
    """One cell (toy_cnn from ``source``, no fine-tuning) and the SVCCA runs asked for."""
    raw = _raw(targets=["synth-inbreast"], **svcca)
    raw["axes"] = {**raw["axes"], "source": svcca.get("sources", ["synth-ddsm"]), "seeds": 1}
    return raw


def test_a_failing_run_is_a_failed_record_with_a_cells_error_and_plan_and_status_show_the_runs(tmp_path, capsys):
    raw = {**_small(backbones=["fault_raise"], sources=["random"]), "plugins": ["plugins_faults"]}
    suite = build_suite(raw)
    plan = build_plan(suite, tmp_path)
    assert [j.kind for j in plan.jobs] == ["cell", "svcca"]  # the runs are jobs of the plan, after the cells
    assert "svcca analysis runs: 1 to run, 0 done" in format_plan(plan)
    said: list[str] = []
    summary = run_suite(suite, results_root=tmp_path, executor=executor_settings(suite, workers=0), progress=False,
                        log=said.append)
    assert summary.analyses == 0 and summary.analyses_failed == 1
    key = plan.analyses[0].key
    rec = read_record(record_path(svcca_dir(tmp_path, suite.name), key))
    assert rec["status"] == "failed" and rec["reason"] == "RuntimeError: injected fault" and rec["layers"] == []
    assert set(rec["error"]) == {"class", "kind", "message", "cause", "traceback", "user_error"}
    assert rec["error"]["class"] == "RuntimeError" and rec["error"]["kind"] == "exception"
    assert rec["job"]["backbone"] == "fault_raise" and rec["kind"] == "svcca" and rec["provenance"]
    assert any(m.startswith("svcca 1/1: fault_raise from random") for m in said)
    assert any(m == f"svcca {key} FAILED: RuntimeError: injected fault" for m in said)
    assert main(["status", str(tmp_path / suite.name)]) == 0
    out = capsys.readouterr().out
    assert "svcca analysis runs: 1: done 0, failed 1" in out and f"failed   svcca {key} fault_raise" in out
    assert "1 to run (1 failed before, retried)" in format_plan(build_plan(suite, tmp_path))


def test_worker_processes_run_the_svcca_runs(tmp_path, monkeypatch):
    tests = os.path.dirname(__file__)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([os.path.dirname(tests), tests]))
    suite = build_suite(_small())
    summary = run_suite(suite, results_root=tmp_path, executor=executor_settings(suite, workers=1), progress=False,
                        log=lambda m: None)
    assert summary.analyses == 1 and summary.pretrained == 1 and summary.analyses_failed == 0
    folder = svcca_dir(tmp_path, suite.name)
    assert [r["status"] for r in svcca_records(folder, suite)] == ["ok"]
    pids = {json.loads(x)["pid"] for x in (folder / JOURNAL).read_text().splitlines()}
    assert pids and os.getpid() not in pids  # computed in the worker process
    again = run_svcca(suite, results_root=tmp_path, log=lambda m: None)
    assert again.analyses == 0 and again.skipped == 1


def test_suite_without_analysis_is_a_clear_cli_error(tmp_path, capsys):
    raw = _raw()
    del raw["analysis"]
    suite_file = tmp_path / "plain.yaml"
    suite_file.write_text(yaml.safe_dump(raw))
    assert main(["svcca", str(suite_file), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "analysis.svcca" in err and "Traceback" not in err


@pytest.mark.parametrize("svcca, message", [
    ({"targets": ["synth-inbrest"]}, "analysis.svcca.targets[0]: unknown dataset 'synth-inbrest'"),
    ({"pooling": "max"}, "analysis.svcca.pooling"),
    ({"ft_share": 1.5}, "analysis.svcca.ft_share"),
    ({"targetz": ["synth-inbreast"]}, "unknown key 'targetz'. Did you mean: 'targets'"),
])
def test_bad_analysis_block_names_the_field(svcca, message):
    raw = _raw()
    raw["analysis"]["svcca"] = {"targets": ["synth-inbreast"], **svcca} if "targetz" not in svcca else svcca
    with pytest.raises(SuiteError) as err:
        build_suite(raw)
    assert message in str(err.value)


def test_activations_subsample_the_same_positions_and_pool():
    torch.manual_seed(0)
    from bench.backbones import create_backbone

    net = create_backbone("toy_cnn", 2)
    images = np.random.default_rng(0).integers(0, 255, size=(10, 32, 32), dtype=np.uint8)
    modules = {"conv1": "conv1", "block4": "block4"}
    a = layer_activations(net, images, modules, mean=(0.5,) * 3, std=(0.5,) * 3, max_datapoints=300, seed=3)
    b = layer_activations(net, images, modules, mean=(0.5,) * 3, std=(0.5,) * 3, max_datapoints=300, seed=3,
                          batch_size=3)
    assert a["conv1"].shape == (300, 8) and np.allclose(a["conv1"], b["conv1"], atol=1e-5)  # batching-invariant
    assert a["block4"].shape == (10, 32)  # 1 x 1 positions per image: 10 rows, under the cap
    pooled = layer_activations(net, images, modules, mean=(0.5,) * 3, std=(0.5,) * 3, pooling="mean")
    assert pooled["conv1"].shape == (10, 8)


