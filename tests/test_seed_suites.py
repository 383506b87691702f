"""The shipped suites (fast: nothing is trained).

Every suite in suites/ validates and plans without data. Each seed study has a real-data suite and a synthetic
twin: the real suite names only registered backbones and real datasets, documents what it reproduces, and stops
with the one missing-data-root message (no traceback, nothing recorded) when no data folder is given; the twin
uses only the built-in synthetic datasets and varies the same study axes as its real suite.
"""
from __future__ import annotations

import pytest

from bench.backbones import BACKBONES
from bench.cli import main
from bench.data import DATASETS
from bench.suite import SPECIAL_SOURCES, SUITES_DIR, list_suites, load_suite

SEED_STUDIES = ["bulathsinghalage-liu", "falconi", "shen", "wei-morphhr"]
SYNTHETIC = {n for n in DATASETS.names() if n.startswith("synth-")}
SHIPPED = sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def _datasets(suite) -> set[str]:
    """Every dataset a suite reads: targets, dataset sources, and those of its SVCCA analysis."""
    a = suite.config.axes
    names = set(a.target) | {s for s in a.source if s not in SPECIAL_SOURCES}
    sv = suite.config.analysis.svcca
    if sv is not None:
        names |= set(sv.targets) | {s for s in (sv.sources or []) if s not in SPECIAL_SOURCES}
    return names


@pytest.fixture(autouse=True)
def _no_data_root(monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)


def test_the_seed_suites_are_shipped():
    assert set(SHIPPED) <= set(list_suites())
    for study in SEED_STUDIES:
        assert {study, f"{study}-synth"} <= set(SHIPPED), study


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_suite_validates_and_plans_without_data(name, tmp_path, capsys):
    # A real suite's schema is OK, but without its data folder its cells cannot start: validate and plan say so
    # (exit 1) with the fix; a synthetic suite needs nothing and exits 0.
    real = name in SEED_STUDIES
    assert main(["validate", name]) == (1 if real else 0)
    out, err = capsys.readouterr()
    assert "OK" in out and "Traceback" not in out + err
    if real:
        assert "cannot start here" in err and "BENCH_DATA_ROOT" in err, err
    assert main(["plan", name, "--results", str(tmp_path / "results")]) == (1 if real else 0)
    out, err = capsys.readouterr()
    assert out.strip() and "Traceback" not in out + err
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.json"))
    suite = load_suite(name)
    assert any(c.na_reason is None for c in suite.cells)


@pytest.mark.parametrize("study", SEED_STUDIES)
def test_a_real_suite_names_registered_backbones_and_real_datasets_only(study):
    suite = load_suite(study)
    for b in suite.config.axes.backbone:
        assert b in BACKBONES, b
    real = _datasets(suite)
    assert real and all(d in DATASETS for d in real)
    assert not real & SYNTHETIC, f"{study} reads synthetic data: {real & SYNTHETIC}"
    assert all(DATASETS.get(d).needs_root for d in real), study
    for d, opts in suite.config.data.items():  # roots are left to the user (--data-root or data.<name>.root)
        assert "root" not in (opts or {}), (study, d)
    text = (SUITES_DIR / f"{study}.yaml").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for word in ("Reproduces", "From the paper", "Our choices", "Deviations", "Compute", "estimate", "--data-root"):
        assert word in header, (study, word)


@pytest.mark.parametrize("study", SEED_STUDIES)
def test_a_real_suite_without_data_stops_with_one_clear_message(study, tmp_path, capsys):
    rc = main(["run", study, "--results", str(tmp_path / "r"), "--reports", str(tmp_path / "p"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "needs its folder" in err and "--data-root" in err and "BENCH_DATA_ROOT" in err, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
    assert not list((tmp_path / "r").rglob("*.json"))  # nothing was computed or recorded


@pytest.mark.parametrize("study", SEED_STUDIES)
def test_a_twin_uses_only_synthetic_data_and_the_same_study_axes(study):
    real, twin = load_suite(study), load_suite(f"{study}-synth")
    used = _datasets(twin)
    assert used and used <= SYNTHETIC, f"{study}-synth reads {used - SYNTHETIC}"
    assert not any(DATASETS.get(d).needs_root for d in used)
    ra, ta = real.config.axes, twin.config.axes
    for axis in ("source", "ft_fraction", "target", "transfer", "train_mode"):
        assert (len(getattr(ra, axis)) > 1) == (len(getattr(ta, axis)) > 1), (study, axis)
    if study != "wei-morphhr":  # its twin starts from random weights: no ResNet-18 ImageNet weights offline
        assert set(ra.source) & set(SPECIAL_SOURCES) == set(ta.source) & set(SPECIAL_SOURCES)
    assert real.config.tta == twin.config.tta
    assert (real.config.analysis.svcca is None) == (twin.config.analysis.svcca is None)
    assert any(f >= 1 for f in ra.ft_fraction) == any(f >= 1 for f in ta.ft_fraction)  # Shen's patient counts
    own_size = lambda s: any("image_size" in v for v in s.config.per_backbone.values())  # noqa: E731
    assert own_size(real) == own_size(twin)  # MorphHR's own image size (a rate for vgg16 alone is not an axis)
