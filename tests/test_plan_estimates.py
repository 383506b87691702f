"""``bench plan``'s cost estimate from hand-made records (no training): the same cell key uses the recorded
``timing.total_s``; a new target or schedule uses the throughput measured for the same backbone and image size
(``timing.train_images_per_s`` / ``eval_images_per_s`` / ``setup_s``) and says on which device; nothing recorded
leaves it unknown; records written before throughput was recorded still estimate, as before."""
from __future__ import annotations

import pytest

from bench.records import SCHEMA, record_path, write_json_atomic
from bench.runner import build_plan
from bench.runner.plan import estimate_seconds, format_plan
from bench.suite import build_suite

H200 = "cuda:NVIDIA H200"


def _suite(*, targets=("synth-inbreast",), backbones=("toy_cnn",), epochs=2, seeds=1) -> object:
    return build_suite({"name": "est", "axes": {"backbone": list(backbones), "source": ["random"],
                                                "ft_fraction": [0.25], "target": list(targets),
                                                "transfer": ["full"], "seeds": seeds},
                        "image_size": 32, "finetune": {"epochs": epochs, "batch_size": 8},
                        "data": {"synth-inbreast": {"n_images": 40}, "synth-mias": {"n_images": 48}}})


def _write(root, cell, *, total_s, n_ft=10, n_eval=30, throughput=True, device=H200):
    timing = {"setup_s": 1.0, "finetune_s": total_s - 2.0, "eval_s": 1.0, "total_s": total_s}
    if throughput:  # 100 trained images x epochs per second, 60 scored per second
        timing.update(train_images_per_s=100.0, eval_images_per_s=60.0)
    rec = {"schema": SCHEMA, "suite": "est", "cell_id": cell.cell_id, "status": "ok", "reason": None,
           "cell": cell.axes, "config": cell.config, "metrics": {"auc": 0.5, "n_finetune": n_ft, "n_eval": n_eval},
           "predictions": {"image_id": [], "label": [], "score": []}, "history": [], "timing": timing,
           "provenance": {"device": device}}
    write_json_atomic(record_path(tmp := root / "est", cell.cell_id), rec)
    return tmp


def test_same_cell_key_uses_the_recorded_total(tmp_path):
    done = _suite()
    _write(tmp_path, done.cells[0], total_s=7.0)
    plan = build_plan(_suite(seeds=3), tmp_path)  # seeds 1 and 2 pending: same backbone, size, target, share, epochs
    est = estimate_seconds(plan)
    assert (est.known, est.unknown, est.from_throughput, est.rough) == (2, 0, 0, 0)
    assert est.seconds == pytest.approx(14.0)
    text = format_plan(plan)
    assert f"estimate from recorded timings (measured on {H200}): 14 s of compute for 2 job(s)" in text


def test_new_schedule_and_new_target_use_the_measured_throughput(tmp_path):
    _write(tmp_path, _suite().cells[0], total_s=7.0)  # toy_cnn on synth-inbreast: throughput, 10 + 30 images
    # another backbone's cell on synth-mias says how many images that target's share has: 12 trained, 36 scored
    _write(tmp_path, _suite(targets=["synth-mias"], backbones=["resnet18"]).cells[0], total_s=99.0, n_ft=12, n_eval=36,
           throughput=False)
    plan = build_plan(_suite(epochs=5), tmp_path)  # 5 epochs instead of 2: no exact match
    est = estimate_seconds(plan)
    assert (est.known, est.from_throughput) == (1, 1)
    assert est.seconds == pytest.approx(1.0 + 10 * 5 / 100.0 + 30 / 60.0)  # setup + training + evaluation
    plan = build_plan(_suite(targets=["synth-mias"]), tmp_path)  # toy_cnn on a target it never ran on
    est = estimate_seconds(plan)
    assert (est.known, est.from_throughput) == (1, 1) and est.seconds == pytest.approx(1.0 + 12 * 2 / 100 + 36 / 60)
    text = format_plan(plan)
    assert f"(measured on {H200})" in text and "1 of them from the images per second measured" in text


def test_nothing_recorded_is_unknown_and_a_target_without_counts_is_not_guessed(tmp_path):
    text = format_plan(build_plan(_suite(), tmp_path))
    assert "estimate: unknown (1 job(s), no comparable recorded timing" in text
    _write(tmp_path, _suite().cells[0], total_s=7.0, device=None)
    est = estimate_seconds(build_plan(_suite(targets=["synth-mias"]), tmp_path))
    # no record says how many images synth-mias has: not from throughput; the same backbone and size, roughly
    assert (est.known, est.from_throughput, est.devices) == (1, 0, {})
    assert est.seconds == pytest.approx(7.0)
    other = build_suite({"name": "est", "axes": {"backbone": ["resnet18"], "source": ["random"], "ft_fraction": [0.25],
                                                 "target": ["synth-mias"], "transfer": ["full"], "seeds": 1},
                         "image_size": 32, "finetune": {"epochs": 2, "batch_size": 8}})
    assert tuple(estimate_seconds(build_plan(other, tmp_path))) == (0.0, 0, 1, 0)


def test_records_without_throughput_still_estimate(tmp_path):
    _write(tmp_path, _suite().cells[0], total_s=7.0, throughput=False, device=None)
    plan = build_plan(_suite(epochs=5), tmp_path)
    est = estimate_seconds(plan)
    assert (est.known, est.from_throughput, est.rough) == (1, 0, 0) and est.seconds == pytest.approx(7.0)
    assert "estimate from recorded timings: 7 s of compute for 1 job(s)" in format_plan(plan)
