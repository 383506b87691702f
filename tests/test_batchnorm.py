"""BatchNorm statistics re-estimated for the weights that are evaluated (issue 11)."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from bench.backbones import create_backbone
from bench.batchnorm import batchnorm_layers, recalibrate
from bench.suite import build_suite
from bench.train import fit, predict
from bench.train_modes import Stage

HALF = (0.5, 0.5, 0.5)


def _images(n=24, size=32, seed=1):
    return np.random.default_rng(seed).integers(0, 255, size=(n, size, size), dtype=np.uint8)


def _buffers(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}


def _params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_recalibrate_changes_only_running_statistics_and_leaves_eval_mode():
    torch.manual_seed(0)
    net = create_backbone("toy_cnn", 2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    n = recalibrate(net, _images(9), mean=HALF, std=HALF, batch_size=4)  # 4 + 5: no batch of one image
    after = net.state_dict()
    assert n == len(batchnorm_layers(net)) == 5
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("running_" in k or "num_batches" in k for k in changed)
    assert not net.training and all(m.momentum == 0.1 for m in batchnorm_layers(net))


def test_recalibrated_statistics_are_the_population_statistics_of_the_images():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.LazyLinear(2))
    images = _images(10, 8)
    net(torch.zeros(2, 3, 8, 8))  # materialise the lazy layer
    recalibrate(net, images, mean=HALF, std=HALF, batch_size=128)
    x = (torch.from_numpy(images).float().div(255).unsqueeze(1).expand(-1, 3, -1, -1) - 0.5) / 0.5
    with torch.no_grad():
        h = net[0](x)
    bn = net[1]
    assert torch.allclose(bn.running_mean, h.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(bn.running_var, h.var(dim=(0, 2, 3), unbiased=True), rtol=1e-4)


def test_recalibrate_only_the_named_layers_with_the_rest_in_eval_mode():
    torch.manual_seed(0)
    net = create_backbone("toy_cnn", 2)
    layers = batchnorm_layers(net)
    with torch.no_grad():  # give the first layer statistics far from what the images produce
        layers[0].running_mean.fill_(5.0)
    before = _buffers(net)
    recalibrate(net, _images(), mean=HALF, std=HALF, layers=layers[2:])
    after = _buffers(net)
    first = [k for k in before if k.startswith(_name_of(net, layers[0]) + ".")]
    assert first and all(torch.equal(before[k], after[k]) for k in first)  # untouched, and used in eval mode:
    later = _name_of(net, layers[2]) + ".running_mean"
    fresh = create_backbone("toy_cnn", 2)
    fresh.load_state_dict(net.state_dict())
    with torch.no_grad():
        fresh.get_submodule(_name_of(net, layers[0])).running_mean.zero_()
    recalibrate(fresh, _images(), mean=HALF, std=HALF, layers=batchnorm_layers(fresh)[2:])
    # the later layer's statistics depend on how the frozen first layer normalised: they were computed through it
    assert not torch.allclose(after[later], fresh.state_dict()[later])


def _name_of(model, module):
    return next(n for n, m in model.named_modules() if m is module)


def _easy(n=32, size=32, seed=0):
    """Half the images carry a bright square: a network that trains at all separates them."""
    rng = np.random.default_rng(seed)
    x = rng.integers(40, 90, size=(n, size, size)).astype(np.uint8)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(2, size - 12, 2)
        x[i, r:r + 10, c:c + 10] = 230
    return x, y


def test_recalibration_never_changes_the_weights_trajectory(one_thread):
    x, y = _easy()
    nets = {}
    for on in (False, True):
        torch.manual_seed(3)
        nets[on] = create_backbone("toy_cnn", 2)
        fit(nets[on], x, y, epochs=3, lr=3e-3, batch_size=8, seed=5, bn_recalibrate=on)
    pa, pb = _params(nets[False]), _params(nets[True])
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert any(not torch.equal(a, b) for a, b in zip(_buffers(nets[False]).values(), _buffers(nets[True]).values()))


def test_fit_scores_its_training_images_in_eval_mode_as_it_did_while_training(one_thread):
    """The issue's diagnosis in miniature: after a short fine-tune the running statistics lag the weights."""
    x, y = _easy(48, 32)
    torch.manual_seed(0)
    net = create_backbone("efficientnet_lite0", 2)
    history = fit(net, x, y, epochs=6, lr=1e-3, batch_size=16, seed=0, bn_recalibrate=True)
    eval_acc = float(((predict(net, x, mean=HALF, std=HALF) > 0) == y).mean())
    assert history[-1]["bn_recalibrated"] == len(batchnorm_layers(net)) and history[-1]["bn_seconds"] >= 0
    assert eval_acc >= history[-1]["running_train_acc"] - 0.05, (eval_acc, history[-1])


def test_frozen_stages_and_bn_train_false_keep_their_statistics(one_thread):
    x, y = _easy()
    torch.manual_seed(0)
    net = create_backbone("toy_cnn", 2)
    before = _buffers(net)
    fit(net, x, y, schedule=[Stage(epochs=2, lr=1e-3, trainable="from:block3")], batch_size=8)
    after = _buffers(net)
    stages = {n: after[n] for n in after if n.split(".")[0] in ("conv1", "block1", "block2")}
    assert stages and all(torch.equal(before[n], after[n]) for n in stages)  # frozen: bit-identical
    assert any(not torch.equal(before[n], after[n]) for n in after if n not in stages)
    torch.manual_seed(0)
    net = create_backbone("toy_cnn", 2)
    history = fit(net, x, y, epochs=2, lr=1e-3, batch_size=8, bn_train=False)
    assert all(torch.equal(before[n], v) for n, v in _buffers(net).items())
    assert "bn_recalibrated" not in history[-1]


def test_early_stopping_keeps_the_recalibrated_statistics_of_the_selected_epoch(one_thread):
    x, y = _easy(40)
    torch.manual_seed(0)
    net = create_backbone("toy_cnn", 2)
    history = fit(net, x[:32], y[:32], epochs=4, lr=3e-3, batch_size=8, val_images=x[32:], val_labels=y[32:])
    assert all("bn_recalibrated" in e for e in history)  # before every validation
    kept = _buffers(net)
    recalibrate(net, x[:32], mean=HALF, std=HALF, layers=batchnorm_layers(net))
    # the restored epoch's statistics were re-estimated for its weights: doing it again changes nothing
    assert all(torch.allclose(kept[k], v, atol=1e-5) for k, v in _buffers(net).items() if "num_batches" not in k)


BASE = {"axes": {"backbone": ["toy_cnn"], "source": ["random", "synth-ddsm"], "ft_fraction": [0, 0.5],
                 "target": ["synth-inbreast"]}}


def _cells(**kw):
    suite = build_suite(json.loads(json.dumps({**BASE, **kw})))
    return {(c.source, c.ft_fraction): c for c in suite.cells}


def test_recalibration_is_in_the_cell_id_and_off_gives_the_ids_of_before():
    on = _cells()
    off = _cells(finetune={"bn_recalibrate": False}, pretrain={"bn_recalibrate": False})
    assert on[("random", 0.5)].config["finetune"]["bn_recalibrate"] is True
    assert on[("synth-ddsm", 0.0)].config["pretrain"]["bn_recalibrate"] is True
    for key in on:
        assert "bn_recalibrate" not in json.dumps(off[key].config)  # exactly the config written before the change
    # a random network without fine-tuning never trained: the same cell either way; every trained network differs
    assert on[("random", 0.0)].cell_id == off[("random", 0.0)].cell_id
    for key in (("random", 0.5), ("synth-ddsm", 0.0), ("synth-ddsm", 0.5)):
        assert on[key].cell_id != off[key].cell_id, key


@pytest.mark.slow
def test_a_cell_records_recalibration_running_accuracy_and_flags(tmp_path, one_thread):
    from bench.runner.cell import run_cell

    suite = build_suite({"axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0.5],
                                  "target": ["synth-obvious"]}, "image_size": 32,
                         "finetune": {"epochs": 3}, "data": {"synth-obvious": {"n_images": 40}}})
    rec = run_cell(suite.cells[0], suite="t", results_root=tmp_path)
    assert rec["bn_recalibration"] == {"finetune": True, "pretrain": None}
    assert rec["metrics"]["running_train_acc"] == rec["history"][-1]["running_train_acc"]
    assert isinstance(rec["flags"], list) and rec["flags"] == rec["diagnostics"]["flags"]
    assert rec["diagnostics"]["auc_low"] <= rec["metrics"]["auc"] <= rec["diagnostics"]["auc_high"]
