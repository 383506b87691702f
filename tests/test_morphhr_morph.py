"""MorphHR's tap assignments (issue 12): the 2x-aware morph (``taps="2x"``, backbone ``morphhr_2x``) preserves more
of ResNet-18's function at twice the input side than the paper's (``morphhr``), which stays unchanged.
Measured at full size: benchmarks/morphhr_preservation.md."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.backbones import BACKBONES, create_backbone, imagenet_state_dict
from bench.backbones.morphhr import create_morphhr, morph_conv, morph_conv_2x, morph_resnet18_state
from bench.backbones.timm_models import IMAGENET_MEAN, IMAGENET_STD


def _images(size: int, names=("astronaut", "chelsea")) -> torch.Tensor:
    """skimage's bundled images, centre-cropped square, resized, ImageNet-normalised."""
    import skimage.data

    out = []
    for name in names:
        img = torch.from_numpy(np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0)
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s].permute(2, 0, 1)[None]
        out.append(F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return (torch.cat(out) - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _smooth_resnet18() -> torch.nn.Module:
    """ResNet-18 whose conv1 has smooth filters (Gaussian-smoothed noise, sigma 1.5 px), the rest random, eval."""
    torch.manual_seed(0)
    model = create_backbone("resnet18", 10)
    noise = torch.randn(64 * 3, 1, 19, 19, generator=torch.Generator().manual_seed(0))
    r = torch.arange(-6, 7, dtype=torch.float32)
    k = torch.exp(-r ** 2 / (2 * 1.5 ** 2))
    k = k / k.sum()
    w = F.conv2d(F.conv2d(noise, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1)).view(64, 3, 7, 7)
    with torch.no_grad():
        model.conv1.weight.copy_(w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
    return model.eval()


class _PickFirst(torch.nn.Module):
    def forward(self, x):
        return x[..., ::2, ::2]


def _stem(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The stem output: ``act1`` (after bn1 and ReLU)."""
    got = []
    hook = model.act1.register_forward_hook(lambda m, i, o: got.append(o))
    with torch.no_grad():
        model(x)
    hook.remove()
    return got[0]


def _rel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image ||a - b||_F / ||a||_F."""
    return (a - b).flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1)


def test_2x_taps_compose_to_the_kernel_at_2x_where_the_pool_picks_the_first_pixel():
    g = torch.randn(64, 3, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 3, 30, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ref = F.conv2d(x, g, stride=2, padding=3)
    x2 = F.interpolate(x, scale_factor=2, mode="nearest")

    def stem_2x(f1, f2):  # high_res=True geometry, the max-pool replaced by a pick of each block's first element
        return F.conv2d(F.conv2d(x2, f1, stride=2, padding=2)[..., ::2, ::2], f2, padding=1)

    assert torch.allclose(stem_2x(*morph_conv_2x(g)), ref, atol=1e-12)  # the derivation, exactly
    assert _rel(ref, stem_2x(*morph_conv(g))).min() > 0.5  # the paper's taps do not line up at 2x
    # with the max-pool: exact in the interior where the max is the first pixel (a decreasing ramp)
    ramp = torch.arange(40, 0, -1, dtype=torch.float64)
    x = (ramp[:, None] + ramp[None, :]).expand(1, 3, 40, 40)
    ref = F.conv2d(x, g, stride=2, padding=3)[..., 2:-2, 2:-2]
    f1, f2 = morph_conv_2x(g)
    out = F.conv2d(F.max_pool2d(F.conv2d(F.interpolate(x, scale_factor=2), f1, stride=2, padding=2), 2), f2, padding=1)
    assert torch.allclose(out[..., 2:-2, 2:-2], ref, rtol=1e-12, atol=1e-9)


def test_2x_morph_preserves_more_of_the_stem_than_the_papers_on_natural_images():
    torch.set_num_threads(1)
    ref = _smooth_resnet18()
    x = _images(64)
    a = _stem(ref, x)
    x2 = F.interpolate(x, scale_factor=2, mode="nearest")
    err = {}
    for name, taps in (("morphhr", "paper"), ("morphhr_2x", "2x")):
        model = create_backbone(name, 10)
        model.load_state_dict(imagenet_morph := morph_resnet18_state(ref.state_dict(), taps=taps))
        assert "conv1.conv1_2.weight" in imagenet_morph
        err[taps] = _rel(a, _stem(model.eval(), x2))
        model.conv1.pool1_1 = _PickFirst()
        err[taps + " pick-first"] = _rel(a, _stem(model, x2))
    assert (err["2x"] < err["paper"] - 0.01).all(), err  # per image (measured at 64 px: ~0.37 vs ~0.40)
    assert err["2x pick-first"].max() < 1e-5 < 0.03 < err["paper pick-first"].min(), err  # all of 2x's error: the max


def test_paper_taps_are_unchanged_and_the_default():
    torch.manual_seed(0)
    sd = create_backbone("resnet18", 10).state_dict()
    default, paper, twox = morph_resnet18_state(sd), morph_resnet18_state(sd, taps="paper"), morph_resnet18_state(sd, taps="2x")
    assert all(torch.equal(default[k], paper[k]) for k in default)
    assert torch.equal(paper["conv1.conv1_1.weight"][27:], twox["conv1.conv1_1.weight"][27:])  # same random filters
    assert not torch.equal(paper["conv1.conv1_2.weight"], twox["conv1.conv1_2.weight"])
    g = sd["conv1.weight"]  # the paper's layout: impulses at offsets {0, 3, 4}, tiles 0-2 | 3-5 | 6
    f1, f2 = morph_conv(g)
    assert f1[0, 0, 0, 0] == 1 and f1[4, 0, 3, 3] == 1 and f1[8, 0, 4, 4] == 1
    assert torch.equal(f2[:, 4, 1, 2], g[:, 0, 4, 5]) and torch.equal(f2[:, 8, 2, 2], g[:, 0, 6, 6])
    # exact without the resolution change (as tests/test_morphhr.py checks for the default)
    ref = create_backbone("resnet18", 10).eval()
    model = create_morphhr(10, high_res=False)
    model.load_state_dict(morph_resnet18_state(ref.state_dict(), taps="paper"))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert _rel(ref.forward_features(x), model.eval().forward_features(x)).max() < 1e-4
    assert BACKBONES.get("morphhr").adapt_weights is morph_resnet18_state
    with pytest.raises(ValueError, match="taps"):
        morph_resnet18_state(sd, taps="3x")


def test_morphhr_2x_builds_runs_and_morphs_resnet18_weights_with_the_2x_taps(monkeypatch, tmp_path):
    torch.set_num_threads(1)
    spec = BACKBONES.get("morphhr_2x")
    assert BACKBONES.origin_of("morphhr_2x") == "built-in" and spec.weights_from == "resnet18"
    assert spec.input_size == BACKBONES.get("morphhr").input_size == 448
    torch.manual_seed(0)
    model = create_backbone("morphhr_2x", 2).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2)
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    sd = create_backbone("resnet18", 2).state_dict()
    torch.save(sd, tmp_path / "resnet18.pth")
    got = imagenet_state_dict("morphhr_2x")
    want = morph_resnet18_state(sd, taps="2x")
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert not torch.equal(got["conv1.conv1_2.weight"], imagenet_state_dict("morphhr")["conv1.conv1_2.weight"])
    model.load_state_dict(got)
