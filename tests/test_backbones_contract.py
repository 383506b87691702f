"""The backbone contract, checked on every registered backbone (timm's tests/test_models.py pattern).

Each backbone (built-ins, installed plugins, and a ``timm:<model>`` example) must: build for any number
of classes, declare stages whose channels (and strides) are what its forward pass produces, build a
slim hybrid network that takes the pretrained weights up to block2, replace its head, and freeze up
to a stage so that an optimiser step changes only what stays trainable. Small CPU inputs throughout.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch

from bench.backbones import (
    BACKBONES,
    STAGE_NAMES,
    create_backbone,
    create_hybrid,
    freeze_up_to,
    parameters_after,
    reset_head,
    stage_modules,
    stage_of_tensors,
    stage_shapes,
    transfer_weights,
)

HEAVY = {"vgg16", "inception_v3", "resnet50"}  # seconds to build; still run in CI
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n
         for n in [*BACKBONES.names(), "timm:resnet10t"]]


@pytest.fixture(scope="module")
def built():
    """One randomly initialised network per backbone, shared (tests that change it take a copy)."""
    cache: dict = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = create_backbone(name, 2)
        return cache[name]
    return get


def _side(name: str) -> int:
    return max(32, BACKBONES.get(name).min_size)


@pytest.mark.parametrize("name", NAMES)
def test_forward_gives_one_logit_per_class(name, built):
    torch.set_num_threads(1)
    model = built(name).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, _side(name), _side(name))).shape == (2, 2)


@pytest.mark.parametrize("name", NAMES)
def test_declared_stages_are_what_the_forward_pass_produces(name, built):
    spec = BACKBONES.get(name)
    assert len(spec.stages) == len(spec.channels) == len(spec.reductions) == 5
    shapes = stage_shapes(built(name), spec)
    assert [s[0] for s in shapes.values()] == list(spec.channels)
    side = max(32, spec.min_size)
    if spec.min_size <= 32:  # 'same'-padded networks: exact strides (inception's valid convolutions are not)
        assert [s[1] for s in shapes.values()] == [math.ceil(side / r) for r in spec.reductions]
    assert 0 < spec.min_size <= spec.input_size and len(spec.mean) == len(spec.std) == 3


@pytest.mark.parametrize("name", NAMES)
def test_every_named_stage_owns_parameters(name, built):
    """VGG's last max-pool was "block4" until 2026-12-04, so `trainable: from:block4` trained no convolution."""
    model = built(name)
    stage_of = stage_of_tensors(model, BACKBONES.get(name))
    owned = {stage_of[k] for k, _ in model.named_parameters()}
    assert set(STAGE_NAMES) <= owned, f"{name}: stages without parameters: {set(STAGE_NAMES) - owned}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["timm:vgg16", "timm:vgg19_bn", "timm:densenet121", "timm:legacy_xception",
                                  "timm:mobilenetv2_100"])
def test_timm_backbones_get_stages_that_own_parameters(name):
    from bench.backbones._base import STAGE_MAP_REVISION

    model = create_backbone(name, 2)
    stage_of = stage_of_tensors(model, BACKBONES.get(name))
    assert set(STAGE_NAMES) <= {stage_of[k] for k, _ in model.named_parameters()}
    # a corrected map (VGG) is marked, so cells that depend on it get new ids
    assert ("vgg" in name) == (BACKBONES.get(name).extra.get(STAGE_MAP_REVISION) == 2)


@pytest.mark.parametrize("name", NAMES)
def test_hybrid_keeps_pretrained_stages_and_slims_the_rest(name, built):
    spec = BACKBONES.get(name)
    source = built(name)
    torch.manual_seed(1)
    hybrid = create_hybrid(name, 3, stage="block2", width=0.5)
    info = transfer_weights(hybrid, source.state_dict(), mode="hybrid", hybrid_stage="block2")
    # later stages have half the declared channels, measured on the network itself
    shapes = stage_shapes(hybrid, spec)
    assert [shapes[s][0] for s in STAGE_NAMES[:3]] == list(spec.channels[:3])
    assert [shapes[s][0] for s in STAGE_NAMES[3:]] == [round(c / 2) for c in spec.channels[3:]]
    assert info["slimmed"] == {s: [c, round(c / 2)] for s, c in zip(STAGE_NAMES[3:], spec.channels[3:])}
    # every tensor up to block2 is the source's, none after it
    prefix = getattr(hybrid, "bench_source_prefix", "")
    src, stages = source.state_dict(), stage_of_tensors(hybrid, spec)
    upto = [k for k, s in stages.items() if s in STAGE_NAMES[:3]]
    assert upto and info["loaded"] == len(upto)
    for k in upto:
        assert torch.equal(hybrid.state_dict()[k], src[k[len(prefix):]]), k
    assert info["kept_random"] == len(stages) - len(upto) > 0
    assert sum(p.numel() for p in hybrid.parameters()) < sum(p.numel() for p in source.parameters())
    with torch.no_grad():
        assert hybrid.eval()(torch.randn(2, 3, _side(name), _side(name))).shape == (2, 3)


@pytest.mark.parametrize("name", NAMES)
def test_head_replacement_changes_only_the_classifier(name, built):
    model = copy.deepcopy(built(name))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reset_head(model, 5, BACKBONES.get(name))
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, _side(name), _side(name))).shape == (2, 5)
    after = model.state_dict()
    kept = [k for k in before if k in after and after[k].shape == before[k].shape and torch.equal(after[k], before[k])]
    assert len(before) - len(kept) == 2  # weight and bias of the old head


@pytest.mark.parametrize("name", NAMES)
def test_frozen_parameters_stay_put_and_trainable_ones_move(name, built):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = copy.deepcopy(built(name)).train()
    frozen = set(freeze_up_to(model, "block2"))
    trainable = parameters_after(model, "block2")
    assert frozen and trainable
    assert {id(p) for p in trainable} == {id(p) for p in model.parameters() if p.requires_grad}
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = torch.optim.SGD(trainable, lr=0.5)
    x = torch.randn(2, 3, _side(name), _side(name))
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    opt.step()
    changed = {k for k, p in model.named_parameters() if not torch.equal(p, before[k])}
    assert not changed & frozen
    mods = stage_modules(model, BACKBONES.get(name))
    for stage in ("block3", "block4", "head"):
        owned = {id(q) for m in mods[stage] for q in m.parameters(recurse=False)}
        names = {k for k, p in model.named_parameters() if id(p) in owned}
        assert not names or names & changed, f"no parameter of {stage} changed"  # vgg's block4 is a max-pool
