"""How much MorphHR's morph at twice the resolution perturbs ResNet-18's function (issue 12).

ResNet-18 (timm ``resnet18`` via ``create_backbone``, eval mode) at 1x against the morphed network at 2x:
its weights are morphed with each tap assignment (``taps="paper"`` -> backbone ``morphhr``, ``taps="2x"`` ->
``morphhr_2x``) and it is fed the 2x nearest-upsampled image. Reported per assignment: the relative error
``||A - B||_F / ||A||_F`` of the stem output (``act1``: after bn1 and ReLU, 112 x 112 for both) and of the
block4 output (``layer4``), mean and range over the images; plus the sanity case ``high_res=False`` at 1x
(the morph without the resolution change, exact up to float rounding), and a decomposition: the same at 2x with
``pool1_1`` replaced by a pick of each 2x2 block's first element (what remains is the tap assignment's own
mismatch; the 2x-aware assignment is then exact, which checks its derivation).

No ImageNet weights are available offline: conv1 gets smooth filters (random normal 7x7 filters smoothed by a
Gaussian of sigma 1.5 px, each output filter normalised to unit norm), the rest of the network keeps timm's
random initialisation, with random BatchNorm statistics and affine parameters (gamma in [0.5, 1.5]) so that
the residual branches are not silenced by timm's zero-initialised last BatchNorm (``--timm-bn`` keeps them).
Images: skimage's bundled astronaut, chelsea, coffee, rocket, cat, immunohistochemistry, centre-cropped
square, resized (antialiased bilinear) to ``--size`` and ImageNet-normalised.

    .venv/bin/python benchmarks/morphhr_preservation.py            # 224 px, the table in morphhr_preservation.md
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from bench.backbones import create_backbone
from bench.backbones.morphhr import create_morphhr, morph_resnet18_state
from bench.backbones.timm_models import IMAGENET_MEAN, IMAGENET_STD

IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry")
BACKBONE_OF = {"paper": "morphhr", "2x": "morphhr_2x"}


def natural_images(size: int, names=IMAGES) -> torch.Tensor:
    """skimage's bundled images, centre-cropped square, resized to ``size``, ImageNet-normalised: (N, 3, size, size)."""
    import skimage.data

    out = []
    for name in names:
        img = torch.from_numpy(np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0)
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s].permute(2, 0, 1)[None]
        out.append(F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    x = torch.cat(out)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def smooth_filters(cout: int = 64, cin: int = 3, sigma: float = 1.5, seed: int = 0) -> torch.Tensor:
    """Random normal 7x7 filters smoothed by a Gaussian (sigma px), each output filter of unit norm."""
    gen = torch.Generator().manual_seed(seed)
    pad = 6
    noise = torch.randn(cout * cin, 1, 7 + 2 * pad, 7 + 2 * pad, generator=gen)
    r = torch.arange(-pad, pad + 1, dtype=torch.float32)
    k = torch.exp(-r ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    sm = F.conv2d(F.conv2d(noise, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))  # valid: 7x7, no edge effects
    w = sm.view(cout, cin, 7, 7)
    return w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def reference_resnet18(*, timm_bn: bool = False, seed: int = 0) -> torch.nn.Module:
    """ResNet-18 with smooth conv1 filters, the rest random (see the module docstring), eval mode."""
    torch.manual_seed(seed)
    model = create_backbone("resnet18", 10)
    with torch.no_grad():
        model.conv1.weight.copy_(smooth_filters(seed=seed))
        if not timm_bn:
            g = torch.Generator().manual_seed(seed + 1)
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                    m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


class PickFirst(torch.nn.Module):
    """The first element of each 2x2 block (stride-2 subsampling): pool1_1 without the max, for the decomposition."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., ::2, ::2]


def morphed(ref: torch.nn.Module, taps: str, *, high_res: bool = True, pick_first: bool = False) -> torch.nn.Module:
    """``ref``'s weights morphed with ``taps`` in ``create_backbone(morphhr / morphhr_2x)`` (or high_res=False)."""
    model = create_backbone(BACKBONE_OF[taps], 10) if high_res else create_morphhr(10, high_res=False)
    model.load_state_dict(morph_resnet18_state(ref.state_dict(), taps=taps))
    if pick_first:
        model.conv1.pool1_1 = PickFirst()
    return model.eval()


def taps_out(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(stem = ``act1`` output, block4 = ``layer4`` output)."""
    got = {}
    hooks = [model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: got.__setitem__(n, o.detach()))
             for n in ("act1", "layer4")]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return got["act1"], got["layer4"]


def rel_errors(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-image ``||a - b||_F / ||a||_F``."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return ((a - b).flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1)).numpy()


def measure(ref: torch.nn.Module, x: torch.Tensor, taps: str, *, high_res: bool = True,
            pick_first: bool = False) -> dict[str, np.ndarray]:
    """Per-image relative errors of the morphed network (fed the 2x nearest upsampling if high_res) against ``ref``."""
    stem_a, b4_a = taps_out(ref, x)
    x_in = F.interpolate(x, scale_factor=2, mode="nearest") if high_res else x
    stem_b, b4_b = taps_out(morphed(ref, taps, high_res=high_res, pick_first=pick_first), x_in)
    return {"stem": rel_errors(stem_a, stem_b), "block4": rel_errors(b4_a, b4_b)}


def _fmt(e: np.ndarray) -> str:
    if e.max() < 1e-3:
        return f"{e.mean():.1e} ({e.min():.1e} - {e.max():.1e})"
    return f"{100 * e.mean():.1f} % ({100 * e.min():.1f} - {100 * e.max():.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="1x side (the morphed network gets twice this)")
    ap.add_argument("--timm-bn", action="store_true", help="keep timm's BatchNorm init (zero-initialised last BN)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = natural_images(args.size)
    ref = reference_resnet18(timm_bn=args.timm_bn, seed=args.seed)
    bn = "timm's BatchNorm init" if args.timm_bn else "random BatchNorm statistics/affine"
    print(f"ResNet-18: smooth random conv1 filters (Gaussian sigma 1.5 px, unit norm; real ImageNet filters not "
          f"available offline), rest random with {bn}, seed {args.seed}, eval mode")
    print(f"images ({len(IMAGES)}): {', '.join(IMAGES)}; {args.size} px vs 2x nearest upsampling at {2 * args.size} px")
    print("relative error ||A - B||_F / ||A||_F, mean (min - max) over the images")
    print("| taps | backbone | input | stem (act1) | block4 (layer4) |")
    print("|---|---|---|---|---|")
    for taps in ("paper", "2x"):
        e = measure(ref, x, taps)
        print(f"| {taps} | {BACKBONE_OF[taps]} | 2x nearest, {2 * args.size} px | {_fmt(e['stem'])} | "
              f"{_fmt(e['block4'])} |")
    for taps in ("paper", "2x"):
        e = measure(ref, x, taps, high_res=False)
        print(f"| {taps} | high_res=False (sanity) | 1x, {args.size} px | {_fmt(e['stem'])} | {_fmt(e['block4'])} |")
    for taps in ("paper", "2x"):
        e = measure(ref, x, taps, pick_first=True)
        print(f"| {taps} | {BACKBONE_OF[taps]}, pool1_1 -> pick-first (decomposition) | 2x nearest, {2 * args.size} px "
              f"| {_fmt(e['stem'])} | {_fmt(e['block4'])} |")


if __name__ == "__main__":
    main()
