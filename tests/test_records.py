"""Atomic record writes and loading."""
from __future__ import annotations

import json

import pytest

from bench import records


def test_atomic_write_never_leaves_a_half_written_record(tmp_path, monkeypatch):
    path = records.record_path(tmp_path, "abc")
    records.write_json_atomic(path, {"cell_id": "abc", "status": "ok", "metrics": {"auc": 0.7}})

    def explode(obj, f, **kw):
        f.write('{"cell_id": "abc", "status": "ok", "metr')  # a partial write, then a crash
        raise OSError("disk full")

    monkeypatch.setattr(records.json, "dump", explode)
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
