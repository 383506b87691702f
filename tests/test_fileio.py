"""Atomic writes (bench.fileio): the old file or the whole new one, never a half-written file."""
from __future__ import annotations

import json
import math
import stat

import pytest

from bench import fileio


def test_bytes_text_and_json_round_trip_and_create_missing_folders(tmp_path):
    assert fileio.write_bytes_atomic(tmp_path / "a" / "b.bin", b"\x00\x01") == tmp_path / "a" / "b.bin"
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    fileio.write_text_atomic(tmp_path / "t.txt", "naïve\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "naïve\n"
    fileio.write_json_atomic(tmp_path / "r.json", {"auc": float("nan"), "n": [1, 2]})
    text = (tmp_path / "r.json").read_text()
    assert text == json.dumps({"auc": float("nan"), "n": [1, 2]}, indent=1)  # the records' format
    assert math.isnan(json.loads(text)["auc"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "r.json", "t.txt"]  # no temp file left


def test_a_failing_writer_keeps_the_old_file_and_removes_its_temp_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    fileio.write_bytes_atomic(path, b"old")

    def half_then_crash(f):
        f.write(b"ne")
        raise KeyboardInterrupt  # even an interrupt cleans up

    with pytest.raises(KeyboardInterrupt):
        fileio.write_atomic_with(path, half_then_crash)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_callback_writer_serves_torch_save(tmp_path):
    torch = pytest.importorskip("torch")
    state = {"w": torch.arange(3.0)}
    fileio.write_atomic_with(tmp_path / "s.pt", lambda f: torch.save(state, f))
    assert torch.equal(torch.load(tmp_path / "s.pt", weights_only=True)["w"], state["w"])


def test_temp_file_is_hidden_next_to_the_target_and_mode_is_applied(tmp_path, monkeypatch):
    seen = []

    def spy(f):
        seen.extend(p.name for p in tmp_path.iterdir())
        f.write(b"x")

    fileio.write_atomic_with(tmp_path / "c.claim", spy, mode=0o644)
    assert len(seen) == 1 and seen[0].startswith(".c.claim.") and seen[0].endswith(".tmp")  # what `bench run` sweeps
    assert stat.S_IMODE((tmp_path / "c.claim").stat().st_mode) == 0o644
