"""Fine-tuning gain on the same images (issue 12): each FT cell against its No-FT network rescored on its images."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bench.analysis.finetune_gain import finetune_gain_tests, rescore_no_ft
from bench.records import SCHEMA
from bench.report import predictions_frame, records_frame, render_report

N = 120


def _record(source, ft_fraction, scores, ids, labels, *, seed=0, mode=None):
    axes = {"backbone": "toy_cnn", "source": source, "ft_fraction": ft_fraction, "target": "synth-inbreast",
            "transfer": "full", "seed": seed, **({"train_mode": mode} if mode else {})}
    cid = "-".join(map(str, axes.values()))
    return {"schema": SCHEMA, "suite": "t", "cell_id": cid, "status": "ok", "reason": None, "cell": axes,
            "config": dict(axes), "metrics": {"auc": float(roc_auc_score(labels, scores)), "accuracy": 0.5,
                                              "sensitivity": 0.5, "specificity": 0.5},
            "predictions": {"image_id": list(ids), "patient_id": None, "label": [int(v) for v in labels],
                            "score": [float(v) for v in scores]}, "history": []}


def _study(seed=0, modes=(None,)):
    rng = np.random.default_rng(seed)
    ids = np.array([f"img{i:03d}" for i in range(N)])
    y = rng.permutation(np.repeat([0, 1], N // 2))
    no_ft = rng.normal(size=N) + 0.3 * y  # weak network on the whole target
    recs = [_record("synth-ddsm", 0.0, no_ft, ids, y, seed=seed, mode=modes[0])]
    ev = np.sort(rng.choice(N, size=N // 2, replace=False))  # the FT split's evaluation images
    for mode in modes:
        recs.append(_record("synth-ddsm", 0.5, rng.normal(size=len(ev)) + 3.0 * y[ev], ids[ev], y[ev], seed=seed,
                            mode=mode))
    return recs, ids, y, no_ft, ev


def test_the_no_ft_network_is_rescored_on_exactly_the_ft_cells_images():
    recs, ids, y, no_ft, ev = _study()
    pairs, preds = rescore_no_ft(records_frame(recs), predictions_frame(recs))
    rescored = preds[preds["cell_id"].str.contains("@")]
    assert sorted(rescored["image_id"]) == sorted(ids[ev])
    tests = finetune_gain_tests(records_frame(recs), predictions_frame(recs))
    row = tests.iloc[0]
    assert row["auc_reference"] == pytest.approx(roc_auc_score(y[ev], no_ft[ev]))
    assert row["auc_reference"] != pytest.approx(recs[0]["metrics"]["auc"])  # not the whole-target number
    assert row["difference"] > 0.3 and row["significant"]


def test_every_train_mode_is_compared_with_the_one_no_ft_network_and_seeds_combine():
    recs = []
    for seed in range(3):
        recs += _study(seed, modes=("tl", "ft"))[0]
    tests = finetune_gain_tests(records_frame(recs), predictions_frame(recs))
    assert sorted(tests["backbone"]) == ["toy_cnn [ft]", "toy_cnn [tl]"]
    assert (tests["n_seeds"] == 3).all() and tests["significant"].all()


def test_report_has_the_gain_table_and_says_which_no_ft_number_the_auc_table_shows():
    recs, *_ = _study()
    text = render_report(recs, suite="t")
    assert "**Fine-tuning gain on the same images**" in text and " → " in text
    assert "No FT is the source network on the whole target" in text
