"""``ft_fraction``: a share of the target's patients (below 1) or a number of patients ('20 patients').

Issue 13, item 4: ``ft_fraction: 1.0`` used to validate as "one patient", fail at run time and print as
"FT 1 patients". A bare number >= 1 is now refused at validation with the fix; counts carry their unit, and
their cells keep the ids the bare numbers gave them.
"""
from __future__ import annotations

import copy

import pytest
import yaml

from bench.cli import main
from bench.report.table import fraction_label
from bench.runner.worker import SuiteSpec
from bench.suite import (
    Axes,
    SuiteError,
    build_suite,
    ft_fraction_text,
    load_suite,
    parse_ft_fraction,
)

BASE = {"name": "ftcount", "axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0.5],
                                    "target": ["synth-inbreast"], "seeds": 1}, "image_size": 32}

ONE_MESSAGE = ("ft_fraction 1.0: a share must be below 1 (1.0 would fine-tune on every target patient and leave none "
               "to evaluate); for a number of patients write '1 patient' or '20 patients'")


def _with(fractions, **over) -> dict:
    raw = copy.deepcopy(BASE)
    raw["axes"]["ft_fraction"] = fractions
    raw.update(over)
    return raw


def _error(raw) -> str:
    with pytest.raises(SuiteError) as info:
        build_suite(raw)
    return str(info.value)


def _yaml_suite(text_fractions: str) -> dict:
    """The suite as YAML reads it: ``[20 patients, 0.7]`` is a string and a float."""
    return _with(yaml.safe_load(f"x: {text_fractions}")["x"])


# (a) ------------------------------------------------------------------------------------------------------------

def test_one_as_a_share_is_refused_with_the_fix():
    msg = _error(_yaml_suite("[1.0]"))
    assert "axes.ft_fraction" in msg and ONE_MESSAGE in msg, msg
    assert "\n" not in msg


# (b) ------------------------------------------------------------------------------------------------------------

def test_patient_counts_with_their_unit_validate_to_floats():
    raw = _yaml_suite("[20 patients, 0.7, 1 patient]")
    assert raw["axes"]["ft_fraction"] == ["20 patients", 0.7, "1 patient"]
    suite = build_suite(raw)
    assert suite.config.axes.ft_fraction == [20.0, 0.7, 1.0]
    assert sorted(c.ft_fraction for c in suite.cells) == [0.7, 1.0, 20.0]
    assert all(isinstance(c.ft_fraction, float) and isinstance(c.config["ft_fraction"], float) for c in suite.cells)


def test_the_python_api_follows_the_same_rule():
    assert Axes(backbone=["toy_cnn"], source=["random"], target=["synth-inbreast"],
                ft_fraction=[0, 0.1, "20 patients"]).ft_fraction == [0.0, 0.1, 20.0]
    with pytest.raises(ValueError, match="write '20 patients'"):
        Axes(backbone=["toy_cnn"], source=["random"], target=["synth-inbreast"], ft_fraction=[20.0])


@pytest.mark.parametrize("text, value", [("20 patients", 20.0), ("1 patient", 1.0), ("  3 Patients ", 3.0),
                                         ("0", 0.0), (0, 0.0), (0.25, 0.25), ("0.5", 0.5)])
def test_parse_accepts(text, value):
    assert parse_ft_fraction(text) == value


# (c) and the other refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fractions, needles", [
    ("[20]", ["ft_fraction 20:", "a share must be below 1", "write '20 patients'"]),
    ("[1]", ["ft_fraction 1:", "write '1 patient' or '20 patients'"]),
    ("[1.5]", ["ft_fraction 1.5:", "whole number of patients"]),
    ("[-0.1]", ["ft_fraction -0.1:", "cannot be negative"]),
    ("[.nan]", ["ft_fraction nan:", "not a finite number"]),
    ("[.inf]", ["ft_fraction inf:", "not a finite number"]),
    ("[2.5 patients]", ["ft_fraction '2.5 patients':", "must be whole"]),
    ("[0 patients]", ["ft_fraction '0 patients':", "at least 1", "for no fine-tuning write 0"]),
    ("[-3 patients]", ["ft_fraction '-3 patients':", "at least 1"]),
    ("[twenty]", ["ft_fraction 'twenty':", "'20 patients'"]),
    ("[true]", ["ft_fraction True:", "not true/false"]),
    ("[20 patients, 20 patients]", ["'20 patients' is listed twice"]),
])
def test_bad_values_name_the_field_and_the_fix(fractions, needles):
    msg = _error(_yaml_suite(fractions))
    assert "axes.ft_fraction" in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_exclusions_write_counts_the_same_way():
    ok = build_suite(_yaml_suite("[0.5, 20 patients]") | {"exclude": [{"ft_fraction": "20 patients"}]})
    assert [c.ft_fraction for c in ok.cells] == [0.5]
    msg = _error(_yaml_suite("[0.5, 20 patients]") | {"exclude": [{"ft_fraction": 20}]})
    assert "exclude[0].ft_fraction" in msg and "write '20 patients'" in msg, msg
    msg = _error(_yaml_suite("[0.5, 20 patients]") | {"exclude": [{"ft_fraction": "2 patients"}]})
    assert "not a value of axis 'ft_fraction'" in msg and "Did you mean: '20 patients'" in msg, msg


# (d) ------------------------------------------------------------------------------------------------------------

def test_a_dumped_config_writes_counts_with_their_unit_and_rebuilds():
    suite = build_suite(_yaml_suite("[0, 20 patients, 1 patient, 0.7]"))
    dumped = suite.config.model_dump(mode="json")
    assert dumped["axes"]["ft_fraction"] == [0.0, "20 patients", "1 patient", 0.7]
    again = build_suite(dumped, name=suite.name)
    assert again.config == suite.config
    assert [c.cell_id for c in again.cells] == [c.cell_id for c in suite.cells]
    assert yaml.safe_load(yaml.safe_dump(dumped)) == dumped  # and as YAML text


@pytest.mark.parametrize("name", ["shen-synth", "shen"])
def test_the_shen_suites_rebuild_in_a_worker(name):
    suite = load_suite(name)
    spec = SuiteSpec.of(suite)  # what bench/runner/worker.py ships to a fresh process
    rebuilt = spec.build()
    assert rebuilt.config == suite.config
    assert [c.cell_id for c in rebuilt.cells] == [c.cell_id for c in suite.cells]
    assert any(c.ft_fraction >= 1 for c in rebuilt.cells)


def test_per_backbone_settings_rebuild_with_counts():
    """backbone_config re-validates a python-mode dump of the suite: counts must survive it too."""
    raw = _yaml_suite("[20 patients, 0.5]") | {"per_backbone": {"toy_cnn": {"finetune": {"epochs": 2}}}}
    suite = build_suite(raw)
    assert {c.ft_fraction for c in suite.cells} == {20.0, 0.5}
    assert all(c.config["finetune"]["epochs"] == 2 for c in suite.cells)


def test_text_and_parse_are_inverse():
    for f in (0.0, 0.1, 0.7, 1.0, 20.0, 60.0):
        assert parse_ft_fraction(ft_fraction_text(f)) == f
    assert ft_fraction_text(1.0) == "1 patient" and ft_fraction_text(20.0) == "20 patients"


# (e) ------------------------------------------------------------------------------------------------------------

# Computed on the code before the unit was required, from ``ft_fraction: [10, 20, 40, 0.7]`` (shen-synth) and
# ``[20, 30, 40, 50, 60, 0.7]`` (shen), seed 0: a result on disk must keep matching its cell.
PINNED = {
    "shen-synth": {10.0: "b3f8f562eb93e38b", 20.0: "2337f84e91474e99", 40.0: "da6319cb1dee2138",
                   0.7: "ee3b0d1a69c38ff7"},
    "shen": {20.0: "95c7ff2be6894a37", 30.0: "a39085611f87d84d", 40.0: "2b344f92a9576d65",
             50.0: "b1ca89adc95fca99", 60.0: "dd9884d61ee90474", 0.7: "59dca8183f47ad4b"},
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_cell_ids_of_counts_are_the_ids_the_bare_numbers_had(name):
    ids = {c.ft_fraction: c.cell_id for c in load_suite(name).cells if c.seed == 0}
    assert ids == PINNED[name]


def test_a_toy_count_keeps_its_old_id():
    # old: ft_fraction: [20, 1, 0.7] with toy_cnn from random on synth-inbreast (defaults otherwise)
    raw = {"name": "pin", "axes": {"backbone": ["toy_cnn"], "source": ["random"],
                                   "ft_fraction": ["20 patients", "1 patient", 0.7], "target": ["synth-inbreast"]}}
    ids = {c.ft_fraction: c.cell_id for c in build_suite(raw).cells}
    assert ids == {20.0: "e44fc1d780ef2038", 1.0: "f74c25eb48969ec1", 0.7: "e80498ff935d41e9"}


# (f) ------------------------------------------------------------------------------------------------------------

def test_bench_validate_prints_one_line_with_the_fix(tmp_path, capsys):
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(_with([1.0])))
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert code != 0
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "axes.ft_fraction" in lines[0] and ONE_MESSAGE in lines[0], lines[0]
    assert "Traceback" not in out + err


def test_bench_validate_accepts_counts_with_their_unit(tmp_path, capsys):
    path = tmp_path / "counts.yaml"
    path.write_text("name: counts\naxes: {backbone: [toy_cnn], source: [random], ft_fraction: [5 patients, 0.5], "
                    "target: [synth-inbreast], seeds: 1}\nimage_size: 32\n")
    assert main(["validate", str(path)]) == 0
    assert "OK" in capsys.readouterr().out


# labels ---------------------------------------------------------------------------------------------------------

def test_labels_of_shares_and_counts():
    assert fraction_label(0.0) == "No FT"
    assert fraction_label(0.7) == "FT 0.7"
    assert fraction_label(20.0) == "FT 20 patients"
    assert fraction_label(1.0) == "FT 1 patient"
