"""MorphHR: the morph of ResNet-18's conv1 preserves the network's function, and the high-resolution
variant takes twice the input at the same cost after the stem."""
from __future__ import annotations

import pytest
import torch

from bench.backbones import create_backbone, imagenet_state_dict, stage_shapes
from bench.backbones.specs import WeightsNotFoundError
from bench.backbones.morphhr import create_morphhr, morph_conv, morph_resnet18_state


def _nontrivial_resnet18() -> torch.nn.Module:
    """ResNet-18 with random weights *and* random BatchNorm statistics/affine (timm's init leaves them trivial)."""
    torch.manual_seed(0)
    model = create_backbone("resnet18", 10)
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / a.norm()).item()


@pytest.mark.parametrize("size", [(64, 64), (67, 45)])
def test_morph_without_resolution_change_reproduces_resnet18(size):
    torch.set_num_threads(1)
    ref = _nontrivial_resnet18()
    morphed = create_morphhr(10, high_res=False)
    morphed.load_state_dict(morph_resnet18_state(ref.state_dict()))
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert _rel_err(ref.forward_features(x), morphed.eval().forward_features(x)) <= 1e-4
        assert _rel_err(ref(x), morphed(x)) <= 1e-4
    # and it really is a different network: the stem is conv1_1 (5x5) -> conv1_2 (3x3)
    assert morphed.conv1.conv1_1.kernel_size == (5, 5) and morphed.conv1.conv1_2.kernel_size == (3, 3)


def test_composed_kernel_is_exactly_the_original():
    g = torch.randn(64, 3, 7, 7, dtype=torch.float64)
    f1, f2 = morph_conv(g)
    x = torch.randn(1, 3, 23, 23, dtype=torch.float64)
    two = torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, f1, padding=3), f2, stride=2)
    assert torch.allclose(two, torch.nn.functional.conv2d(x, g, stride=2, padding=3), atol=1e-12)


def test_training_mode_batchnorm_changes_the_function_as_the_paper_says():
    ref = _nontrivial_resnet18()
    morphed = create_morphhr(10, high_res=False)
    morphed.load_state_dict(morph_resnet18_state(ref.state_dict()))
    x = torch.randn(4, 3, 32, 32)
    morphed.train()
    ref.train()
    with torch.no_grad():
        assert _rel_err(ref(x), morphed(x)) > 1e-3  # bn1_1 normalises with batch statistics in train mode


def test_unused_stem_channels_learn():
    ref = _nontrivial_resnet18()
    morphed = create_morphhr(10, high_res=False)
    morphed.load_state_dict(morph_resnet18_state(ref.state_dict()))
    morphed(torch.randn(2, 3, 32, 32)).sum().backward()
    grad = morphed.conv1.conv1_2.weight.grad
    assert grad[:, 27:].abs().sum() > 0  # the 37 random conv1_1 filters get gradient through conv1_2


def test_high_resolution_morphhr_matches_resnet18_cost_after_the_stem():
    torch.manual_seed(0)
    hr, base = create_backbone("morphhr"), create_backbone("resnet18")
    s_hr = stage_shapes(hr)
    s_base = stage_shapes(base)  # both traced at the spec's min size (32 px)...
    assert s_hr["block1"][0] == s_base["block1"][0]
    with torch.no_grad():  # ...and at 2x the input, morphhr's block1 maps equal resnet18's at 1x
        a = hr.eval().forward_intermediates(torch.zeros(1, 3, 128, 128), indices=[1], intermediates_only=True)
        b = base.eval().forward_intermediates(torch.zeros(1, 3, 64, 64), indices=[1], intermediates_only=True)
    assert a[0].shape == b[0].shape == (1, 64, 16, 16)


def test_imagenet_morphhr_is_resnet18_weights_morphed(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsNotFoundError, match=r"resnet18\.pth.*morphhr"):
        imagenet_state_dict("morphhr")
    ref = _nontrivial_resnet18()
    torch.save(ref.state_dict(), tmp_path / "resnet18.pth")
    sd = imagenet_state_dict("morphhr")
    assert "conv1.weight" not in sd and sd["conv1.conv1_1.weight"].shape == (64, 3, 5, 5)
    assert torch.equal(sd["layer4.1.conv2.weight"], ref.state_dict()["layer4.1.conv2.weight"])
    assert morph_resnet18_state(sd) is sd  # already morphed: unchanged
