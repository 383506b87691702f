"""``toy_cnn``: a tiny CPU network for tests and quick checks (the role lm-eval's DummyLM plays).

It has the same five stages as the real backbones (conv1, block1 .. block4), so every transfer mode
and per-layer analysis runs on it in milliseconds.
"""
from __future__ import annotations

from torch import nn

from bench.backbones._base import BackboneSpec, register_backbone


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ToyCNN(nn.Module):
    def __init__(self, num_classes: int = 2, width: int = 8):
        super().__init__()
        w = width
        self.conv1 = _block(3, w)
        self.block1, self.block2 = _block(w, w), _block(w, 2 * w)
        self.block3, self.block4 = _block(2 * w, 2 * w), _block(2 * w, 4 * w)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x):
        for stage in (self.conv1, self.block1, self.block2, self.block3, self.block4):
            x = stage(x)
        return self.fc(self.pool(x).flatten(1))


register_backbone(BackboneSpec(name="toy_cnn", create=lambda num_classes: ToyCNN(num_classes),
                               stages=("conv1", "block1", "block2", "block3", "block4"), head="fc",
                               description="tiny 5-stage CNN for tests (no ImageNet weights)"))
