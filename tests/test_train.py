"""bench.train.fit: divergence detection and gradient accumulation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.backbones import create_backbone
from bench.train import DivergedError, fit

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n: int = 24, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    images[labels == 1, 8:24, 8:24] = 255  # a learnable signal
    return images, labels


def _toy(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_backbone("toy_cnn", 2)


def test_grad_accum_matches_plain_batches():
    """Accumulating 4 micro-batches gives the same weights as one batch (BatchNorm frozen: its batch
    statistics are the one thing that legitimately differs per micro-batch)."""
    images, labels = _data()
    a, b = _toy(), _toy()
    ha = fit(a, images, labels, epochs=2, lr=1e-2, batch_size=8, bn_train=False, seed=3, device=torch.device("cpu"))
    hb = fit(b, images, labels, epochs=2, lr=1e-2, batch_size=8, bn_train=False, seed=3, grad_accum=4,
             device=torch.device("cpu"))
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5, msg=name)
    assert ha[-1]["loss"] == pytest.approx(hb[-1]["loss"], rel=1e-4)
    changed = any(not torch.equal(p, q) for p, q in zip(a.state_dict().values(), _toy().state_dict().values()))
    assert changed, "training did not change the weights; the comparison above proves nothing"


def test_grad_accum_never_makes_a_micro_batch_of_one():
    """13 images in batches of 8 leave a last batch of 5; split in 4 it would hold parts of 1 image, which
    BatchNorm in training mode cannot take. It is split in 2 instead, and training goes on."""
    images, labels = _data(n=13)
    model = _toy()
    hist = fit(model, images, labels, epochs=1, lr=1e-3, batch_size=8, bn_train=True, grad_accum=4,
               device=torch.device("cpu"))
    assert len(hist) == 1 and math.isfinite(hist[0]["loss"])
    hist = fit(_toy(), images[:10], labels[:10], epochs=1, lr=1e-3, batch_size=4, bn_train=True, grad_accum=4,
               device=torch.device("cpu"))  # grad_accum == batch_size: parts of 2, never of 1
    assert math.isfinite(hist[0]["loss"])


def test_grad_accum_must_divide_sensibly():
    images, labels = _data(8)
    with pytest.raises(ValueError, match="grad_accum"):
        fit(_toy(), images, labels, epochs=1, lr=1e-3, batch_size=4, grad_accum=5, device=torch.device("cpu"))


def test_nan_loss_raises_diverged_error():
    images, labels = _data(8)
    model = _toy()
    with torch.no_grad():
        model.fc.weight.fill_(math.nan)
    with pytest.raises(DivergedError, match=r"loss is nan at epoch 1, step 1/"):
        fit(model, images, labels, epochs=1, lr=1e-3, batch_size=4, device=torch.device("cpu"))
    assert issubclass(DivergedError, RuntimeError)


def test_inf_loss_raises_diverged_error():
    images, labels = _data(8)
    model = _toy()
    with torch.no_grad():
        model.fc.bias.copy_(torch.tensor([3e38, -3e38]))
        model.fc.weight.zero_()
    with pytest.raises(DivergedError, match=r"loss is inf"):
        fit(model, images, labels, epochs=1, lr=1e-3, batch_size=4, device=torch.device("cpu"))
