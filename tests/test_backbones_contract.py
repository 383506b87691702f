"""The backbone contract, checked on every registered backbone (timm's tests/test_models.py pattern).

Each backbone (built-ins, installed plugins, and a ``timm:<model>`` example) must: build for any number
of classes, declare stages whose channels (and strides) are what its forward pass produces, build a
slim hybrid network that takes the pretrained weights up to block2 (a plugin with fewer than five stages: up to
its last stage but one, at most its third), replace its head, and freeze up to that stage so that an optimiser
step changes only what stays trainable. Small CPU inputs throughout.
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


def _split_stage(name: str) -> int:
    """Index of the stage the hybrid and freezing checks cut at: block2 (2) of five stages, else the last but one
    stage at most the third (a one-stage network has nothing after its stage to slim or to keep trainable)."""
    n = len(BACKBONES.get(name).stage_names)
    if n < 2:
        pytest.skip(f"{name} has one stage: nothing to slim or keep trainable after it")
    return min(2, n - 2)


@pytest.mark.parametrize("name", NAMES)
def test_forward_gives_one_logit_per_class(name, built):
    torch.set_num_threads(1)
    model = built(name).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, _side(name), _side(name))).shape == (2, 2)


@pytest.mark.parametrize("name", NAMES)
def test_declared_stages_are_what_the_forward_pass_produces(name, built):
    spec = BACKBONES.get(name)
    assert len(spec.stages) == len(spec.channels) == len(spec.reductions) == len(spec.stage_names) >= 1
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
    names = set(BACKBONES.get(name).stage_names)
    stage_of = stage_of_tensors(model, BACKBONES.get(name))
    owned = {stage_of[k] for k, _ in model.named_parameters()}
    assert names <= owned, f"{name}: stages without parameters: {names - owned}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["timm:vgg16", "timm:vgg19_bn", "timm:densenet121", "timm:legacy_xception",
                                  "timm:mobilenetv2_100"])
def test_timm_backbones_get_stages_that_own_parameters(name):
    from bench.backbones.specs import STAGE_MAP_REVISION

    model = create_backbone(name, 2)
    stage_of = stage_of_tensors(model, BACKBONES.get(name))
    assert set(STAGE_NAMES) <= {stage_of[k] for k, _ in model.named_parameters()}
    # a corrected map (VGG) is marked, so cells that depend on it get new ids
    assert ("vgg" in name) == (BACKBONES.get(name).extra.get(STAGE_MAP_REVISION) == 2)


@pytest.mark.parametrize("name", NAMES)
def test_hybrid_keeps_pretrained_stages_and_slims_the_rest(name, built):
    spec = BACKBONES.get(name)
    i = _split_stage(name)
    names, stage = spec.stage_names, spec.stage_names[i]  # block2 for five stages
    source = built(name)
    torch.manual_seed(1)
    hybrid = create_hybrid(name, 3, stage=stage, width=0.5)
    info = transfer_weights(hybrid, source.state_dict(), mode="hybrid", hybrid_stage=stage)
    # later stages have half the declared channels, measured on the network itself
    shapes = stage_shapes(hybrid, spec)
    assert [shapes[s][0] for s in names[:i + 1]] == list(spec.channels[:i + 1])
    assert [shapes[s][0] for s in names[i + 1:]] == [round(c / 2) for c in spec.channels[i + 1:]]
    assert info["slimmed"] == {s: [c, round(c / 2)] for s, c in zip(names[i + 1:], spec.channels[i + 1:])}
    # every tensor up to the stage is the source's, none after it
    prefix = getattr(hybrid, "bench_source_prefix", "")
    src, stages = source.state_dict(), stage_of_tensors(hybrid, spec)
    upto = [k for k, s in stages.items() if s in names[:i + 1]]
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
    i = _split_stage(name)
    names = BACKBONES.get(name).stage_names
    model = copy.deepcopy(built(name)).train()
    frozen = set(freeze_up_to(model, names[i]))  # block2 for five stages
    trainable = parameters_after(model, names[i])
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
    for stage in (*names[i + 1:], "head"):  # block3, block4, head for five stages
        owned = {id(q) for m in mods[stage] for q in m.parameters(recurse=False)}
        names = {k for k, p in model.named_parameters() if id(p) in owned}
        assert not names or names & changed, f"no parameter of {stage} changed"  # vgg's block4 is a max-pool
