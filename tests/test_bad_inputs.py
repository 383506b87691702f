"""Every bad input in docs/bad-inputs.md: a non-zero exit, one clear message, no traceback, nothing lost.

Each case runs ``bench.cli.main([...])`` in-process against a results root that already holds a finished
record; after the case that record must be byte-for-byte the same file.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bench.cli import main
from bench.records import record_path
from bench.runner import executor_settings, run_suite
from bench.suite import build_suite

BASE = {"name": "base", "axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0],
                                 "target": ["synth-inbreast"], "seeds": 1},
        "image_size": 32, "finetune": {"epochs": 1, "batch_size": 8}, "data": {"synth-inbreast": {"n_images": 40}}}


def _variant(**over) -> dict:
    raw = json.loads(json.dumps(BASE))
    for k, v in over.items():
        if k == "axes":
            raw["axes"].update(v)
        else:
            raw[k] = v
    return raw


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A results root with one finished cell, a folder dataset with a corrupt image, suite files."""
    d = tmp_path_factory.mktemp("bad")
    root = d / "results"
    suite = build_suite(json.loads(json.dumps(BASE)))
    run_suite(suite, results_root=root, executor=executor_settings(suite, workers=0), progress=False,
              log=lambda m: None)
    rec = record_path(root / "base", suite.cells[0].cell_id)
    assert rec.exists()
    # a renamed results folder: results/other holds suite 'base'
    shutil.copytree(root / "base", root / "other")
    imgs = d / "imgs"
    rng = np.random.default_rng(0)
    for cls in ("benign", "malignant"):
        (imgs / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(imgs / cls / f"{cls}{i}.png")
    (imgs / "malignant" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (d / "notes").mkdir()
    return {"dir": d, "root": root, "record": rec, "imgs": imgs}


def _suite_file(world, name: str, raw) -> str:
    p = world["dir"] / f"{name}.yaml"
    p.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return str(p)


def _run(world, name, raw, *extra, own_root: bool = False) -> list[str]:
    # own_root: a suite file of its own keeping the name 'base' gets its own results root (since issue 13 another
    # suite file with the same name is refused a folder that belongs to a first one)
    root = world["dir"] / f"results-{name}" if own_root else world["root"]
    return ["run", _suite_file(world, name, raw), "--results", str(root), "--reports",
            str(world["dir"] / "reports"), "--no-progress", "--workers", "0", *extra]


def _validate(world, name, raw) -> list[str]:
    return ["validate", _suite_file(world, name, raw)]


# (id, argv(world), expected text in the message). The same table, with the messages, is docs/bad-inputs.md.
def _changed_data(w) -> list[str]:
    """A folder suite finished on 12 images, then two of them swap classes: its record must not be reused."""
    data = w["dir"] / "changing"
    if not data.exists():
        shutil.copytree(w["imgs"], data, ignore=shutil.ignore_patterns("broken.png"))
        raw = _variant(axes={"target": ["folder"], "ft_fraction": [0.5]}, data={"folder": {"root": str(data)}})
        assert main(_run(w, "changing", raw, own_root=True)) == 0
        (data / "benign" / "benign0.png").rename(data / "malignant" / "moved0.png")
        (data / "malignant" / "malignant0.png").rename(data / "benign" / "moved1.png")
    return _run(w, "changing", (w["dir"] / "changing.yaml").read_text(), own_root=True)


CASES = [
    ("suite-name-typo", lambda w: ["run", "smok"], "unknown suite 'smok'. Did you mean: smoke?"),
    ("suite-file-missing", lambda w: ["validate", str(w["dir"] / "nope.yaml")], "nope.yaml: no such suite file"),
    ("not-yaml", lambda w: _validate(w, "notyaml", "axes: [unclosed\n"), "not valid YAML"),
    ("not-a-mapping", lambda w: _validate(w, "list", "- a\n- b\n"), "a suite is a YAML mapping"),
    ("top-level-key-typo", lambda w: _validate(w, "axis", {**_variant(), "axis": {}}),
     "unknown key 'axis'. Did you mean: 'axes'"),
    ("unknown-backbone", lambda w: _validate(w, "bb", _variant(axes={"backbone": ["resnet81"]})),
     "axes.backbone[0]: unknown backbone 'resnet81'. Did you mean"),
    ("unknown-target", lambda w: _validate(w, "tg", _variant(axes={"target": ["synth-inbreats"]})),
     "axes.target[0]: unknown dataset 'synth-inbreats'. Did you mean: 'synth-inbreast'"),
    ("unknown-source", lambda w: _validate(w, "src", _variant(axes={"source": ["imagnet"]})),
     "axes.source[0]: unknown source 'imagnet'. Did you mean: 'imagenet'"),
    ("seeds-wrong-type", lambda w: _validate(w, "seeds", _variant(axes={"seeds": "three"})), "axes.seeds"),
    ("fraction-out-of-range", lambda w: _validate(w, "frac", _variant(axes={"ft_fraction": [1.5]})),
     "axes.ft_fraction: ft_fraction 1.5: a share must be below 1"),
    ("fraction-one", lambda w: _validate(w, "fracone", _variant(axes={"ft_fraction": [1.0]})),
     ("axes.ft_fraction: ft_fraction 1.0: a share must be below 1 (1.0 would fine-tune on every target patient and "
      "leave none to evaluate); for a number of patients write '1 patient' or '20 patients'")),
    ("fraction-bare-patient-count", lambda w: _validate(w, "fraccount", _variant(axes={"ft_fraction": [20, 0.5]})),
     ("axes.ft_fraction: ft_fraction 20: a share must be below 1 (1 would already be every target patient, leaving "
      "none to evaluate); for a number of patients write '20 patients'")),
    ("epochs-zero", lambda w: _validate(w, "ep", _variant(finetune={"epochs": 0})),
     "finetune.epochs: Input should be greater than or equal to 1"),
    ("image-size-too-small", lambda w: _validate(w, "size", _variant(image_size=8)), "image_size"),
    ("unknown-train-mode", lambda w: _validate(w, "tm", _variant(axes={"train_mode": ["default", "tll"]},
                                                                  train_modes={"tl": {"lr": 0.001}})),
     "axes.train_mode[1]: unknown train mode 'tll'. Did you mean: 'tl'"),
    ("train-mode-key-typo", lambda w: _validate(w, "tmk", _variant(axes={"train_mode": ["tl"]},
                                                                   train_modes={"tl": {"shedule": "falconi-tl"}})),
     "train_modes.tl.shedule: unknown key 'shedule'. Did you mean: 'schedule'"),
    ("exclusion-unknown-axis", lambda w: _validate(w, "exa", _variant(exclude=[{"sorce": "random"}])),
     "exclude[0].sorce: unknown axis 'sorce'. Did you mean: 'source'?"),
    ("exclusion-value-not-in-axis", lambda w: _validate(w, "exv", _variant(exclude=[{"source": "imagenet"}])),
     "exclude[0].source: 'imagenet' is not a value of axis 'source'"),
    ("empty-after-exclusions", lambda w: _validate(w, "empty", _variant(exclude=[{"source": "random"}])),
     "every cell of the product is excluded; nothing to run"),
    ("plugin-not-importable", lambda w: _validate(w, "plug", _variant(plugins=["no_such_plugin_mod"])),
     "plugin module 'no_such_plugin_mod' could not be imported"),
    ("dataset-option-typo", lambda w: _validate(w, "opt", _variant(data={"synth-inbreast": {"n_imgs": 40}})),
     "data.synth-inbreast.n_imgs: unknown key 'n_imgs'. Did you mean: 'n_images'"),
    ("executor-key-typo", lambda w: _validate(w, "exk", _variant(executor={"workrs": 2})),
     "executor.workrs: unknown key 'workrs'. Did you mean: 'workers', 'workers_per_gpu'?"),
    ("executor-unknown-kind", lambda w: _validate(w, "exkind", _variant(executor={"kind": "ray"})),
     "executor.kind: Input should be 'local' or 'slurm'"),
    ("negative-workers", lambda w: _run(w, "base", BASE, "--workers", "-1"), "--workers -1: give 0"),
    ("unknown-executor-flag-value", lambda w: ["run", "smoke", "--executor", "ray"],
     "argument --executor: invalid choice: 'ray'"),
    ("missing-data-root", lambda w: _run(w, "mias", _variant(axes={"target": ["mias"]}, data={})),
     "dataset 'mias' needs its folder: set data.mias.root in the suite, pass --data-root"),
    ("data-root-does-not-exist", lambda w: _run(w, "miasroot", _variant(axes={"target": ["mias"]},
                                                                        data={"mias": {"root": "/no/such/mias"}})),
     "folder /no/such/mias does not exist"),
    ("unreadable-image", lambda w: _run(w, "folder", _variant(axes={"target": ["folder"]},
                                                              data={"folder": {"root": str(w["imgs"])}})),
     "broken.png"),
    ("fraction-leaves-a-class-empty", lambda w: _run(w, "tiny", _variant(axes={"ft_fraction": [0.01]}), own_root=True),
     "has no image in the fine-tune part"),
    ("results-folder-of-another-suite", lambda w: _run(w, "other", {**BASE, "name": "other"}),
     "this results folder belongs to suite 'base'"),
    ("status-of-a-missing-folder", lambda w: ["status", str(w["dir"] / "results" / "nothing")],
     "no such results folder"),
    ("status-of-a-folder-without-manifest", lambda w: ["status", str(w["dir"] / "notes")],
     "no _suite.json (written by 'bench run')"),
    ("report-of-an-empty-folder", lambda w: ["report", str(w["dir"] / "notes")], "no cell records (*.json) found"),
    ("imagenet-weights-missing", lambda w: _run(w, "noweights", _variant(
        axes={"source": ["random", "imagenet"], "ft_fraction": [0.5]}), own_root=True),
     "1 of 2 cell(s) cannot start here:\n  ImageNet weights of 'toy_cnn' (1 cell(s)): no local ImageNet weights"),
    ("validate-missing-data-root", lambda w: _validate(w, "vmias", _variant(axes={"target": ["mias", "synth-inbreast"]},
                                                                            data={})),
     "suite base: 1 of 2 cell(s) cannot start here:\n  data folder of 'mias' (1 cell(s)): dataset 'mias' needs its"),
    ("data-changed-since", _changed_data, "were computed on other data or weights than the suite points at now"),
    ("imagenet-weights-path-missing", lambda w: _run(w, "weights", _variant(
        axes={"source": ["imagenet"], "ft_fraction": [0.5]}, weights={"toy_cnn": "/no/such/toy.pth"}), own_root=True),
     "ImageNet checkpoint for backbone 'toy_cnn' not found at /no/such/toy.pth"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_message(world, case, capsys):
    _, argv, expected = case
    before = world["record"].stat()
    try:
        code = main(argv(world))
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code != 0
    assert expected in err, err
    assert "Traceback" not in err + out
    after = world["record"].stat()  # nothing already finished is lost or rewritten
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_the_docs_table_lists_every_case():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "bad-inputs.md").read_text()
    for case_id, _, _ in CASES:
        assert f"`{case_id}`" in doc, case_id
