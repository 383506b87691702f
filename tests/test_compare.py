"""``bench compare RESULTS_A RESULTS_B`` (issue 16): two runs of a tiny suite that differ in one fine-tune setting,
and the analysis (:mod:`bench.analysis.compare`) on hand-made records."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.analysis.compare import (
    PAIRED,
    UNPAIRED,
    UNTESTED,
    compare_records,
    config_differences,
    flatten_config,
)
from bench.analysis.stats import delong_auc_ci, holm
from bench.cli import main
from bench.records import load_records

AXES = {"backbone": "toy_cnn", "source": "random", "target": "synth-inbreast", "ft_fraction": 0.25,
        "transfer": "full", "train_mode": "default", "seed": 0}


def tiny_suite(lr: float) -> dict:
    return {"name": "tiny-compare",
            "axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0, 0.25],
                     "target": ["synth-inbreast"], "transfer": ["full"], "seeds": 2},
            "image_size": 32, "finetune": {"epochs": 1, "batch_size": 8, "lr": lr},
            "data": {"synth-inbreast": {"n_images": 60}}, "executor": {"workers": 0}}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same tiny suite run twice (toy backbone, 60 synthetic images of 32 px), ``finetune.lr`` 0.001 then 0.01."""
    import torch

    from bench.runner import run_suite
    from bench.suite import build_suite

    root = tmp_path_factory.mktemp("compare")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, lr in (("a", 0.001), ("b", 0.01)):
            summary = run_suite(build_suite(tiny_suite(lr)), results_root=root / name, progress=False,
                                log=lambda m: None)
            assert summary.failed == 0 and summary.computed == 4
    finally:
        torch.set_num_threads(threads)
    return root / "a" / "tiny-compare", root / "b" / "tiny-compare"


def table_rows(markdown: str) -> list[list[str]]:
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


def test_compare_two_runs_lists_shared_cells_paired_and_names_the_changed_setting(two_runs, capsys):
    a, b = two_runs
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert f"A: `{a}`, B: `{b}`: 4 shared cells, 0 only in A, 0 only in B" in out
    settings = out.split("Settings that differ:")[1].split("|")[0]
    # the fine-tune setting, and nothing else; No FT cells have no fine-tune settings
    assert [ln for ln in settings.splitlines() if ln.startswith("- ")] == [
        "- `finetune.lr`: 0.001 -> 0.01 (2 of 4 shared cells)"]
    header = next(ln for ln in out.splitlines() if ln.startswith("| backbone"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "backbone", "source", "target", "share", "transfer", "mode", "seed", "AUC A", "AUC B", "Δ", "p", "p Holm",
        "test"]
    rows = table_rows(out)
    assert sorted((r[3], r[6]) for r in rows) == [("0", "0"), ("0", "1"), ("0.25", "0"), ("0.25", "1")]
    for r in rows:
        assert r[12] == "paired DeLong"
        assert float(r[9]) == pytest.approx(float(r[8]) - float(r[7]), abs=2e-3)
        assert float(r[11]) >= float(r[10])
        if r[3] == "0":  # No FT: the same network on the same images in both runs
            assert (r[9], r[10]) == ("+0.000", "1.000")


def test_compare_records_of_the_two_runs(two_runs):
    a, b = two_runs
    c = compare_records(load_records(a), load_records(b))
    t = c.table
    assert len(t) == 4 and not c.only_a and not c.only_b and not c.not_ok_a and not c.not_ok_b
    assert (t["test"] == PAIRED).all() and (t["cell_id_a"] != t["cell_id_b"]).sum() == 2
    assert (t["p_holm"] >= t["p_value"]).all()
    np.testing.assert_allclose(t["p_holm"], holm(t["p_value"].to_numpy()))
    assert c.settings[["key", "value_a", "value_b", "n_cells"]].values.tolist() == [["finetune.lr", "0.001", "0.01", 2]]
    assert sorted(t["settings"]) == ["", "", "finetune.lr", "finetune.lr"]
    records_a = {r["cell_id"]: r for r in load_records(a)}
    for row in t.itertuples():
        assert row.auc_a == pytest.approx(records_a[row.cell_id_a]["metrics"]["auc"], abs=1e-12)


def test_compare_html_page(two_runs, tmp_path, capsys):
    a, b = two_runs
    page = tmp_path / "out" / "compare.html"
    assert main(["compare", str(a), str(b), "--html", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<table" in text and "finetune.lr" in text
    assert "paired DeLong" in text and "Comparison of two runs" in text
    assert f"html: {page}" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ hand-made records

def record(scores, *, labels=(0, 0, 0, 1, 1, 1), ids=None, status="ok", cell_id="r",
           date="2025-06-01T00:00:00+00:00", config=None, **axes) -> dict:
    ids = list(ids or [f"img{i}" for i in range(len(scores))])
    preds = {"image_id": ids, "label": list(labels), "score": list(scores)} if status == "ok" else None
    return {"schema": 1, "suite": "s", "cell_id": cell_id, "status": status, "reason": None,
            "cell": {**AXES, **axes}, "config": config or {"finetune": {"lr": 0.001}}, "metrics": {},
            "predictions": preds, "provenance": {"date": date}}


SCORES = [0.1, 0.5, 0.3, 0.4, 0.9, 0.7]


def test_identical_predictions_give_zero_difference_and_p_one():
    c = compare_records([record(SCORES)], [record(SCORES, cell_id="other")])
    row = c.table.iloc[0]
    assert (row["test"], row["difference"], row["p_value"], row["p_holm"]) == (PAIRED, 0.0, 1.0, 1.0)
    assert c.settings.empty and row["settings"] == ""


def test_paired_on_image_ids_not_on_their_order():
    shuffled = record(SCORES[::-1], labels=(1, 1, 1, 0, 0, 0), ids=[f"img{i}" for i in range(6)][::-1])
    row = compare_records([record(SCORES)], [shuffled]).table.iloc[0]
    assert row["test"] == PAIRED and row["difference"] == 0.0 and row["p_value"] == 1.0


def test_other_evaluation_images_give_the_unpaired_test():
    other = [0.2, 0.1, 0.6, 0.5, 0.4, 0.8]
    row = compare_records([record(SCORES)], [record(other, ids=[f"x{i}" for i in range(6)])]).table.iloc[0]
    assert row["test"] == UNPAIRED and "different images, 0 in common" in row["note"]
    ca, cb = delong_auc_ci([0, 0, 0, 1, 1, 1], SCORES), delong_auc_ci([0, 0, 0, 1, 1, 1], other)
    z = (cb["auc"] - ca["auc"]) / math.sqrt(ca["se"] ** 2 + cb["se"] ** 2)
    assert row["difference"] == pytest.approx(cb["auc"] - ca["auc"])
    assert row["z"] == pytest.approx(z) and row["p_value"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))


def test_same_ids_with_other_labels_are_not_paired():
    row = compare_records([record(SCORES)], [record(SCORES, labels=(0, 0, 1, 0, 1, 1))]).table.iloc[0]
    assert row["test"] == UNPAIRED and "other labels" in row["note"]


def test_non_finite_scores_are_not_tested_and_left_out_of_holm():
    nan_scores = [None, *SCORES[1:]]
    c = compare_records([record(SCORES, seed=0), record(SCORES, seed=1)],
                        [record(nan_scores, seed=0), record([0.2, 0.1, 0.6, 0.5, 0.4, 0.8], seed=1)])
    t = c.table.set_index("seed")
    assert t.loc[0, "test"] == UNTESTED and math.isnan(t.loc[0, "p_value"]) and math.isnan(t.loc[0, "p_holm"])
    assert "run B" in t.loc[0, "note"]
    assert t.loc[1, "p_holm"] == t.loc[1, "p_value"]  # one test in the family


def test_cells_pair_on_axes_skip_non_ok_and_keep_the_newest():
    a = [record(SCORES, seed=0), record(SCORES, seed=1), record(SCORES, seed=2, status="failed"),
         record(SCORES, seed=3, status="na"),
         record([0.9, 0.1, 0.1, 0.1, 0.1, 0.1], seed=0, date="2020-01-01T00:00:00+00:00", cell_id="old")]
    b = [record(SCORES, seed=0, cell_id="b0"), record(SCORES, seed=2, cell_id="b2"),
         record(SCORES, seed=5, cell_id="b5", date="2026-01-01")]
    c = compare_records(a, b)
    assert c.table["seed"].tolist() == [0] and c.table["cell_id_a"].tolist() == ["r"]  # the newest of seed 0
    assert c.only_a == [tuple({**AXES, "seed": 1}.values())]
    assert [k[-1] for k in c.only_b] == [2, 5]  # B's seed 2 is ok; A's is not, so it is not shared
    assert (c.not_ok_a, c.older_a, c.not_ok_b, c.older_b) == ({"failed": 1, "na": 1}, 1, {}, 0)


def test_train_mode_missing_means_default_and_fraction_is_numeric():
    old = record(SCORES)
    del old["cell"]["train_mode"]
    newer = record(SCORES, ft_fraction=1 / 4)
    assert len(compare_records([old], [newer]).table) == 1


def test_flatten_and_config_differences():
    cfg_a = {"finetune": {"lr": 0.001, "epochs": 8, "bn_train": True, "schedule": [{"epochs": 2, "lr": 0.1}]},
             "image_size": 64, "tta": "none"}
    cfg_b = {"finetune": {"lr": 0.01, "epochs": 8.0, "bn_train": 1, "schedule": [{"epochs": 2, "lr": 0.2}]},
             "image_size": 64, "weights": "x.pth"}
    assert flatten_config(cfg_a)["finetune.schedule[0].lr"] == 0.1
    assert config_differences(cfg_a, cfg_b) == [
        ("finetune.bn_train", True, 1), ("finetune.lr", 0.001, 0.01), ("finetune.schedule[0].lr", 0.1, 0.2),
        ("tta", "none", "(not set)"), ("weights", "(not set)", "x.pth")]


def test_settings_summary_names_each_change_once_with_its_cell_count():
    a = [record(SCORES, seed=s, config={"finetune": {"lr": 0.001, "epochs": 8}}) for s in range(3)]
    b = [record(SCORES, seed=s, config={"finetune": {"lr": 0.01, "epochs": 8 if s else 9}}) for s in range(3)]
    rows = compare_records(a, b).settings.values.tolist()
    assert rows == [["finetune.epochs", "8", "9", 1, 3], ["finetune.lr", "0.001", "0.01", 3, 3]]


# ------------------------------------------------------------------------------------------ bad input

def write_folder(folder, records):
    folder.mkdir(parents=True)
    for r in records:
        (folder / f"{r['cell_id']}.json").write_text(json.dumps(r))
    return folder


@pytest.mark.parametrize("case", ["missing", "empty", "no shared cell", "only failed"])
def test_bad_input_is_one_message_and_exit_2(case, tmp_path, capsys):
    a = write_folder(tmp_path / "a", [record(SCORES, seed=0, cell_id="a0")])
    b = {"missing": lambda: tmp_path / "nope",
         "empty": lambda: write_folder(tmp_path / "b", []),
         "no shared cell": lambda: write_folder(tmp_path / "b", [record(SCORES, seed=7, cell_id="b7")]),
         "only failed": lambda: write_folder(tmp_path / "b", [record(SCORES, status="failed", cell_id="bf")]),
         }[case]()
    assert main(["compare", str(a), str(b)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err
    expected = {"missing": "no such results folder", "empty": "no cell records", "no shared cell": "share no",
                "only failed": "share no"}[case]
    assert expected in err


def test_html_path_that_is_a_folder_is_refused(tmp_path, capsys):
    a = write_folder(tmp_path / "a", [record(SCORES, cell_id="a0")])
    assert main(["compare", str(a), str(a), "--html", str(tmp_path)]) == 2
    assert "--html" in capsys.readouterr().err


def test_labels_that_are_not_binary_leave_the_cell_untested():
    row = compare_records([record(SCORES, labels=(0, 0, 2, 1, 1, 1))], [record(SCORES)]).table.iloc[0]
    assert row["test"] == UNTESTED and "binary" in row["note"]
