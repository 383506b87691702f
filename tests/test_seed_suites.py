"""The shipped suites: every one validates and plans without data; each seed study has a synthetic twin that
uses only the built-in synthetic datasets, and the real-data suites stop with one clear message when no
data folder is given (nothing is trained to find that out)."""
from __future__ import annotations

import pytest

from bench.cli import main
from bench.data import DATASETS
from bench.suite import SUITES_DIR, list_suites, load_suite

SEED_STUDIES = ["bulathsinghalage-liu", "falconi", "shen", "wei-morphhr"]
SYNTHETIC = {n for n in DATASETS.names() if n.startswith("synth-")}


def _datasets(suite) -> set[str]:
    a = suite.config.axes
    return set(a.target) | {s for s in a.source if s not in ("random", "imagenet")}


@pytest.mark.parametrize("name", list_suites())
def test_every_shipped_suite_validates_and_plans(name, capsys):
    assert main(["validate", name]) == 0
    assert "OK" in capsys.readouterr().out
    suite = load_suite(name)
    assert any(c.na_reason is None for c in suite.cells)


def test_each_seed_study_has_a_real_suite_and_a_synthetic_twin():
    names = set(list_suites())
    for study in SEED_STUDIES:
        assert {study, f"{study}-synth"} <= names
        real, twin = load_suite(study), load_suite(f"{study}-synth")
        assert not _datasets(real) & SYNTHETIC, study  # the real suite reads real data only
        assert _datasets(twin) <= SYNTHETIC, study  # the twin runs here, without downloads
        text = (SUITES_DIR / f"{study}.yaml").read_text()
        assert "Deviations" in text and "Compute" in text  # says what differs from the paper and what it costs


@pytest.mark.parametrize("study", SEED_STUDIES)
def test_a_real_suite_without_data_stops_with_one_clear_message(study, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    rc = main(["run", study, "--results", str(tmp_path / "r"), "--reports", str(tmp_path / "p"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "needs its folder" in err and "--data-root" in err and "Traceback" not in err
    assert not list((tmp_path / "r").rglob("*.json"))  # nothing was computed or recorded
