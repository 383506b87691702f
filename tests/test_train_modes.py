"""Training modes: freezing by stage, new heads, staged schedules, class weights, early stopping,
augmentation, TTA, and their suite fields."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bench.augment import augment_batch
from bench.backbones import create_backbone
from bench.suite import FinetuneSettings, SuiteError, build_suite
from bench.train import fit, margin_loss, predict, selected_epoch
from bench.train_modes import (
    SCHEDULE_PRESETS,
    MLPHead,
    Stage,
    balanced_class_weights,
    finetune_stages,
    replace_head,
    trainable_parameters,
)

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def _data(n: int = 24, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 200, (n, size, size), dtype=np.uint8)
    images[labels == 1, 8:20, 10:24] = 255  # a learnable, asymmetric signal
    return images, labels


def _toy(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_backbone("toy_cnn", 2)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- freezing

def test_from_stage_freezes_everything_before_it_bit_for_bit():
    images, labels = _data()
    model = _toy()
    before = _snapshot(model)
    fit(model, images, labels, batch_size=8, seed=1, device=CPU,
        schedule=[Stage(epochs=2, lr=1e-2, trainable="from:block3")])
    after = model.state_dict()
    for key, old in before.items():
        stage = key.split(".")[0]
        if stage in ("conv1", "block1", "block2"):  # parameters AND BatchNorm running statistics
            assert torch.equal(after[key], old), f"frozen {key} changed"
        elif key.endswith(("weight", "running_mean")):
            assert not torch.equal(after[key], old), f"trainable {key} did not change"
    assert all(p.requires_grad for p in model.parameters()), "fit must leave every parameter trainable"


def test_head_only_on_a_timm_resnet():
    images, labels = _data(16)
    torch.manual_seed(0)
    model = create_backbone("resnet18", 2)
    names = trainable_parameters(model, "head")
    assert names == {"fc.weight", "fc.bias"}
    before = _snapshot(model)
    fit(model, images, labels, batch_size=8, seed=0, device=CPU, schedule=[Stage(epochs=1, lr=1e-2, trainable="head")])
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"fc.weight", "fc.bias"}


def test_trainable_forms_on_resnet18():
    torch.manual_seed(0)
    model = create_backbone("resnet18", 2)
    every = {n for n, _ in model.named_parameters()}
    from_block3 = trainable_parameters(model, "from:block3")
    assert from_block3 == {n for n in every if n.startswith(("layer3.", "layer4.", "fc."))}
    assert trainable_parameters(model, ["conv1"]) == {"conv1.weight", "bn1.weight", "bn1.bias"}
    assert trainable_parameters(model, "all") == every
    assert trainable_parameters(model, ["block4", "head"]) == {n for n in every if n.startswith(("layer4.", "fc."))}


# --------------------------------------------------------------------------- heads

@pytest.mark.parametrize("backbone", ["toy_cnn", "resnet18"])
def test_falconi_head_replaces_the_classifier(backbone):
    torch.manual_seed(0)
    model = create_backbone(backbone, 2)
    name = replace_head(model, hidden=4096, dropout=0.2)
    head = model.get_submodule(name)
    assert isinstance(head, MLPHead)
    assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert head[0].out_features == 4096 and head[2].p == 0.2 and head[3].out_features == 2
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 2)
    assert trainable_parameters(model, "head") == {f"{name}.{k}" for k, _ in head.named_parameters()}


# --------------------------------------------------------------------------- schedules

def test_staged_schedule_history_and_learning_rates():
    images, labels = _data(16)
    hist = fit(_toy(), images, labels, batch_size=8, seed=0, device=CPU, schedule=[
        Stage(epochs=1, lr=1e-3, trainable="head", lr_decay="constant"),
        Stage(epochs=2, lr=1e-4, trainable="from:block4", lr_decay="constant"),
        Stage(epochs=1, lr=1e-5, trainable="all")])
    assert [e["stage"] for e in hist] == [1, 2, 2, 3]
    assert [e["epoch"] for e in hist] == [1, 2, 3, 4]
    assert hist[0]["lr"] == pytest.approx(1e-3) and hist[2]["lr"] == pytest.approx(1e-4)
    assert hist[3]["lr"] == pytest.approx(0.0)  # cosine decays to zero at the end of its stage


def test_finetune_stages_from_plain_and_scheduled_config():
    plain = FinetuneSettings().resolved()
    assert finetune_stages(FinetuneSettings.from_resolved(plain)) == [Stage(epochs=10, lr=3e-4, weight_decay=1e-4)]
    shen = FinetuneSettings.from_resolved(FinetuneSettings(schedule="shen-3stage").resolved())
    stages = finetune_stages(shen)
    assert [(s.trainable, s.epochs, s.lr) for s in stages] == [("head", 3, 1e-3), ("from:block4", 10, 1e-4),
                                                               ("all", 37, 1e-5)]
    assert sum(s.epochs for s in stages) == 50


# --------------------------------------------------------------------------- class weights

def test_balanced_class_weights_follow_morphhr_eq6():
    labels = np.array([0] * 30 + [1] * 10)
    w = balanced_class_weights(labels)
    # w[c] = (C / n_c) / sum_j 1 / n_j = 2 * (1/30, 1/10) / (4/30)
    np.testing.assert_allclose(w, [0.5, 1.5])
    assert w.mean() == pytest.approx(1.0)
    assert w[0] * 30 == pytest.approx(w[1] * 10)  # each class weighs the same in an epoch
    with pytest.raises(ValueError, match="class 1 has no image"):
        balanced_class_weights(np.zeros(5, int))


def test_class_weighted_loss_is_the_weighted_mean():
    margins, labels = np.array([0.3, -1.0, 2.0, 0.1]), np.array([0, 0, 0, 1])
    w = balanced_class_weights(labels)
    logits = torch.tensor(np.stack([np.zeros(4), margins], 1))
    per_image = torch.nn.functional.cross_entropy(logits, torch.tensor(labels), reduction="none").numpy()
    assert margin_loss(margins, labels, w) == pytest.approx(float(np.mean(w[labels] * per_image)))
    assert margin_loss(margins, labels) == pytest.approx(float(per_image.mean()))


# --------------------------------------------------------------------------- early stopping

def test_early_stopping_restores_the_best_validation_epoch():
    images, labels = _data(32)
    val_images, val_labels = _data(12, seed=5)
    model = _toy()
    hist = fit(model, images, labels, batch_size=8, seed=0, device=CPU, val_images=val_images,
               val_labels=val_labels, schedule=[Stage(epochs=4, lr=3e-2, lr_decay="constant")])
    best = min(hist, key=lambda e: e["val_loss"])
    assert selected_epoch(hist) == best["epoch"]
    assert sum(e["selected"] for e in hist) == 1 and all("val_auc" in e for e in hist)
    restored = margin_loss(predict(model, val_images, device=CPU), val_labels)
    assert restored == pytest.approx(best["val_loss"], rel=1e-5)


def test_patience_ends_a_stage_and_the_next_still_runs():
    images, labels = _data(32)
    val_images, val_labels = _data(12, seed=5)
    hist = fit(_toy(), images, labels, batch_size=8, seed=0, device=CPU, val_images=val_images,
               val_labels=val_labels, select_on="auc", patience=1,
               schedule=[Stage(epochs=8, lr=0.5, lr_decay="constant"), Stage(epochs=1, lr=1e-4)])
    first = [e for e in hist if e["stage"] == 1]
    assert [e["stage"] for e in hist][-1] == 2
    if len(first) < 8:  # stopped: its last epoch did not improve on the best before it
        best_before = max(e["val_auc"] for e in hist[:len(first) - 1])
        assert first[-1]["val_auc"] <= best_before
    assert selected_epoch(hist) == max(hist, key=lambda e: (e["val_auc"], -e["epoch"]))["epoch"]


def test_without_validation_nothing_is_selected():
    images, labels = _data(16)
    hist = fit(_toy(), images, labels, epochs=1, lr=1e-3, batch_size=8, device=CPU)
    assert selected_epoch(hist) is None and "val_loss" not in hist[0]


# --------------------------------------------------------------------------- augmentation and TTA

def test_falconi_augmentation_is_seeded_and_per_image():
    x = torch.rand(4, 1, 32, 32)
    x[1] = x[0]
    torch.manual_seed(3)
    a = augment_batch(x, "falconi")
    torch.manual_seed(3)
    b = augment_batch(x, "falconi")
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.equal(a, x) and not torch.equal(a[0], a[1])  # own parameters per image
    assert a.min() >= 0 and a.max() <= 1


def test_fit_with_falconi_augmentation_and_dropout_is_deterministic():
    images, labels = _data(16)
    models = []
    for _ in range(2):
        m = _toy()
        torch.manual_seed(0)
        replace_head(m, hidden=16, dropout=0.2)
        torch.manual_seed(12345 + len(models))  # the caller's RNG state must not matter
        fit(m, images, labels, epochs=1, lr=1e-3, batch_size=8, seed=4, augment="falconi", device=CPU)
        models.append(m)
    for p, q in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(p, q)


def test_tta_flips_average_the_four_views():
    images, _ = _data(6)
    model = _toy().eval()
    x = torch.from_numpy(images).float().div(255).unsqueeze(1).expand(-1, 3, -1, -1)
    x = (x - 0.5) / 0.5
    with torch.no_grad():
        views = [model(v) for v in (x, x.flip(-1), x.flip(-2), x.flip(-2, -1))]
    expected = torch.stack([v[:, 1] - v[:, 0] for v in views]).mean(0).numpy()
    np.testing.assert_allclose(predict(model, images, tta="flips", device=CPU), expected, rtol=1e-5, atol=1e-6)
    two = torch.stack([v[:, 1] - v[:, 0] for v in views[:2]]).mean(0).numpy()
    np.testing.assert_allclose(predict(model, images, tta="hflip", device=CPU), two, rtol=1e-5, atol=1e-6)
    assert not np.allclose(predict(model, images, device=CPU), expected)


# --------------------------------------------------------------------------- suite fields

BASE = {"axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0.5],
                 "target": ["synth-inbreast"]}}


def _suite(**kw):
    return build_suite(json.loads(json.dumps({**BASE, **kw})))


def test_plain_finetune_config_and_ids_are_unchanged_by_the_new_fields():
    plain = _suite(finetune={"epochs": 4})
    cfg = plain.cells[0].config
    # bn_recalibrate (issue 11) is in every config while it is on: cells computed without it differ
    assert set(cfg["finetune"]) == {"epochs", "lr", "batch_size", "weight_decay", "warmup_epochs", "bn_train",
                                    "bn_recalibrate"}
    assert "tta" not in cfg
    # writing the defaults explicitly is the same cell
    same = _suite(finetune={"epochs": 4, "augment": "flip", "class_weights": "none"}, tta="none")
    assert same.cells[0].cell_id == plain.cells[0].cell_id
    for extra in ({"finetune": {"epochs": 4, "augment": "falconi"}}, {"finetune": {"epochs": 4}, "tta": "flips"},
                  {"finetune": {"epochs": 4, "early_stopping": {}}}, {"finetune": {"schedule": "shen-2stage"}}):
        assert _suite(**extra).cells[0].cell_id != plain.cells[0].cell_id, extra


def test_presets_expand_to_explicit_stages_in_the_config():
    cfg = _suite(finetune={"schedule": "falconi-ft", "head": "falconi-ft"}).cells[0].config["finetune"]
    assert cfg["schedule"] == [{"trainable": "from:block3", "epochs": 1000, "lr": 2e-7, "weight_decay": 0.0,
                                "warmup_epochs": 0, "lr_decay": "constant"}]
    assert cfg["head"] == {"hidden": 0, "dropout": 0.2}
    assert "epochs" not in cfg and "lr" not in cfg  # the schedule replaces them
    assert set(SCHEDULE_PRESETS) >= {"shen-3stage", "shen-2stage", "falconi-tl", "falconi-ft"}


@pytest.mark.parametrize("finetune, message", [
    ({"schedule": "shen-3stag"}, r"finetune\.schedule: .*unknown schedule preset 'shen-3stag'\. Did you mean: 'shen-3stage'"),
    ({"schedule": [{"trainable": "from:blok3", "epochs": 1, "lr": 1e-3}]},
     r"finetune\.schedule\[0\]\.trainable: .*unknown stage 'blok3'\. Did you mean: 'block3'"),
    ({"schedule": [{"trainable": ["block4", "haed"], "epochs": 1, "lr": 1e-3}]}, r"Did you mean: 'head'"),
    ({"schedule": [{"epochs": 1, "lr": 1e-3, "lr_decy": "constant"}]},
     r"finetune\.schedule\[0\]\.lr_decy: unknown key .*Did you mean: 'lr_decay'"),
    ({"schedule": "shen-2stage", "lr": 1e-3}, r"finetune: .*either a schedule or lr, not both"),
    ({"schedule": [{"epochs": 2, "lr": 1e-3, "warmup_epochs": 3}]}, r"warmup_epochs \(3\) is longer"),
    ({"head": "falconi"}, r"finetune\.head: .*unknown head preset 'falconi'\. Did you mean: 'falconi-tl'"),
    ({"augment": "falcon"}, r"finetune\.augment: Input should be 'flip', 'falconi' or 'none'"),
    ({"early_stopping": {"val_fraction": 1.5}}, r"finetune\.early_stopping\.val_fraction"),
])
def test_bad_training_mode_fields_are_named(finetune, message):
    with pytest.raises(SuiteError, match=message):
        _suite(finetune=finetune)


# --------------------------------------------------------------------------- end to end

def test_train_modes_suite_end_to_end(tmp_path):
    """The shipped example suite (its random-source cell, smaller target): staged schedule with Falconi's
    head, class weights, falconi augmentation, early stopping on the fine-tune part and TTA."""
    from bench.records import load_records
    from bench.runner import run_suite
    from bench.suite import load_suite

    raw = load_suite("train-modes")
    cfg = raw.config.model_dump(mode="json", exclude_unset=True)
    cfg["axes"]["source"] = ["random"]
    cfg["axes"]["train_mode"] = ["default"]  # the finetune block itself (tests/test_train_mode_axis.py: the axis)
    cfg["data"]["synth-inbreast"]["n_images"] = 48
    cfg["executor"] = {"workers": 0}  # in this process: no worker start-up
    suite = build_suite(cfg, name="train-modes-e2e")
    run_suite(suite, results_root=tmp_path, progress=False, log=lambda m: None)
    (rec,) = load_records(tmp_path / "train-modes-e2e")
    assert rec["status"] == "ok", rec.get("reason")
    ft = rec["config"]["finetune"]
    assert [s["trainable"] for s in ft["schedule"]] == ["head", "from:block3", "all"]
    assert ft["head"] == {"hidden": 4096, "dropout": 0.2} and rec["config"]["tta"] == "flips"
    hist = rec["history"]
    assert [e["stage"] for e in hist] == [1, 1, 2, 2, 3, 3] and all("val_loss" in e for e in hist)
    m = rec["metrics"]
    assert m["selected_epoch"] == min(hist, key=lambda e: e["val_loss"])["epoch"]
    val, train = set(rec["split"]["validation_image_ids"]), set(rec["split"]["finetune_image_ids"])
    assert val < train and not val & set(rec["predictions"]["image_id"])  # never the evaluation set
    assert m["n_val"] == len(val) and m["n_eval"] == len(rec["predictions"]["image_id"])


def test_a_full_dump_of_a_scheduled_suite_rebuilds_to_the_same_cells():
    """Workers rebuild suites from ``config.model_dump()``, which writes every field."""
    suite = _suite(finetune={"schedule": "shen-2stage", "head": "falconi-tl", "early_stopping": {}})
    again = build_suite(suite.config.model_dump(mode="json"))
    assert [c.cell_id for c in again.cells] == [c.cell_id for c in suite.cells]
