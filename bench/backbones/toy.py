"""``toy_cnn``: a tiny CPU network for tests and quick checks (the role lm-eval's DummyLM plays).

It has the same five stages as the real backbones (conv1, block1 .. block4), so every transfer mode
and per-layer analysis runs on it in milliseconds; ``channels`` makes its native slim variant.
"""
from __future__ import annotations

from torch import nn

from bench.backbones import builtin
from bench.backbones.specs import STAGE_NAMES
from bench.backbones.builtin import (
    TOY_CHANNELS as CHANNELS,  # its spec: bench.backbones.builtin
)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ToyCNN(nn.Module):
    """Five stride-2 conv-BN-ReLU stages, global pooling, a linear head."""

    def __init__(self, num_classes: int = 2, channels: tuple[int, ...] = CHANNELS, in_chans: int = 3):
        super().__init__()
        c = channels
        self.conv1 = _block(in_chans, c[0])
        self.block1, self.block2 = _block(c[0], c[1]), _block(c[1], c[2])
        self.block3, self.block4 = _block(c[2], c[3]), _block(c[3], c[4])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c[4], num_classes)

    def forward(self, x):
        for stage in (self.conv1, self.block1, self.block2, self.block3, self.block4):
            x = stage(x)
        return self.fc(self.pool(x).flatten(1))


def _slim(num_classes: int, stage: str, width: float, *, in_chans: int = 3) -> ToyCNN:
    i = STAGE_NAMES.index(stage)
    return ToyCNN(num_classes, tuple(c if j <= i else max(1, round(c * width)) for j, c in enumerate(CHANNELS)),
                  in_chans=in_chans)


def _create(num_classes: int, in_chans: int = 3) -> ToyCNN:
    return ToyCNN(num_classes, in_chans=in_chans)


builtin.bind(__name__)
