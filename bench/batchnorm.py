"""BatchNorm statistics that match the weights they are used with.

While a network trains, its BatchNorm layers normalise each batch by the batch's own statistics and keep
a running average (momentum 0.1) for evaluation. After a few dozen steps of a small fine-tune those running
averages still mix in statistics of weights the network no longer has, so the network scored in eval mode
is not the network that trained: on 24 images of an easy target a random-init efficientnet_lite0 scored
AUC 0.26 and predicted one class, and 0.95 once its statistics were re-estimated (issue 11).

:func:`recalibrate` re-estimates them for the current weights with PyTorch's
:func:`torch.optim.swa_utils.update_bn` (reset, then one pass as a cumulative average, no gradient) on the
network's own training images, *without* augmentation (the images are scored as they are), with every other
layer in eval mode (dropout off, as when the network is scored). Only the BatchNorm layers that were in
training mode are re-estimated: a frozen stage's layers, and every layer with ``bn_train: false``, normalised
with their stored statistics while the network trained, so those statistics are part of the network that
trained and stay as they are.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from bench.batches import default_device, to_batch

__all__ = ["batchnorm_layers", "recalibrate", "training_batchnorm_layers"]

RECALIBRATION_BATCH = 128
"""Images per forward pass. The cumulative average of per-batch variances misses the spread of the batch
means, so larger batches estimate the population variance better; fine-tune sets of 24-48 images are one batch."""


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """Every BatchNorm layer of ``model`` (1d, 2d, 3d, SyncBatchNorm), in module order."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def training_batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of ``model`` now in training mode (those whose running statistics move)."""
    return [m for m in batchnorm_layers(model) if m.training]


class _Only:
    """The view of a network that ``update_bn`` works on: its ``modules()`` are the BatchNorm layers to
    re-estimate, ``train()`` puts only those in training mode (everything else in eval mode, as when the
    network is scored), and calling it runs the whole network."""

    def __init__(self, model: nn.Module, layers: Sequence[nn.Module]):
        self.model, self.layers, self.training = model, list(layers), False

    def modules(self) -> Iterator[nn.Module]:
        return iter(self.layers)

    def train(self, mode: bool = True) -> _Only:
        self.model.eval()
        for m in self.layers:
            m.train(mode)
        self.training = mode
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@torch.no_grad()
def recalibrate(model: nn.Module, images: np.ndarray, *, mean, std, layers: Sequence[nn.Module] | None = None,
                batch_size: int = RECALIBRATION_BATCH, device: torch.device | None = None) -> int:
    """Re-estimate the running statistics of ``layers`` (default: every BatchNorm layer) on ``images``.

    Args:
        model: the network; its weights are not touched, and it is left in eval mode.
        images: ``(N, H, W)`` uint8 images (the dataset contract), un-augmented.
        mean, std: the backbone's normalisation.
        layers: the BatchNorm layers to re-estimate; the others keep their statistics and run in eval mode.
        batch_size: images per forward pass; a last batch of one image is merged into the one before it
            (BatchNorm in training mode needs two).

    Returns:
        The number of layers re-estimated (0 when there are none or no images, and nothing changes).
    """
    layers = batchnorm_layers(model) if layers is None else list(layers)
    n = len(images)
    if not layers or n < 2:
        model.eval()
        return 0
    device = device or default_device()
    model.to(device)
    step = batch_size if n % batch_size != 1 else batch_size + 1
    batches = (to_batch(images[i:i + step], mean, std, device) for i in range(0, n, step))
    update_bn(batches, _Only(model, layers))
    model.eval()
    return len(layers)
