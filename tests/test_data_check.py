"""`bench data check`: one JSON object, counts, problems and --skip-bad."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from bench.cli import main


def _folder(root, n_pos=3, n_neg=4):
    for cls, n in (("malignant", n_pos), ("benign", n_neg)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray((np.random.default_rng(i).random((20, 24)) * 255).astype(np.uint8)).save(
                root / cls / f"{cls}_{i}.png")
    return root


def test_json_summary_has_the_documented_keys_and_counts(tmp_path, capsys):
    root = _folder(tmp_path / "data")
    assert main(["data", "check", "folder", "--root", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)  # exactly one JSON object
    assert {"dataset", "images", "positives", "negatives", "patients", "excluded", "warnings"} <= set(out)
    assert (out["dataset"], out["images"], out["positives"], out["negatives"]) == ("folder", 7, 3, 4)
    assert out["patients"] is None
    # the fixture reuses one random image per index in both classes: 3 identical pairs + 1 single
    assert out["near_duplicate_groups"] == 4
    assert any("near-duplicate" in w for w in out["warnings"])


def test_unreadable_file_is_an_error_naming_it_unless_skip_bad(tmp_path, capsys):
    root = _folder(tmp_path / "data")
    (root / "benign" / "benign_1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["data", "check", "folder", "--root", str(root), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert any("benign_1.png" in p for p in out["problems"])
    assert main(["data", "check", "folder", "--root", str(root), "--json", "--skip-bad"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 6 and sum(out["excluded"].values()) == 1 and out["problems"] == []


def test_data_root_means_one_subfolder_per_dataset(tmp_path, capsys):
    _folder(tmp_path / "all" / "folder")
    assert main(["data", "check", "folder", "--data-root", str(tmp_path / "all"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 7


def test_missing_folder_is_one_clear_message(tmp_path, capsys):
    assert main(["data", "check", "mias", "--root", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "nope" in err
