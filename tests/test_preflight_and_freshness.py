"""Issue 13, items 1, 3 and 7 in part: nothing is reused on changed data or weights, and what would sink cells is
said before anything runs.

- A finished record is reused only for the same data: changing the images or labels behind a suite (same root,
  or another folder) or the ImageNet weights file makes ``bench run`` refuse, naming the dataset or the weights;
  ``--recompute-changed`` recomputes them and keeps the old records under ``_replaced/``. Moving the same data
  to another folder keeps its results.
- ``bench validate`` and ``bench plan`` report missing data folders and ImageNet weights with the count of cells
  each sinks; ``bench run`` stops before computing unless ``--run-rest``.
- Every unreadable image of a suite's dataset is listed once, before any cell runs.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from bench.backbones import create_backbone
from bench.cli import main

pytestmark = pytest.mark.filterwarnings("ignore")


def _images(root: Path, n: int = 8, seed: int = 0, swap: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    for cls in ("benign", "malignant"):
        (root / cls).mkdir(parents=True, exist_ok=True)
    for i in range(2 * n):
        cls = ("benign", "malignant")[(i % 2) ^ swap]
        img = rng.integers(0, 255, (36, 36), dtype=np.uint8)
        if cls == "malignant":
            img[10:26, 10:26] = 255
        Image.fromarray(img).save(root / cls / f"p{i:02d}.png")
    return root


def _suite(tmp: Path, root: Path, *, name: str = "fresh", source: str = "random", **extra) -> Path:
    raw = {"name": name, "axes": {"backbone": ["toy_cnn"], "source": [source], "ft_fraction": [0.5],
                                  "target": ["folder"], "seeds": 1},
           "image_size": 32, "finetune": {"epochs": 1, "batch_size": 8},
           "data": {"folder": {"root": str(root)}}, **extra}
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def _run(suite: Path, tmp: Path, *extra) -> list[str]:
    return ["run", str(suite), "--results", str(tmp / "results"), "--reports", str(tmp / "reports"),
            "--no-progress", "--workers", "0", *extra]


def _records(tmp: Path, name: str = "fresh") -> list[Path]:
    return sorted((tmp / "results" / name).glob("*.json"))


def _only_record(tmp: Path) -> dict:
    recs = [p for p in _records(tmp) if not p.name.startswith("_")]
    assert len(recs) == 1, recs
    return json.loads(recs[0].read_text())


def test_changed_images_are_not_reused_and_recompute_keeps_the_old_record(tmp_path, capsys):
    data = _images(tmp_path / "data")
    suite = _suite(tmp_path, data)
    assert main(_run(suite, tmp_path)) == 0
    first = _only_record(tmp_path)
    assert first["data"]["target"]["n_images"] == 16 and len(first["data"]["target"]["fingerprint"]) == 20
    capsys.readouterr()

    # the same folder, labels swapped: the old record must not be reused
    shutil.rmtree(data)
    _images(data, swap=True)
    before = {p: p.read_bytes() for p in _records(tmp_path)}
    assert main(_run(suite, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "dataset 'folder'" in err and "other data" in err and "--recompute-changed" in err, err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in _records(tmp_path)} == before  # nothing touched

    assert main(_run(suite, tmp_path, "--recompute-changed")) == 0
    err = capsys.readouterr().err
    assert "1 computed" in err, err
    second = _only_record(tmp_path)
    assert second["data"]["target"]["fingerprint"] != first["data"]["target"]["fingerprint"]
    kept = list((tmp_path / "results" / "fresh" / "_replaced").rglob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["data"] == first["data"]
    # the report reads only the suite's current records, not those kept aside
    assert main(["report", str(tmp_path / "results" / "fresh"), "--reports", str(tmp_path / "reports")]) == 0


def test_another_folder_with_other_images_is_refused_but_moved_data_keeps_its_results(tmp_path, capsys):
    a = _images(tmp_path / "a")
    assert main(_run(_suite(tmp_path, a), tmp_path)) == 0
    capsys.readouterr()
    moved = tmp_path / "moved"
    shutil.copytree(a, moved)  # the same content elsewhere (new file dates too): reused
    assert main(_run(_suite(tmp_path, moved), tmp_path)) == 0
    assert "1 already done" in capsys.readouterr().err
    other = _images(tmp_path / "b", seed=1)  # other images: refused
    assert main(_run(_suite(tmp_path, other), tmp_path)) == 2
    err = capsys.readouterr().err
    assert "dataset 'folder'" in err and "16 images (8 malignant) when computed" in err, err


def test_changed_imagenet_weights_are_not_reused(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(create_backbone("toy_cnn", 2).state_dict(), weights / "toy_cnn.pth")
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(weights))
    suite = _suite(tmp_path, _images(tmp_path / "data"), source="imagenet")
    assert main(_run(suite, tmp_path)) == 0
    capsys.readouterr()
    torch.manual_seed(1)
    torch.save(create_backbone("toy_cnn", 2).state_dict(), weights / "toy_cnn.pth")
    assert main(_run(suite, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "ImageNet weights of 'toy_cnn'" in err and "SHA-256" in err, err


def test_missing_weights_and_data_are_reported_by_validate_plan_and_stop_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BENCH_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    raw = {"name": "blocked", "axes": {"backbone": ["toy_cnn"], "source": ["random", "imagenet"],
                                       "ft_fraction": [0.5], "target": ["synth-inbreast", "mias"], "seeds": 2},
           "image_size": 32, "finetune": {"epochs": 1, "batch_size": 8},
           "data": {"synth-inbreast": {"n_images": 40}}}
    suite = tmp_path / "blocked.yaml"
    suite.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(suite)]) == 1
    out, err = capsys.readouterr()
    assert "6 of 8 cell(s) cannot start here" in err, err
    assert "data folder of 'mias' (4 cell(s))" in err and "ImageNet weights of 'toy_cnn' (4 cell(s))" in err, err
    assert "BENCH_WEIGHTS_DIR" in err and "--data-root" in err
    assert main(["plan", str(suite), "--results", str(tmp_path / "results")]) == 1
    assert "6 of 8 cell(s) cannot start here" in capsys.readouterr().err

    argv = ["run", str(suite), "--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports"),
            "--no-progress", "--workers", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Nothing was computed" in err and "--run-rest to compute the other 2 cell(s)" in err, err
    assert not list((tmp_path / "results").rglob("*.json"))

    assert main([*argv, "--run-rest"]) == 1  # the two random synth cells ran; six stay pending
    err = capsys.readouterr().err
    assert "2 computed" in err and "6 left pending" in err, err
    assert len(list((tmp_path / "results" / "blocked").glob("*.json"))) == 2 + 1  # + _suite.json


def test_every_unreadable_image_is_listed_once_before_any_cell_runs(tmp_path, capsys):
    data = _images(tmp_path / "data")
    good = (data / "malignant" / "p01.png").read_bytes()
    for name in ("bad1.png", "bad2.png"):  # a readable header, truncated pixel data: found only when decoding
        (data / "malignant" / name).write_bytes(good[: len(good) // 2])
    raw = yaml.safe_load(_suite(tmp_path, data).read_text())
    raw["axes"]["seeds"] = 3
    suite = tmp_path / "fresh.yaml"
    suite.write_text(yaml.safe_dump(raw))
    assert main(_run(suite, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "2 unreadable files" in err and err.count("bad1.png") == 1 and err.count("bad2.png") == 1, err
    assert "--skip-bad" in err and "Traceback" not in err
    assert not list((tmp_path / "results").rglob("*.json"))  # no cell ran (or failed) one by one


def test_a_finished_suite_whose_data_became_unreadable_is_not_reused(tmp_path, capsys):
    data = _images(tmp_path / "data")
    suite = _suite(tmp_path, data)
    assert main(_run(suite, tmp_path)) == 0
    good = (data / "malignant" / "p01.png").read_bytes()
    (data / "malignant" / "extra.png").write_bytes(good[: len(good) // 2])
    capsys.readouterr()
    assert main(_run(suite, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "extra.png" in err and "--skip-bad" in err, err


def test_a_replaced_source_checkpoint_is_not_reused(tmp_path, capsys):
    raw = {"name": "src", "axes": {"backbone": ["toy_cnn"], "source": ["synth-ddsm"], "ft_fraction": [0.5],
                                   "target": ["synth-inbreast"], "seeds": 1},
           "image_size": 32, "pretrain": {"epochs": 1, "batch_size": 16}, "finetune": {"epochs": 1, "batch_size": 8},
           "data": {"synth-inbreast": {"n_images": 40}, "synth-ddsm": {"n_images": 60}}}
    suite = tmp_path / "src.yaml"
    suite.write_text(yaml.safe_dump(raw))
    assert main(_run(suite, tmp_path)) == 0
    (ckpt,) = (tmp_path / "results" / "pretrain").glob("*.pt")
    torch.manual_seed(5)
    torch.save(create_backbone("toy_cnn", 2).state_dict(), ckpt)  # someone else's checkpoint under its name
    capsys.readouterr()
    assert main(_run(suite, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "source pre-training checkpoint" in err and ckpt.name in err and "SHA-256" in err, err
