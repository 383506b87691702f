"""A cell's config is frozen after expansion, and ``Cell.settings`` reads it as typed fields whose defaults are the
schema's (bench/suite/schema.py: CellSettings, FinetuneSettings.from_resolved)."""
from __future__ import annotations

import copy
import json
import pickle

import pytest

from bench.suite import FinetuneSettings, build_suite, content_hash, load_suite


def _cells():
    return load_suite("smoke").cells


def test_config_cannot_change_after_expansion():
    cell = next(c for c in _cells() if c.ft_fraction > 0)
    with pytest.raises(TypeError, match="frozen"):
        cell.config["image_size"] = 128
    with pytest.raises(TypeError, match="frozen"):
        cell.config["finetune"]["lr"] = 1.0
    with pytest.raises(TypeError, match="frozen"):
        cell.config["target_data"].update(root="/elsewhere")
    with pytest.raises(TypeError, match="frozen"):
        cell.config.pop("finetune")
    changed = {**cell.config, "image_size": 128}  # a copy is an ordinary dict
    changed["image_size"] = 96
    assert cell.config["image_size"] != 96


def test_frozen_config_hashes_dumps_copies_and_pickles_like_a_dict():
    for cell in _cells():
        plain = json.loads(json.dumps(cell.config))
        assert json.dumps(cell.config, sort_keys=True) == json.dumps(plain, sort_keys=True)
        assert content_hash(cell.config) == content_hash(plain)
        assert cell.config == plain
        assert pickle.loads(pickle.dumps(cell)).config == plain  # workers and Slurm jobs receive cells
        assert copy.deepcopy(cell.config) == plain


def test_settings_are_typed_with_the_schema_defaults():
    suite = build_suite({"name": "t", "axes": {"backbone": ["resnet18"], "source": ["random"], "ft_fraction": [0, 0.5],
                                               "target": ["synth-inbreast"], "transfer": ["full", "hybrid"],
                                               "seeds": 1},
                         "hybrid_stage": "block1", "finetune": {"epochs": 2, "augment": "none",
                                                                "early_stopping": {"patience": 3}}})
    ft_cells = [c for c in suite.cells if c.ft_fraction > 0]
    for cell in ft_cells:
        ft = cell.settings.finetune
        assert isinstance(ft, FinetuneSettings)
        assert ft.epochs == 2 and ft.augment == "none" and ft.batch_size == FinetuneSettings().batch_size
        assert ft.early_stopping.patience == 3 and ft.early_stopping.val_fraction == 0.2  # schema default
        assert ft.head is None and ft.class_weights == "none"
        assert ft.bn_recalibrate is True and cell.config["finetune"]["bn_recalibrate"] is True
    hybrid = next(c for c in ft_cells if c.transfer == "hybrid")
    assert hybrid.settings.hybrid_stage == "block1" and hybrid.settings.hybrid_width == 0.5  # the schema's 0.5
    full = next(c for c in ft_cells if c.transfer == "full")
    assert full.settings.hybrid_stage is None and full.settings.tta == "none"
    assert all(c.settings.finetune is None for c in suite.cells if c.ft_fraction == 0)


def test_recalibration_left_out_of_a_config_means_off():
    off = FinetuneSettings(bn_recalibrate=False).resolved()
    assert "bn_recalibrate" not in off  # so ids of results computed before it existed are kept
    assert FinetuneSettings.from_resolved(off).bn_recalibrate is False
    assert FinetuneSettings.from_resolved(FinetuneSettings().resolved()).bn_recalibrate is True
