"""bench.train.fit reads nothing back from the device inside an epoch (issue 15).

A host sync (``.item()``, ``.tolist()``, ``bool(tensor)``, ``.cpu()``, ...) makes the host wait for the
GPU; one per step keeps a small GPU idle most of the time. There is no GPU here, so the test counts the
Python-level calls that would sync, made from bench's own code (torch's CPU optimiser reads its CPU step
counters with ``.item()``, which is no device sync), during a ``fit`` on the CPU.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import bench
from bench.backbones import create_backbone
from bench.train import fit, margin_loss

pytestmark = pytest.mark.usefixtures("one_thread")

BENCH_DIR = str(Path(bench.__file__).parent)
SYNCING = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__", "__array__")


@pytest.fixture
def syncs(monkeypatch):
    """A list that collects ``(method, file:line)`` of each syncing call made from bench's code."""
    calls: list[tuple[str, str]] = []
    for name in SYNCING:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code
            if caller.co_filename.startswith(BENCH_DIR):
                where = f"{Path(caller.co_filename).name}:{sys._getframe(1).f_lineno}"
                if not (_name == "numpy" and calls and calls[-1] == ("cpu", where)):  # .cpu().numpy(): one read
                    calls.append((_name, where))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def _data(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    images[labels == 1, 4:12, 4:12] = 255
    return images, labels


def _toy() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_backbone("toy_cnn", 2)


def test_counter_sees_a_sync_in_bench_code(syncs):
    """The counter works: bench's margin_loss turns a tensor into a float (fine: it runs once per evaluation)."""
    margin_loss(np.array([0.5, -0.5]), np.array([1, 0]))
    assert [name for name, _ in syncs] == ["__float__"]


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_fit_syncs_at_most_once_per_epoch(syncs, grad_accum):
    images, labels = _data(40)
    epochs = 3  # 5 steps of 8 images each: a sync per step would count 15 (30 with grad_accum 2)
    fit(_toy(), images, labels, epochs=epochs, lr=1e-2, batch_size=8, grad_accum=grad_accum, class_weights="balanced",
        device=torch.device("cpu"))
    assert len(syncs) <= epochs, syncs


def test_fit_with_validation_adds_only_the_evaluation(syncs):
    """With a validation set each epoch also scores it: one read of its margins and one float of its loss."""
    images, labels = _data(40)
    val_images, val_labels = _data(12, seed=1)
    epochs = 3
    fit(_toy(), images, labels, epochs=epochs, lr=1e-2, batch_size=8, val_images=val_images, val_labels=val_labels,
        device=torch.device("cpu"))
    assert len(syncs) <= epochs * 3, syncs


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float16)])
def test_amp_dtype_is_bf16_where_the_gpu_supports_it(monkeypatch, bf16, expected):
    from bench.batches import amp_dtype

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert amp_dtype(torch.device("cuda")) is expected
    assert amp_dtype(torch.device("cuda:1")) is expected
    assert amp_dtype(torch.device("cpu")) is None  # no autocast on the CPU: results as they always were


def test_resident_images_gather_the_same_numbers_as_host_batches():
    from bench.batches import gather, resident, to_float

    images, _ = _data(10)
    idx = torch.tensor([3, 0, 7])
    cpu = torch.device("cpu")
    assert torch.equal(gather(resident(images, cpu), idx), to_float(images[idx.numpy()], cpu))
    frozen = images.copy()
    frozen.flags.writeable = False  # a memory-mapped cache: read, never written, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(gather(resident(frozen, cpu), slice(2, 5)), to_float(images[2:5], cpu))
