"""per_backbone: settings for one backbone only (MorphHR at twice the image size, a lower rate for vgg16)."""
from __future__ import annotations

import copy

import pytest

from bench.suite import SuiteError, build_suite

BASE = {"name": "pb",
        "axes": {"backbone": ["toy_cnn", "resnet18"], "source": ["random", "synth-ddsm"], "ft_fraction": [0, 0.5],
                 "target": ["synth-inbreast"], "seeds": 1},
        "image_size": 32, "pretrain": {"epochs": 1, "lr": 0.001},
        "finetune": {"epochs": 2, "lr": 0.001, "batch_size": 8}}


def _with(per_backbone: dict, **extra) -> dict:
    raw = copy.deepcopy(BASE)
    raw["per_backbone"] = per_backbone
    raw.update(extra)
    return raw


def _by(suite, backbone: str, source: str, frac: float):
    (cell,) = [c for c in suite.cells if (c.backbone, c.source, c.ft_fraction) == (backbone, source, frac)]
    return cell


def test_only_the_named_backbone_changes_and_other_ids_stay():
    plain = build_suite(copy.deepcopy(BASE))
    suite = build_suite(_with({"resnet18": {"image_size": 64, "pretrain": {"lr": 0.0001},
                                            "finetune": {"schedule": "morphhr-2stage"}}}))
    toy = {c.cell_id for c in plain.cells if c.backbone == "toy_cnn"}
    assert toy == {c.cell_id for c in suite.cells if c.backbone == "toy_cnn"}
    assert not {c.cell_id for c in plain.cells if c.backbone == "resnet18"} & {c.cell_id for c in suite.cells}
    cell = _by(suite, "resnet18", "synth-ddsm", 0.5)
    assert cell.config["image_size"] == 64 and cell.config["pretrain"]["image_size"] == 64
    assert cell.config["pretrain"]["lr"] == 0.0001 and cell.config["pretrain"]["epochs"] == 1  # merged key by key
    ft = cell.config["finetune"]
    assert "epochs" not in ft and len(ft["schedule"]) == 2 and ft["batch_size"] == 8  # a schedule replaces epochs/lr
    # its own source pre-training, separate from toy_cnn's and from the suite-size one
    assert cell.pretrain_id != _by(plain, "resnet18", "synth-ddsm", 0.5).pretrain_id


def test_train_modes_start_from_the_backbones_own_finetune_block():
    raw = _with({"resnet18": {"finetune": {"batch_size": 4}}},
                train_modes={"tl": {"schedule": [{"trainable": "head", "epochs": 1, "lr": 0.001}]}})
    raw["axes"]["train_mode"] = ["default", "tl"]
    suite = build_suite(raw)
    tl = [c for c in suite.cells if c.train_mode == "tl" and c.ft_fraction > 0]
    assert {c.backbone: c.config["finetune"]["batch_size"] for c in tl} == {"toy_cnn": 8, "resnet18": 4}


@pytest.mark.parametrize("per_backbone,must_contain", [
    ({"resnet81": {"image_size": 64}}, ["per_backbone.resnet81", "not on axes.backbone", "Did you mean: 'resnet18'"]),
    ({"resnet18": {"image_sise": 64}}, ["per_backbone.resnet18.image_sise", "Did you mean: 'image_size'"]),
    ({"resnet18": {"pretrain": {"lrr": 0.1}}}, ["per_backbone.resnet18.pretrain.lrr", "Did you mean: 'lr'"]),
    ({"resnet18": {"image_size": 8}}, ["per_backbone.resnet18.image_size", "between 16 and 4096"]),
    ({"resnet18": {"finetune": 3}}, ["per_backbone.resnet18.finetune", "a mapping"]),
])
def test_bad_per_backbone_settings_get_one_clear_message(per_backbone, must_contain):
    with pytest.raises(SuiteError) as err:
        build_suite(_with(per_backbone))
    for text in must_contain:
        assert text in str(err.value), str(err.value)
