"""Hybrid transfer networks (Raghu et al., "Transfusion"): pretrained up to a stage, slim after it.

``create_hybrid(name, stage="block2", width=0.5)`` builds the network a hybrid cell trains: the
backbone's own layers up to and including ``stage`` (they receive the pretrained weights) followed by
randomly initialised later stages with ``width`` x their channels and a new head. Two ways:

* **native** (``BackboneSpec.create_slim``): the same architecture with narrower later stages
  (resnet18/50 and morphhr through timm's ``ResNet(channels=...)``, toy_cnn);
* **generic** (every other backbone, including ``timm:<model>`` and plugins): the backbone truncated
  after ``stage`` (its forward runs until the stage module returns; modules that would run later are
  removed) followed by a slim top of conv-BN-ReLU stages, one per later stage, with ``width`` x that
  stage's declared channels and its declared stride, then global average pooling and a linear head.
  This is Transfusion's CBR family used as the "lightweight top"; it needs (N, C, H, W) feature maps.

``width=1`` (or ``stage`` = the last stage, ``"block4"`` of a five-stage backbone) means no slimming: the
backbone's own architecture, whose layers after ``stage`` are re-initialised by the transfer (the behaviour
before slimming existed). ``stage`` is one of the backbone's stage names (``BackboneSpec.stage_names``).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from bench.backbones.specs import BACKBONES, BackboneSpec, spec_stage_names
from bench.backbones.probe import call_create
from bench.backbones.stages import trace_stages, stage_boundaries, stage_shapes

DEFAULT_WIDTH = 0.5


class _Stop(Exception):
    def __init__(self, out):
        super().__init__("forward stopped at the trunk's last stage")
        self.out = out


def _stop_here(module, args, out):
    raise _Stop(out)


class Trunk(nn.Module):
    """``body``'s forward up to and including submodule ``last`` (whose output it returns).

    Modules that run only after ``last`` (or never) are replaced by ``nn.Identity``, so the trunk's
    state dict holds exactly the tensors of the stages it keeps, under the original names. A container that
    never runs itself (``nn.ModuleList``, ``nn.ModuleDict``) stays while one of its children runs up to ``last``.
    """

    def __init__(self, body: nn.Module, last: str, spec: BackboneSpec):
        super().__init__()
        first, ends, _ = trace_stages(body, spec)
        end = ends[{module: stage for stage, module in stage_boundaries(body, spec).items()}[last]]
        ran = [n for n, i in first.items() if i <= end]
        later = [n for n, _ in body.named_modules() if n and first.get(n, end + 1) > end
                 and not any(r.startswith(n + ".") for r in ran)]
        for name in later:
            if any(name.startswith(p + ".") for p in later if p != name):
                continue  # an ancestor is removed already
            parent, _, attr = name.rpartition(".")
            setattr(body.get_submodule(parent) if parent else body, attr, nn.Identity())
        self.body = body
        self.last = last
        body.get_submodule(last).register_forward_hook(_stop_here)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            self.body(x)
        except _Stop as stop:
            return stop.out
        raise RuntimeError(f"trunk: stage module {self.last!r} did not run")


def _cbr_stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SlimHybrid(nn.Module):
    """A backbone's trunk up to ``stage`` plus a fresh slim conv-BN-ReLU top and a linear head (generic slimming)."""

    def __init__(self, spec: BackboneSpec, num_classes: int, stage: str, width: float, in_chans: int = 3):
        super().__init__()
        names = spec_stage_names(spec)
        i = names.index(stage)
        self.trunk = Trunk(call_create(spec.create, num_classes, in_chans), spec.stages[i], spec)
        cin = spec.channels[i]
        blocks = OrderedDict()
        for j in range(i + 1, len(names)):
            cout = max(1, round(spec.channels[j] * width))
            stride = max(1, spec.reductions[j] // max(1, spec.reductions[j - 1]))
            blocks[names[j]] = _cbr_stage(cin, cout, stride)
            cin = cout
        self.top = nn.Sequential(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.top.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)
        self.bench_stages = {**{s: f"trunk.body.{m}" for s, m in zip(names[: i + 1], spec.stages)},
                             **{s: f"top.{s}" for s in blocks}}  # stage name -> module name
        self.bench_source_prefix = "trunk.body."
        self.bench_min_size = spec.min_size

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.trunk(x)
        if x.ndim != 4:
            raise ValueError(f"generic hybrid slimming needs (N, C, H, W) features after {self.trunk.last!r}; got "
                             f"shape {tuple(x.shape)}. Use hybrid_width: 1 for this backbone")
        return self.top(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.forward_features(x)).flatten(1))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.fc.in_features, num_classes)


def create_hybrid(name: str, num_classes: int = 2, *, stage: str = "block2", width: float = DEFAULT_WIDTH,
                  in_chans: int = 3) -> nn.Module:
    """The network of a hybrid cell: ``name`` up to ``stage``, its later stages slimmed to ``width``.

    Load the pretrained weights with ``transfer_weights(model, state, mode="hybrid", hybrid_stage=stage)``;
    its summary then includes ``model.bench_hybrid``: the slimming method and, per later stage, the
    original and the new channel count.
    """
    spec = BACKBONES.get(name)
    names = spec_stage_names(spec)
    if stage not in names:
        raise ValueError(f"hybrid stage must be one of {', '.join(names)} (the stages of backbone {name!r}); "
                         f"got {stage!r}")
    if not 0 < width <= 1:
        raise ValueError(f"hybrid width must be in (0, 1] (0.5 = half the channels after the stage); got {width!r}")
    if width == 1 or stage == names[-1]:
        model, method = call_create(spec.create, num_classes, in_chans), "none"
    elif spec.create_slim is not None:
        model = (spec.create_slim(num_classes, stage, width) if in_chans == 3
                 else spec.create_slim(num_classes, stage, width, in_chans=in_chans))
        method = "native"
    else:
        model, method = SlimHybrid(spec, num_classes, stage, width, in_chans), "generic conv-BN-ReLU top"
    model.bench_backbone = name
    shapes = stage_shapes(model, spec)
    later = names[names.index(stage) + 1:]
    model.bench_hybrid = {"width": width, "slim": method,
                          "slimmed": {s: [spec.channels[names.index(s)], int(shapes[s][0])] for s in later}}
    return model
