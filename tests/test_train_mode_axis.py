"""The train_mode axis: named variants of the finetune block, compared on the same splits."""
from __future__ import annotations

import copy

import pytest

from bench.cli import main
from bench.report import records_frame, render_report
from bench.runner import run_suite, suite_records
from bench.suite import SuiteError, build_suite

BASE = {"name": "modes",
        "axes": {"backbone": ["toy_cnn"], "source": ["random", "synth-ddsm"], "ft_fraction": [0, 0.5],
                 "target": ["synth-inbreast"], "transfer": ["full"], "seeds": 1},
        "image_size": 32, "pretrain": {"epochs": 1, "batch_size": 16},
        "finetune": {"epochs": 2, "lr": 0.001, "batch_size": 8},
        "data": {"synth-inbreast": {"n_images": 40}, "synth-ddsm": {"n_images": 48}}}
MODES = {"tl": {"schedule": [{"trainable": "head", "epochs": 2, "lr": 0.001}], "head": "falconi-ft"},
         "slow": {"lr": 0.0001}}


def _with_modes(axis: list[str], modes: dict | None = None) -> dict:
    raw = copy.deepcopy(BASE)
    raw["axes"]["train_mode"] = axis
    raw["train_modes"] = copy.deepcopy(MODES if modes is None else modes)
    return raw


def test_adding_the_axis_keeps_the_ids_of_the_default_mode():
    plain = build_suite(copy.deepcopy(BASE))
    moded = build_suite(_with_modes(["default", "tl", "slow"]))
    assert len(moded.cells) == 3 * len(plain.cells)
    default = {c.cell_id for c in moded.cells if c.train_mode == "default"}
    assert default == {c.cell_id for c in plain.cells}
    assert len({c.cell_id for c in moded.cells}) == len(moded.cells)


def test_a_mode_is_the_finetune_block_updated_with_what_it_lists():
    suite = build_suite(_with_modes(["default", "tl", "slow"]))
    ft = {c.train_mode: c.config["finetune"] for c in suite.cells if c.ft_fraction > 0 and c.source == "random"}
    assert ft["default"]["epochs"] == 2 and ft["default"]["lr"] == 0.001 and "schedule" not in ft["default"]
    # a schedule replaces the block's one-stage epochs/lr (no "either a schedule or epochs" error) ...
    assert "epochs" not in ft["tl"] and ft["tl"]["schedule"][0]["trainable"] == "head"
    assert ft["tl"]["head"] == {"hidden": 0, "dropout": 0.2} and ft["tl"]["batch_size"] == 8  # inherited
    # ... and a one-stage field overrides only itself
    assert ft["slow"]["lr"] == 0.0001 and ft["slow"]["epochs"] == 2 and "head" not in ft["slow"]


def test_without_finetuning_only_the_first_listed_mode_runs():
    suite = build_suite(_with_modes(["tl", "default"]))
    no_ft = [c for c in suite.cells if c.ft_fraction == 0]
    ran = [c for c in no_ft if c.na_reason is None]
    assert {c.train_mode for c in ran} == {"tl"} and len(ran) == 2
    na = [c for c in no_ft if c.train_mode == "default"]
    assert all("train mode changes nothing" in c.na_reason and "'tl'" in c.na_reason for c in na)
    assert all(c.pretrain_id is None for c in na)
    # The first mode's No FT cell is the very cell a suite without the axis computes.
    plain = {c.cell_id for c in build_suite(copy.deepcopy(BASE)).cells if c.ft_fraction == 0}
    assert {c.cell_id for c in ran} == plain


def test_exclusions_can_name_a_train_mode():
    raw = _with_modes(["default", "tl"])
    raw["exclude"] = [{"train_mode": "tl", "source": "random"}]
    suite = build_suite(raw)
    assert not [c for c in suite.cells if c.train_mode == "tl" and c.source == "random"]
    assert [c for c in suite.cells if c.train_mode == "tl" and c.source == "synth-ddsm"]


@pytest.mark.parametrize("axis,modes,must_contain", [
    (["default", "tll"], None, ["axes.train_mode[1]", "'tll'", "Did you mean: 'tl'"]),
    (["tl"], {"tl": {"shedule": "falconi-tl"}}, ["train_modes.tl.shedule", "Did you mean: 'schedule'"]),
    (["tl"], {"tl": {"lr": -1}}, ["train_modes.tl.lr", "greater than 0"]),
    (["tl"], {"tl": {"schedule": "shen-4stage"}}, ["train_modes.tl.schedule", "shen-3stage"]),
    (["tl"], {"tl": "falconi-tl"}, ["train_modes.tl", "valid dictionary"]),
    (["default"], {"default": {"lr": 0.1}}, ["train_modes.default", "reserved"]),
])
def test_bad_train_modes_get_one_clear_message(axis, modes, must_contain):
    with pytest.raises(SuiteError) as err:
        build_suite(_with_modes(axis, modes))
    for text in must_contain:
        assert text in str(err.value), str(err.value)


@pytest.mark.slow
def test_the_report_has_one_row_per_backbone_and_mode(tmp_path, capsys):
    suite = build_suite(_with_modes(["default", "tl"]))
    summary = run_suite(suite, results_root=tmp_path, progress=False, log=lambda m: None)
    assert summary.failed == 0 and summary.computed == 6  # 2 sources x (1 No FT + 2 modes); 2 NA
    records = suite_records(suite, tmp_path)
    df = records_frame(records)
    assert set(df["backbone"]) == {"toy_cnn [default]", "toy_cnn [tl]"}
    assert set(df["train_mode"]) == {"default", "tl"}
    # Both modes fine-tune on the same images (the split seed ignores the mode), so they pair.
    ft = [r for r in records if r["status"] == "ok" and r["cell"]["ft_fraction"] > 0 and r["cell"]["source"] == "random"]
    assert len(ft) == 2 and ft[0]["predictions"]["image_id"] == ft[1]["predictions"]["image_id"]
    assert ft[0]["metrics"]["auc"] != ft[1]["metrics"]["auc"] or ft[0]["predictions"] != ft[1]["predictions"]
    report = render_report(records, suite="modes")
    assert "toy_cnn [default]" in report and "toy_cnn [tl]" in report
    assert "train mode changes nothing" in report  # the NA reason is listed
    # `bench report` from the folder alone keeps every mode's records (none is taken for a stale duplicate)
    assert main(["report", str(tmp_path / "modes"), "--reports", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "modes" / "report.md").read_text()
    assert text.index("toy_cnn [default]") < text.index("toy_cnn [tl]")
    assert "older record" not in capsys.readouterr().err
