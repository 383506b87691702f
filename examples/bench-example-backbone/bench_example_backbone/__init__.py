"""A tiny backbone plugin for bench: the network, its spec, nothing else.

bench finds it through the entry point ``tiny_example = "bench_example_backbone:SPEC"`` declared in
``pyproject.toml`` (group ``bench.backbones``).
"""
from __future__ import annotations

from torch import nn

from bench.backbones import BackboneSpec

CHANNELS = (16, 16, 32, 64, 64)


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class TinyNet(nn.Module):
    """Five stride-2 conv stages (``stem``, ``s1`` .. ``s4``), global average pooling, a linear ``classifier``."""

    def __init__(self, num_classes: int = 2, in_chans: int = 3):
        super().__init__()
        c = CHANNELS
        self.stem = _stage(in_chans, c[0])
        self.s1, self.s2, self.s3, self.s4 = (_stage(c[i], c[i + 1]) for i in range(4))
        self.classifier = nn.Linear(c[4], num_classes)

    def forward(self, x):  # (N, 3, H, W) normalised images -> (N, num_classes) logits, one tensor
        for stage in (self.stem, self.s1, self.s2, self.s3, self.s4):
            x = stage(x)  # each stage's output: (N, channels, H / reduction, W / reduction)
        return self.classifier(x.mean((2, 3)))  # global average pooling, then the head


SPEC = BackboneSpec(
    name="tiny_example",
    create=lambda num_classes, in_chans=3: TinyNet(num_classes, in_chans),  # random init from torch's RNG
    stages=("stem", "s1", "s2", "s3", "s4"),  # forward order; suites call them conv1, block1 .. block4
    channels=CHANNELS,  # output channels of each stage
    reductions=(2, 4, 8, 16, 32),  # output stride of each stage
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),  # input normalisation (gray images are repeated to RGB)
    min_size=32,
    head="classifier",  # the classifier's module name
    description="example plugin: tiny 5-stage CNN (examples/bench-example-backbone)",
)
