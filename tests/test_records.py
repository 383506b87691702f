"""Atomic record writes and loading."""
from __future__ import annotations

import json

import pytest

from bench import fileio, records


def test_atomic_write_never_leaves_a_half_written_record(tmp_path, monkeypatch):
    path = records.record_path(tmp_path, "abc")
    records.write_json_atomic(path, {"cell_id": "abc", "status": "ok", "metrics": {"auc": 0.7}})

    def explode(fd):  # the new record is in the temp file, then the disk fails
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "fsync", explode)
    with pytest.raises(OSError):
        records.write_json_atomic(path, {"cell_id": "abc", "status": "ok", "metrics": {"auc": 0.9}})
    monkeypatch.undo()
    assert json.loads(path.read_text())["metrics"]["auc"] == 0.7  # the old record, whole
    assert [p.name for p in tmp_path.iterdir()] == ["abc.json"]  # no temp file left behind


def test_partial_or_foreign_files_are_not_records(tmp_path):
    (tmp_path / "a.json").write_text('{"cell_id": "a", "status": "ok"')  # truncated
    (tmp_path / "b.json").write_text('{"hello": 1}')
    records.write_json_atomic(tmp_path / "c.json", {"cell_id": "c", "status": "na"})
    records.write_json_atomic(tmp_path / "d.json", {"cell_id": "d", "status": "failed"})
    assert [r["cell_id"] for r in records.load_records(tmp_path)] == ["c", "d"]
    assert records.is_finished(tmp_path, "c") and not records.is_finished(tmp_path, "d")
    assert not records.is_finished(tmp_path, "a")


def _rec(cell_id: str, date: str | None, **cell) -> dict:
    return {"cell_id": cell_id, "status": "ok", "cell": cell, **({"provenance": {"date": date}} if date else {})}


def test_newest_per_key_keeps_the_newest_of_each_key_in_first_seen_order():
    recs = [_rec("a1", "2025-01-01T00:00:00+00:00", k=1), _rec("b1", None, k=2),
            _rec("a2", "2025-02-01T00:00:00+00:00", k=1), _rec("b2", "2024-01-01T00:00:00+00:00", k=2),
            _rec("a3", "2025-02-01T00:00:00+00:00", k=1)]  # same second as a2: the first one given stays
    got = records.newest_per_key(recs, lambda r: r["cell"]["k"])
    assert [r["cell_id"] for r in got] == ["a2", "b2"]


def test_latest_per_cell_counts_what_it_leaves_out_and_treats_no_train_mode_as_default():
    axes = {"backbone": "toy_cnn", "target": "t", "source": "imagenet", "ft_fraction": 0.5, "transfer": "full",
            "seed": 0}
    old = _rec("old", "2025-01-01T00:00:00+00:00", **axes)  # written before the train_mode axis existed
    new = _rec("new", "2025-03-01T00:00:00+00:00", **axes, train_mode="default")
    other = _rec("ft", "2024-01-01T00:00:00+00:00", **axes, train_mode="ft")
    assert records.latest_per_cell([old, new, other]) == ([new, other], 1)


def test_in_suite_order_follows_the_manifest_then_the_axes(tmp_path):
    a = _rec("a", None, backbone="resnet18", seed=1)
    b = _rec("b", None, backbone="resnet18", seed=0)
    c = _rec("c", None, backbone="alexnet", seed=0)
    man = {"cells": {"b": {}, "a": {}}}
    assert [r["cell_id"] for r in records.in_suite_order([c, a, b], man)] == ["b", "a", "c"]
    assert [r["cell_id"] for r in records.in_suite_order([a, b, c], None)] == ["c", "b", "a"]
    records.write_json_atomic(tmp_path / records.MANIFEST, man)
    assert records.current_records(tmp_path, [a, c]) == [a]
    assert records.current_records(tmp_path, [c]) == [c]  # none current: all of them


def _cell_record(**over) -> dict:
    rec = {"schema": 1, "suite": "s", "cell_id": "abc", "status": "ok", "reason": None,
           "cell": {"backbone": "toy_cnn", "source": "random", "ft_fraction": 0.5, "target": "synth-inbreast",
                    "transfer": "full", "train_mode": "default", "seed": 0},
           "config": {}, "metrics": {"auc": 0.7, "train_acc": None},
           "predictions": {"image_id": ["a", "b"], "patient_id": None, "group_id": ["a", "b"], "label": [0, 1],
                           "score": [-0.3, 0.4]},
           "history": []}
    rec.update(over)
    return rec


@pytest.mark.parametrize("damage, problem", [
    ({"metrics": {"auc": "high"}}, "metrics.auc"),
    ({"status": "done"}, "status"),
    ({"predictions": {"image_id": ["a", "b"], "label": [0], "score": [0.1, 0.2]}}, "predictions.label has 1"),
    ({"predictions": None}, "status 'ok' without predictions"),
    ({"cell": {"backbone": "toy_cnn"}}, "cell.source"),
])
def test_a_damaged_cell_record_is_not_read_and_the_report_names_its_field(tmp_path, damage, problem):
    records.write_json_atomic(tmp_path / "good.json", _cell_record(cell_id="good"))
    records.write_json_atomic(tmp_path / "abc.json", _cell_record(**damage))
    assert records.read_record(tmp_path / "good.json") is not None
    assert records.read_record(tmp_path / "abc.json") is None  # not finished: a run recomputes it
    assert [p.name for p in records.damaged_records(tmp_path)] == ["abc.json"]
    assert problem in records.record_file_problem(tmp_path / "abc.json")
