"""Degenerate cells and cells scored without BatchNorm re-estimation are flagged in records and marked in reports;
records of an earlier configuration are left out and counted (issue 11)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bench.analysis.degenerate import degenerate_flags, record_flags
from bench.analysis.metrics import binary_metrics
from bench.report import records_frame, render_report, render_report_latex
from test_report_stats import _images, _scores, make_record

def _fine_tuned(source, scores, *, seed=0, recalibrated=True, history=None, train_acc=0.9):
    rec = make_record(source, scores, seed=seed, ft_fraction=0.2, train_acc=train_acc)
    m = binary_metrics(rec["predictions"]["label"], scores)  # as the runner computes them
    rec["metrics"].update(sensitivity=m["sensitivity"], specificity=m["specificity"])
    rec["config"]["finetune"] = {"epochs": 2, **({"bn_recalibrate": True} if recalibrated else {})}
    rec["history"] = history or [{"epoch": 1, "running_train_acc": 0.5}, {"epoch": 2, "running_train_acc": 0.92}]
    return rec


def test_each_flag_fires_on_its_own_case_and_not_on_a_healthy_network():
    _, _, y = _images(0)
    good = _scores(0, 2.0, 1)
    assert degenerate_flags(y, good, train_acc=0.95, running_train_acc=0.96)["flags"] == []
    assert degenerate_flags(y, good - 100.0)["flags"] == ["one_class"]  # every margin negative
    assert degenerate_flags(y, -good)["flags"] == ["auc_below_chance"]
    assert degenerate_flags(y, good, train_acc=0.667, running_train_acc=0.92)["flags"] == ["eval_below_running"]
    assert degenerate_flags(y, good, train_acc=0.85, running_train_acc=0.92)["flags"] == []  # within 10 points


def test_record_flags_use_the_selected_epoch_when_early_stopping_restored_one():
    rec = _fine_tuned("random", _scores(0, 2.0, 1), train_acc=0.7,
                      history=[{"epoch": 1, "running_train_acc": 0.72, "selected": True},
                               {"epoch": 2, "running_train_acc": 0.99}])
    assert record_flags(rec)["running_train_acc"] == 0.72 and record_flags(rec)["flags"] == []
    rec["history"][0]["selected"] = False
    assert record_flags(rec)["flags"] == ["eval_below_running"]


def test_report_marks_flagged_and_uncalibrated_cells_counts_them_and_lists_the_seeds():
    recs = [_fine_tuned("random", _scores(0, 2.0, 1) - 100.0),  # one class
            _fine_tuned("synth-ddsm", _scores(0, 2.0, 2)),  # healthy
            _fine_tuned("synth-mias", _scores(0, 2.0, 3), recalibrated=False)]  # old record: no re-estimation
    text = render_report(recs, suite="t")
    auc_table = text[text.index("| Backbone"):text.index("Interval:")]
    rows = {ln.split("|")[2].strip(): ln for ln in auc_table.splitlines()[2:] if ln.startswith("|")}
    assert "⚑" in rows["Random init"] and "⚑" not in rows["synth-ddsm"] and "◊" not in rows["synth-ddsm"]
    assert "◊" in rows["synth-mias"] and "⚑" not in rows["synth-mias"]
    assert "⚑ = degenerate seed(s), see *Flagged cells*: 1 of 3 cells (one class: 1 seed(s))" in text
    assert "◊ = evaluated with the BatchNorm statistics training left (no re-estimation): 1 of 3 cells" in text
    flagged = text[text.index("## Flagged cells"):]
    assert "| toy_cnn" in flagged and "one class" in flagged and "0.00 / 1.00" in flagged
    assert "**Sensitivity / specificity**" in text
    assert "$^{!}$" in render_report_latex(recs, suite="t") and "$^{\\diamond}$" in render_report_latex(recs, suite="t")
    df = records_frame(recs)
    assert df.set_index("source").loc["random", "flags"] == "one_class"
    assert df["uncalibrated"].tolist() == [False, False, True]


def test_a_healthy_report_says_no_seed_is_flagged():
    text = render_report([_fine_tuned("random", _scores(0, 2.0, 1))], suite="t")
    assert "_No seed of any cell is flagged._" in text and "0 of 1 cells." in text


@pytest.mark.slow
def test_bench_report_leaves_out_records_of_an_earlier_configuration(tmp_path):
    folder = tmp_path / "results" / "t"
    folder.mkdir(parents=True)
    current, old = _fine_tuned("random", _scores(0, 2.0, 1)), _fine_tuned("random", _scores(0, 0.0, 5),
                                                                         recalibrated=False)
    old["cell_id"] = "old-" + old["cell_id"]
    old["provenance"] = {"date": "2099-01-01"}  # newer by date: without the manifest it would win
    for rec in (current, old):
        (folder / f"{rec['cell_id']}.json").write_text(json.dumps(rec))
    (folder / "_suite.json").write_text(json.dumps({"suite": "t", "cells": {current["cell_id"]: current["cell"]}}))
    out = subprocess.run([sys.executable, "-m", "bench", "report", str(folder), "--reports", str(tmp_path / "rep")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "1 record(s)" in out.stderr and "left out" in out.stderr
    text = (tmp_path / "rep" / "t" / "report.md").read_text()
    assert "**Stale records:** 1 record(s)" in text
    auc = float(np.round(current["metrics"]["auc"], 3))
    assert f"{auc:.3f}" in text and "◊" not in text.split("## Flagged cells")[0].split("**Cells:**")[1]


def test_report_marks_cells_whose_pretrained_weights_loaded_partially():
    partial = _fine_tuned("imagenet", _scores(0, 2.0, 4))
    partial["weights"] = {"source": "imagenet", "transfer": {"partial": True, "matched_before_head": 3,
                                                             "expected_before_head": 40}}
    text = render_report([_fine_tuned("random", _scores(0, 2.0, 1)), partial], suite="t")
    row = next(ln for ln in text.splitlines() if ln.startswith("|") and "ImageNet" in ln)
    assert "◐" in row and "◐ = pretrained weights filled fewer than 90 % of the tensors before the head" in text
    assert "$^{\\ominus}$" in render_report_latex([partial], suite="t")


def test_report_says_which_environment_produced_the_records():
    """A reference report was not byte-identical on another machine; the report now names the environment."""
    recs = [_fine_tuned("random", _scores(0, 2.0, 1)), _fine_tuned("synth-ddsm", _scores(0, 2.0, 2))]
    env = {"torch": "2.14.1", "python": "3.11.7", "device": "cpu", "cpu": "Some CPU", "torch_threads": 2}
    for r in recs:
        r["provenance"] = dict(env)
    text = render_report(recs, suite="t")
    assert "**Environment** (from the records): torch 2.14.1, Python 3.11.7, cpu (Some CPU), 2 torch thread(s)." in text
    assert "same CPU type, thread count and library versions" in text
    recs[1]["provenance"]["torch_threads"] = 1
    assert "(1 records)" in render_report(recs, suite="t")
    assert "**Environment**" not in render_report([_fine_tuned("random", _scores(0, 2.0, 1))], suite="t")


def test_a_source_network_that_did_not_learn_its_source_is_named_in_the_report():
    weak = _fine_tuned("synth-ddsm", _scores(0, 2.0, 2))
    weak["weights"] = {"source": "synth-ddsm", "pretrain_id": "p1", "pretrain_held_out_auc": 0.562,
                       "pretrain_held_out_n": 20}
    strong = _fine_tuned("synth-mias", _scores(0, 2.0, 3))
    strong["weights"] = {"source": "synth-mias", "pretrain_id": "p2", "pretrain_held_out_auc": 0.91,
                         "pretrain_held_out_n": 100}
    text = render_report([_fine_tuned("random", _scores(0, 2.0, 1)), weak, strong], suite="t")
    line = next(ln for ln in text.splitlines() if ln.startswith("**Weak sources:**"))
    assert "toy_cnn on synth-ddsm: 0.562 on 20 held-out images (1 cell)" in line
    assert "synth-mias" not in line  # learnt its source: not named
    assert "**Weak sources:**" not in render_report([_fine_tuned("random", _scores(0, 2.0, 1)), strong], suite="t")


def test_pretraining_warns_when_the_source_network_stays_at_chance(tmp_path):
    from bench.runner.pretrain import ensure_pretrained
    from bench.suite import build_suite

    # One epoch of 2 steps on 40 images: too little to learn synth-ddsm (held-out AUC near chance).
    raw = {"axes": {"backbone": ["toy_cnn"], "source": ["synth-ddsm"], "ft_fraction": [0], "target": ["synth-inbreast"]},
           "image_size": 32, "pretrain": {"epochs": 1, "lr": 1e-6, "batch_size": 32, "val_fraction": 0.5},
           "data": {"synth-ddsm": {"n_images": 80}, "synth-inbreast": {"n_images": 40}}}
    cell = build_suite(raw).cells[0]
    lines = []
    _, meta = ensure_pretrained(cell.settings.pretrain, cell.pretrain_id, tmp_path, log=lines.append)
    auc = meta["held_out"]["auc"]
    warned = [ln for ln in lines if "warning: held-out source AUC" in ln]
    assert (auc < 0.7) == bool(warned), (auc, lines)
    assert auc < 0.7 and "did not learn synth-ddsm" in warned[0] and "pretrain.epochs" in warned[0]
