"""Intervals that say something (issue 13, item 5): kept inside the metric's range, a note when two seeds are too few
for a t interval (with each seed's patient bootstrap beside it), and a sentence when ± and † disagree."""
from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest
from test_report_stats import _rows, _scores, make_record

from bench.analysis.intervals import (
    cell_intervals,
    metric_range,
    seed_bootstraps,
    seed_intervals,
)
from bench.analysis.stats import bootstrap_auc_ci, seed_summary
from bench.report import (
    predictions_frame,
    records_frame,
    render_report,
    render_report_latex,
    table_transfer,
)
from bench.report.table import format_value

FEW_SEEDS_NOTE = "a t interval from 2 runs is t(0.975, 1) · s / √2 = 12.7 · s / √2"
OVERLAP_SENTENCE = "± and † disagree for 1 cell here (marked † although its interval overlaps"
APART_SENTENCE = "(no † although its interval does not overlap"


def _numbers(text: str) -> list[float]:
    """Every decimal number in ``text``, with its sign."""
    return [float(x) for x in re.findall(r"-?\d+\.\d+", text)]


def _two_far_apart_seeds() -> list[dict]:
    """Random init: seed 0 AUC about 0.03, seed 1 about 0.91 (the t interval is about 0.47 +- 5.5)."""
    recs = []
    for seed, signal in ((0, -1.8), (1, 1.8)):
        recs += [make_record("random", _scores(seed, signal, 10 + seed), seed=seed),
                 make_record("synth-ddsm", _scores(seed, 2.0, 20 + seed), seed=seed)]
    return recs


def _seeds(n: int) -> list[dict]:
    recs = []
    for seed in range(n):
        recs += [make_record("random", _scores(seed, 0.5, 10 + seed), seed=seed),
                 make_record("synth-ddsm", _scores(seed, 0.8, 20 + seed), seed=seed)]
    return recs


# --------------------------------------------------------------------------- the range

def test_two_seed_auc_interval_stays_inside_zero_one_in_the_frame_and_in_print():
    recs = _two_far_apart_seeds()
    df, preds = records_frame(recs), predictions_frame(recs)
    iv = cell_intervals(df, preds).set_index("source")
    cell = iv.loc["random"]
    assert cell["method"] == "t" and cell["n"] == 2
    assert cell["half_width"] > 1                  # the t half-width itself is kept, uncut
    assert cell["low"] == 0.0 and cell["high"] == 1.0 and bool(cell["clipped"])
    assert (iv["low"] >= 0).all() and (iv["high"] <= 1).all()
    text = _rows(render_report(recs, suite="t"))["Random init"]
    assert "±" not in text and all(0 <= x <= 1 for x in _numbers(text)), text
    assert text.startswith(f"{df.loc[df['source'] == 'random', 'auc'].mean():.3f} (0.000–1.000)")
    # the same without precomputed intervals (the t interval over seeds is computed for the cell)
    bare = _rows(table_transfer(df, "synth-inbreast"))["Random init"]
    assert "±" not in bare and all(0 <= x <= 1 for x in _numbers(bare)), bare


def test_frame_with_auc_point_one_and_point_nine_is_cut_at_zero_and_one():
    df = pd.DataFrame({"cell_id": ["a0", "a1"], "status": "ok", "backbone": "b", "source": "random",
                       "ft_fraction": 0.0, "target": "t", "transfer": "full", "auc": [0.1, 0.9]})
    row = cell_intervals(df).iloc[0]
    assert (row["low"], row["high"], bool(row["clipped"])) == (0.0, 1.0, True)
    assert row["half_width"] == pytest.approx(12.7062 * np.std([0.1, 0.9], ddof=1) / np.sqrt(2), rel=1e-4)
    assert format_value(row["mean"], row["half_width"], low=row["low"], high=row["high"],
                         value_range=metric_range("auc")) == "0.500 (0.000–1.000)"


@pytest.mark.parametrize("metric, values, low, high", [
    ("accuracy", [0.2, 0.95], 0.0, 1.0),
    ("sensitivity", [0.05, 0.9], 0.0, 1.0),
    ("specificity", [0.98, 0.99, 0.5], None, 1.0),
    ("balanced_accuracy", [0.1, 0.8], 0.0, 1.0),
    ("svcca", [0.95, 0.4], None, 1.0),
    ("beta", [1.0, 3.0], 0.0, None),
])
def test_every_bounded_metric_is_cut_at_its_range(metric, values, low, high):
    out = seed_intervals(pd.DataFrame({"k": 0, metric: values}), metric, keys=["k"]).iloc[0]
    lo, hi = metric_range(metric)
    assert bool(out["clipped"]) and lo <= out["low"] <= out["high"] <= hi
    if low is not None:
        assert out["low"] == low
    if high is not None:
        assert out["high"] == high


def test_an_interval_inside_the_range_is_not_cut_and_keeps_its_plus_minus():
    s = seed_summary([0.80, 0.84, 0.79, 0.85, 0.82], value_range=(0, 1))
    assert not s["clipped"] and s["low"] == pytest.approx(s["mean"] - s["half_width"])
    assert format_value(s["mean"], s["half_width"], low=s["low"], high=s["high"], value_range=(0, 1)) == \
        f"{s['mean']:.3f} ± {s['half_width']:.3f}"
    assert not seed_summary([0.8])["clipped"]                       # no interval: nothing cut
    assert seed_summary([-5.0, 5.0])["low"] < -5                    # no range: unbounded as before
    with pytest.raises(ValueError, match="'value_range'"):
        seed_summary([0.1, 0.2], value_range=(1, 0))


def test_an_asymmetric_interval_whose_plus_minus_would_pass_one_prints_its_bounds():
    # a bootstrap interval [0.95, 1.0] around 0.99: "± 0.025" would suggest 1.015
    assert format_value(0.99, 0.025, low=0.95, high=1.0, value_range=(0, 1)) == "0.990 (0.950–1.000)"
    assert format_value(0.99, 0.025) == "0.990 ± 0.025"            # no range given: unchanged


# --------------------------------------------------------------------------- few seeds

def test_few_seeds_note_for_a_two_seed_table_and_not_for_a_five_seed_one():
    two = render_report(_seeds(2), suite="t")
    five = render_report(_seeds(5), suite="t")
    assert "Few seeds: 2 cells of this table have only 2 seeds" in two and FEW_SEEDS_NOTE in two
    assert "Few seeds" not in five and "12.7" not in five


def test_two_seed_cells_show_each_seeds_patient_bootstrap():
    recs = _seeds(2)
    text = render_report(recs, suite="t")
    for source, label in (("random", "Random init"), ("synth-ddsm", "synth-ddsm")):
        parts = []
        for rec in (r for r in recs if r["cell"]["source"] == source):
            p = rec["predictions"]
            ci = bootstrap_auc_ci(p["label"], p["score"], p["patient_id"], n_resamples=2000, seed=0)
            parts.append(f"seed {rec['cell']['seed']}: {ci['auc']:.3f} ({ci['low']:.3f}–{ci['high']:.3f})")
        assert f"toy_cnn, {label}, No FT: {'; '.join(parts)}." in text
    assert "bootstrap resamples of its evaluation patients" in text
    tex = render_report_latex(recs, suite="t")
    assert "Few seeds" in tex and "toy\\_cnn, Random init, No FT: seed 0:" in tex


def test_seed_bootstraps_only_for_t_intervals_from_too_few_seeds():
    recs = _seeds(2) + [make_record("synth-mias", _scores(0, 1.0, 30), seed=0)]  # one seed: its own bootstrap
    df, preds = records_frame(recs), predictions_frame(recs)
    iv = cell_intervals(df, preds)
    boot = seed_bootstraps(df, preds, iv)
    assert set(boot["source"]) == {"random", "synth-ddsm"} and sorted(boot["seed"]) == [0, 0, 1, 1]
    assert ((boot["low"] >= 0) & (boot["high"] <= 1) & (boot["low"] < boot["auc"])).all()
    five = _seeds(5)
    df5, preds5 = records_frame(five), predictions_frame(five)
    assert seed_bootstraps(df5, preds5, cell_intervals(df5, preds5)).empty


# --------------------------------------------------------------------------- ± vs †

def _same_images(rec: dict, seed: int) -> dict:
    """``rec`` as another seed's record, on the very same images and with the very same scores."""
    out = copy.deepcopy(rec)
    out["cell"]["seed"] = out["config"]["seed"] = seed
    out["cell_id"] = "-".join(map(str, out["cell"].values()))
    return out


def _slightly_better(signals) -> list[dict]:
    """Per seed: random with the seed's signal; synth-ddsm the same scores, a little higher for every positive."""
    recs = []
    for seed, signal in enumerate(signals):
        base = _scores(seed, signal, 10 + seed)
        labels = np.asarray(make_record("random", base, seed=seed)["predictions"]["label"])
        better = base + 0.5 * labels + 0.05 * np.random.default_rng(40 + seed).normal(size=len(base))
        recs += [make_record("random", base, seed=seed), make_record("synth-ddsm", better, seed=seed)]
    return recs


def test_disagreement_sentence_when_dagger_meets_overlapping_intervals():
    """Seeds differ a lot (wide ±), but in every seed synth-ddsm ranks the same images a little better (†)."""
    recs = _slightly_better((0.2, 1.4, 0.7))
    df, preds = records_frame(recs), predictions_frame(recs)
    iv = cell_intervals(df, preds).set_index("source")
    assert iv.loc["synth-ddsm", "low"] <= iv.loc["random", "high"]       # the intervals overlap
    text = render_report(recs, suite="t")
    assert _rows(text)["synth-ddsm"].endswith("†")
    assert OVERLAP_SENTENCE in text and "that of the Random init row" in text and APART_SENTENCE not in text
    assert "± is the spread of each cell on its own across seeds" in text


def test_disagreement_sentence_names_the_patient_bootstrap_for_a_single_seed():
    recs = _slightly_better((0.7,))
    iv = cell_intervals(records_frame(recs), predictions_frame(recs)).set_index("source")
    assert (iv["method"] == "bootstrap").all() and iv.loc["synth-ddsm", "low"] <= iv.loc["random", "high"]
    text = render_report(recs, suite="t")
    assert _rows(text)["synth-ddsm"].endswith("†") and OVERLAP_SENTENCE in text
    assert "± is each cell's own patient-bootstrap interval" in text and "across seeds" not in text.split("± and †")[1]


def test_disagreement_sentence_when_separate_intervals_get_no_dagger():
    """Three seeds with identical predictions: zero-width intervals that do not overlap, and an AUC difference of
    about 0.08 that DeLong on 160 images cannot tell from noise (p about 0.23)."""
    random0 = make_record("random", _scores(0, 0.6, 10))
    ddsm0 = make_record("synth-ddsm", _scores(0, 0.5, 11))
    recs = [_same_images(r, seed) for seed in range(3) for r in (random0, ddsm0)]
    df = records_frame(recs)
    assert df.groupby("source")["auc"].nunique().eq(1).all()
    text = render_report(recs, suite="t")
    assert "†" not in _rows(text)["synth-ddsm"]
    assert APART_SENTENCE in text and "Holm's correction over the 1 comparison of this table" in text
    assert "marked † although" not in text


def test_no_disagreement_sentence_when_plus_minus_and_dagger_agree():
    from test_report_stats import _three_seed_records

    text = render_report(_three_seed_records(), suite="t")  # † with separate intervals; no † with overlapping ones
    assert "1 of 2 significant" in text and "disagree" not in text
    assert "disagree" not in render_report(_seeds(5), suite="t")
