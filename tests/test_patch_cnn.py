"""patch_cnn (Shen et al.): the network, its two-stage source pre-training, and its cells in a suite."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bench.backbones import (
    BACKBONES,
    create_backbone,
    stage_boundaries,
    transfer_weights,
)
from bench.backbones.patch_cnn import PatchCNN
from bench.data import ArrayDataset
from bench.data.patches import MissingMasksError
from bench.runner.recipes import pretrain_two_stage
from bench.suite import SuiteError, build_suite

SPEC = BACKBONES.get("patch_cnn")


def _stage_shapes(model: torch.nn.Module, size: int) -> tuple[torch.Tensor, dict[str, tuple]]:
    shapes = {}
    hooks = [model.get_submodule(m).register_forward_hook(lambda _m, _i, o, s=s: shapes.__setitem__(s, o.shape))
             for s, m in stage_boundaries(model, SPEC.stages).items()]
    with torch.no_grad():
        out = model.eval()(torch.zeros(2, 3, size, size))
    for h in hooks:
        h.remove()
    return out, shapes


@pytest.mark.parametrize("size", [32, 64])
def test_forward_shape_and_declared_stage_channels_and_strides(size):
    torch.manual_seed(0)
    out, shapes = _stage_shapes(create_backbone("patch_cnn", 2), size)
    assert out.shape == (2, 2)
    assert list(shapes) == ["conv1", "block1", "block2", "block3", "block4"]
    for (stage, shape), ch, red in zip(shapes.items(), SPEC.channels, SPEC.reductions):
        assert shape[1] == ch, stage
        assert shape[2] == -(-size // red), (stage, shape, red)


def test_patch_classifier_shares_the_trunk_and_not_the_top():
    torch.manual_seed(0)
    whole = PatchCNN(2)
    clf = whole.patch_classifier(5)
    assert clf(torch.zeros(3, 3, 16, 16)).shape == (3, 5)
    trunk = {id(p) for m in (whole.conv1, whole.block1, whole.block2, whole.block3) for p in m.parameters()}
    own = {id(p) for p in clf.parameters()}
    assert trunk < own and not own & {id(p) for p in whole.top.parameters()}
    before = whole.block3.conv1.weight.detach().clone()
    loss = clf(torch.randn(4, 3, 16, 16)).logsumexp(1).sum()
    loss.backward()
    torch.optim.SGD(clf.parameters(), lr=0.1).step()
    assert not torch.equal(before, whole.block3.conv1.weight)


def test_hybrid_transfer_keeps_the_trunk_up_to_block2():
    torch.manual_seed(0)
    src = create_backbone("patch_cnn")
    torch.manual_seed(1)
    dst = create_backbone("patch_cnn")
    info = transfer_weights(dst, src.state_dict(), mode="hybrid", hybrid_stage="block2", stages=SPEC.stages)
    assert info["loaded"] > 0 and info["kept_random"] > 0
    assert torch.equal(dst.block2.conv2.weight, src.block2.conv2.weight)
    assert not torch.equal(dst.block3.conv1.weight, src.block3.conv1.weight)
    assert not torch.equal(dst.fc.weight, src.fc.weight)


def _suite(**over) -> dict:
    raw = {"axes": {"backbone": ["patch_cnn", "toy_cnn"], "source": ["random", "imagenet", "synth-ddsm"],
                    "ft_fraction": [0, 0.1], "target": ["synth-inbreast"]},
           "image_size": 32}
    raw.update(over)
    return json.loads(json.dumps(raw))


def test_imagenet_cells_are_na_and_patch_settings_enter_only_patch_cnn_ids():
    s = build_suite(_suite())
    for c in s.cells:
        if c.backbone == "patch_cnn" and c.source == "imagenet":
            assert c.na_reason and "Table 1" in c.na_reason and c.pretrain_id is None
        elif c.source == "imagenet":
            assert (c.na_reason is not None) == (c.ft_fraction == 0)  # toy_cnn: only the usual No-FT NA
        else:
            assert c.na_reason is None
    ids = {c.backbone: c.pretrain_id for c in s.cells if c.source == "synth-ddsm"}
    assert "patch" in next(c.config["pretrain"] for c in s.cells if c.backbone == "patch_cnn" and c.pretrain_id)
    assert "patch" not in next(c.config["pretrain"] for c in s.cells if c.backbone == "toy_cnn" and c.pretrain_id)
    s2 = build_suite(_suite(pretrain={"patch": {"per_lesion": 3}}))
    ids2 = {c.backbone: c.pretrain_id for c in s2.cells if c.source == "synth-ddsm"}
    assert ids2["toy_cnn"] == ids["toy_cnn"] and ids2["patch_cnn"] != ids["patch_cnn"]


def test_patch_settings_are_validated():
    with pytest.raises(SuiteError, match=r"pretrain\.patch\.per_lesions: unknown key .* Did you mean: 'per_lesion'"):
        build_suite(_suite(pretrain={"patch": {"per_lesions": 3}}))
    with pytest.raises(SuiteError, match=r"pretrain\.patch\.patch_size: 40 is larger than the image \(32 px\)"):
        build_suite(_suite(pretrain={"patch": {"patch_size": 40}}))


def _cfg(**over) -> dict:
    cfg = {"backbone": "patch_cnn", "source": "hand", "seed": 0, "image_size": 32, "epochs": 1, "lr": 1e-3,
           "batch_size": 8, "weight_decay": 0.0, "warmup_epochs": 0, "val_fraction": 0.0,
           "patch": {"epochs": 1, "batch_size": 16, "per_lesion": 2, "background_per_image": 2}}
    cfg.update(over)
    return cfg


def _blobs(n: int = 24, masks: bool = True) -> ArrayDataset:
    """Bright squares (malignant) or dim ones (benign) on flat tissue, with masks and kinds."""
    rng = np.random.default_rng(0)
    images = np.full((n, 32, 32), 100, np.uint8)
    m = np.zeros((n, 32, 32), bool)
    labels = np.arange(n) % 2
    for i in range(n):
        r, c = rng.integers(4, 24, 2)
        m[i, r:r + 5, c:c + 5] = True
        images[i][m[i]] = 220 if labels[i] else 150
    return ArrayDataset(name="hand", images=images, labels=labels, image_ids=np.array([f"h{i}" for i in range(n)]),
                        masks=m if masks else None, meta={"lesion_kind": ["mass"] * n})


def test_two_stage_recipe_trains_patches_then_whole_images():
    torch.set_num_threads(1)
    ds = _blobs()
    train, held = np.arange(18), np.arange(18, 24)
    model, history, details = pretrain_two_stage(_cfg(), ds, train, held, seeds={"init": 0, "split": 0},
                                                 log=lambda m: None)
    assert isinstance(model, PatchCNN)
    assert [h["stage"] for h in history] == ["patch", "whole_image"]
    p = details["patches"]
    assert p["patch_size"] == 8 and p["classes"][0] == "background"
    # patches only from the training images: 2 lesion + 2 background patches each
    assert sum(p["counts"].values()) == 4 * len(train)
    assert p["per_epoch"] == 3 * 36  # balanced: benign and malignant mass oversampled to the 36 background
    assert 0.0 <= p["held_out_accuracy"] <= 1.0
    assert set(model.state_dict()) == set(create_backbone("patch_cnn").state_dict())


def test_recipe_without_masks_names_the_dataset_and_patch_cnn():
    with pytest.raises(MissingMasksError, match=r"dataset 'hand' has no lesion masks.*patch_cnn"):
        pretrain_two_stage(_cfg(), _blobs(masks=False), np.arange(10), np.arange(0), seeds={"init": 0, "split": 0},
                           log=lambda m: None)


@pytest.mark.slow
def test_tiny_suite_end_to_end(tmp_path):
    from bench.records import load_records, read_record
    from bench.runner import run_suite

    torch.set_num_threads(1)
    raw = _suite(axes={"backbone": ["patch_cnn"], "source": ["random", "imagenet", "synth-ddsm"],
                       "ft_fraction": [0, 0.1], "target": ["synth-inbreast"]},
                 pretrain={"epochs": 1, "batch_size": 32, "patch": {"epochs": 1, "per_lesion": 4,
                                                                    "background_per_image": 4}},
                 finetune={"epochs": 1, "batch_size": 8},
                 data={"synth-ddsm": {"n_images": 200}, "synth-inbreast": {"n_images": 60}})
    raw["name"] = "tiny-patch"
    raw["executor"] = {"workers": 0, "threads": 1}  # in this process: no worker start-up, one thread
    suite = build_suite(raw)
    summary = run_suite(suite, results_root=tmp_path, progress=False, log=lambda m: None)
    assert summary.failed == 0 and summary.pretrained == 1
    recs = load_records(tmp_path / "tiny-patch")
    assert len(recs) == len(suite.cells) == 6
    for r in recs:
        if r["cell"]["source"] == "imagenet":
            assert r["status"] == "na" and "Table 1" in r["reason"]
        else:
            assert r["status"] == "ok" and 0 <= r["metrics"]["auc"] <= 1
    (pid,) = {c.pretrain_id for c in suite.cells if c.pretrain_id}
    meta = read_record(tmp_path / "pretrain" / f"{pid}.json")
    assert [h["stage"] for h in meta["history"]] == ["patch", "whole_image"]
    assert meta["patches"]["classes"][0] == "background" and len(meta["patches"]["classes"]) == 5
    assert meta["patches"]["patch_size"] == 8
    assert 0 <= meta["held_out"]["auc"] <= 1
    used = [r for r in recs if r["cell"]["source"] == "synth-ddsm"]
    assert all(r["weights"]["pretrain_id"] == pid and r["weights"]["transfer"]["kept_random"] == 0 for r in used)
