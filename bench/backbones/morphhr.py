"""``morphhr``: ResNet-18 with its first convolution morphed for twice the input resolution (Wei et al., MorphHR).

The 7x7 stride-2 ``conv1`` becomes ``conv1_1`` (5x5) -> ``bn1_1`` -> ``act1_1`` -> ``pool1_1`` (2x2
max-pool) -> ``conv1_2`` (3x3); ``bn1`` and everything after it are ResNet-18's. With ``high_res=True``
(the registered backbone) ``conv1_1`` has stride 2 and the pool halves again, so a 448 px input gives
the same 112 px maps after conv1 as ResNet-18 at 224 px: twice the resolution at the same cost after
the stem.

Function-preserving morph (:func:`morph_resnet18_state`), as in the paper (eqs. 1-3, BN and
activation after [40] and [18]):

* ``conv1_1 * conv1_2`` must equal the 7x7 kernel ``G``. Exact construction: 27 of conv1_1's 64
  filters are unit impulses, one per (RGB channel, row offset, column offset) with offsets {0, 3, 4}
  in its 5x5 window; conv1_2 holds the matching 3x3 tiles of ``G`` (the 7 rows and columns of G are
  split 0-2 | 3-5 | 6 across the offsets 0 | 3 | 4). The other 37 filters are random with zero weight
  in conv1_2, so they change nothing yet but receive gradients. The paper's sufficient condition
  ``max(C_l C_i K1^2, C_j C_l K2^2) >= C_j C_i (K1+K2-1)^2`` holds (36864 >= 9408).
* ``bn1_1``: gamma 1, beta 0, running mean 0 and running variance ``1 - eps``, i.e. the identity in
  eval mode (exact). ``bn1_2`` is ResNet-18's ``bn1``.
* ``act1_1``: a PReLU with slope 1 (the identity), as [18]'s proxy activation; its slope is learnt.

The morph preserves the function exactly in the configuration without the resolution change
(``high_res=False``: conv1_1 stride 1 with padding 3, no pool, conv1_2 stride 2 without padding) and
in eval mode. Two things change it, as the paper says: the resolution change itself (stride-2
conv1_1 plus the pool at doubled input is a different function, which fine-tuning recovers), and
training-mode BatchNorm (bn1_1 then normalises with batch statistics instead of the identity).

How much the resolution change perturbs it (issue 12; ``benchmarks/morphhr_preservation.md``): on 2x
nearest-upsampled natural images at 448 px against ResNet-18 at 224 px, with smooth random 7x7 filters (no
ImageNet weights offline), the relative error is about 19 % at the stem and 12 % at block4 (6 images: 11-24 %
and 7-17 %). Most of it is the 2x2 max-pool, which no tap assignment removes; the paper's taps add the rest (7 %
at the stem with the pool replaced by a pick-first). A tap assignment aware of the 2x geometry (``taps="2x"``,
:func:`morph_conv_2x`, backbone ``morphhr_2x``) removes that part (18 % and 11 %, exact with a pick-first
pool): conv1_1 (stride 2, padding 2) at output i reads the 2x image at ``2i - 2 + a``, i.e. the 1x
pixel ``i + d`` with ``d = a // 2 - 1`` (a = 0, 2, 4 -> d = -1, 0, +1); after the 2x2 pool and conv1_2 (stride
1, padding 1) tap ``t`` reads pooled position ``j + t`` = max(x[2j + 2t + d], x[2j + 2t + d + 1]). ResNet-18's
kernel index ``u`` (1x offset ``k = u - 3``) is put on the pair ``2t + d = k``: -3 (-1, -1), -2 (-1, 0),
-1 (-1, +1), 0 (0, 0), +1 (0, +1), +2 (+1, 0), +3 (+1, +1) (the pairs for -1 and +1 keep the zero padding
exact at the borders). Each 1x pixel is then replaced by the max over a 2x2 block of 1x pixels (exact if
the pool picked the block's first pixel); the paper's assignment (offsets 0, 3, 4) is exact only without
the resolution change. ``morphhr`` keeps the paper's assignment.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from bench.backbones import builtin
from bench.backbones.specs import BACKBONES
from bench.backbones.timm_models import timm_factory, resnet_slim

MID = 64  # conv1_1's output channels (C_l)
OFFSETS = (0, 3, 4)  # impulse positions in the 5x5 window; the 3x3 tile at each covers these rows of the 7x7
TILE_ROWS = ((0, 1, 2), (3, 4, 5), (6,))  # rows (columns) of the 7x7 kernel each offset takes
# taps="2x": the 1x shift d of each impulse channel -> its tap in conv1_1's 5x5 window (d = a // 2 - 1)
SHIFT_TAP = {-1: 0, 0: 2, 1: 4}
# taps="2x": kernel index u of the 7x7 (1x offset u - 3) -> (conv1_2 tap t in -1..1, impulse shift d), 2t + d = u - 3
TAPS_2X = ((-1, -1), (-1, 0), (-1, 1), (0, 0), (0, 1), (1, 0), (1, 1))
TAPS = ("paper", "2x")


class MorphStem(nn.Sequential):
    """conv1_1 (5x5) -> bn1_1 -> act1_1 (PReLU) -> pool1_1 (2x2 max-pool or none) -> conv1_2 (3x3)."""

    def __init__(self, in_chans: int = 3, out_chans: int = 64, high_res: bool = True):
        s1, p1, s2, p2 = (2, 2, 1, 1) if high_res else (1, 3, 2, 0)
        super().__init__(OrderedDict(
            conv1_1=nn.Conv2d(in_chans, MID, 5, stride=s1, padding=p1, bias=False),
            bn1_1=nn.BatchNorm2d(MID),
            act1_1=nn.PReLU(MID, init=1.0),
            pool1_1=nn.MaxPool2d(2) if high_res else nn.Identity(),
            conv1_2=nn.Conv2d(MID, out_chans, 3, stride=s2, padding=p2, bias=False)))


def morph_resnet(model: nn.Module, high_res: bool = True) -> nn.Module:
    """Replace a timm ResNet's 7x7 ``conv1`` by a :class:`MorphStem` (in place, randomly initialised)."""
    old = model.conv1
    model.conv1 = MorphStem(old.in_channels, old.out_channels, high_res=high_res)
    return model


def create_morphhr(num_classes: int = 2, *, in_chans: int = 3, high_res: bool = True) -> nn.Module:
    return morph_resnet(timm_factory("resnet18", num_classes, in_chans=in_chans), high_res)


def _slim(num_classes: int, stage: str, width: float, *, in_chans: int = 3) -> nn.Module:
    return morph_resnet(resnet_slim("resnet18", num_classes, stage, width, in_chans=in_chans))


def morph_conv(g: torch.Tensor, *, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a ``(C_j, C_i, 7, 7)`` kernel into conv1_1 ``(64, C_i, 5, 5)`` and conv1_2 ``(C_j, 64, 3, 3)``
    whose composition (conv1_1 with padding 3, then conv1_2 without) is exactly ``g``."""
    cj, ci, k, _ = g.shape
    if k != 7 or len(OFFSETS) ** 2 * ci > MID:
        raise ValueError(f"morph needs a (C_j, C_i<=7, 7, 7) kernel; got {tuple(g.shape)}")
    f1 = torch.randn(MID, ci, 5, 5, generator=generator, dtype=g.dtype) * (2.0 / (ci * 25)) ** 0.5
    f2 = torch.zeros(cj, MID, 3, 3, dtype=g.dtype)
    ch = 0
    for c in range(ci):
        for a, rows in zip(OFFSETS, TILE_ROWS):
            for b, cols in zip(OFFSETS, TILE_ROWS):
                f1[ch] = 0
                f1[ch, c, a, b] = 1.0  # impulse: channel ch is input channel c shifted by (a, b)
                for u in rows:
                    for v in cols:
                        f2[:, ch, u - a, v - b] = g[:, c, u, v]
                ch += 1
    return f1, f2


def morph_conv_2x(g: torch.Tensor, *, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`morph_conv`, with the tap assignment aware of the 2x resolution change (module docstring).

    With ``high_res=True`` (conv1_1 stride 2 padding 2, 2x2 max-pool, conv1_2 stride 1 padding 1) on a 2x
    nearest-upsampled image, the composition equals ``g`` at 1x except that each 1x pixel is replaced by the
    max over its 2x2 block (exact where the pool would pick the block's first pixel). Channel layout as in
    :func:`morph_conv`: 27 impulse channels first, (input channel, row shift, column shift), then random ones.
    """
    cj, ci, k, _ = g.shape
    if k != 7 or len(SHIFT_TAP) ** 2 * ci > MID:
        raise ValueError(f"morph needs a (C_j, C_i<=7, 7, 7) kernel; got {tuple(g.shape)}")
    f1 = torch.randn(MID, ci, 5, 5, generator=generator, dtype=g.dtype) * (2.0 / (ci * 25)) ** 0.5
    f2 = torch.zeros(cj, MID, 3, 3, dtype=g.dtype)
    shifts = tuple(SHIFT_TAP)
    channel = {}
    for c in range(ci):
        for dr in shifts:
            for dc in shifts:
                ch = channel[c, dr, dc] = len(channel)
                f1[ch] = 0
                f1[ch, c, SHIFT_TAP[dr], SHIFT_TAP[dc]] = 1.0  # channel ch = input channel c shifted by (dr, dc) at 1x
    for c in range(ci):
        for u, (tr, dr) in enumerate(TAPS_2X):
            for v, (tc, dc) in enumerate(TAPS_2X):
                f2[:, channel[c, dr, dc], tr + 1, tc + 1] = g[:, c, u, v]
    return f1, f2


def morph_resnet18_state(state: dict, taps: str = "paper") -> dict:
    """ResNet-18 weights -> morphhr weights (function-preserving, see the module docstring).

    ``taps``: ``"paper"`` (:func:`morph_conv`, exact without the resolution change; ``morphhr``) or ``"2x"``
    (:func:`morph_conv_2x`, preserves more at twice the input side; ``morphhr_2x``).
    A state that is already morphed (has ``conv1.conv1_1.weight``) is returned unchanged.
    """
    if taps not in TAPS:
        raise ValueError(f"morphhr: taps must be one of {TAPS}, not {taps!r}")
    if "conv1.conv1_1.weight" in state:
        return state
    if "conv1.weight" not in state or tuple(state["conv1.weight"].shape[2:]) != (7, 7):
        raise ValueError("morphhr: expected ResNet-18 weights with a 7x7 'conv1.weight'")
    out = {k: v for k, v in state.items() if k != "conv1.weight"}
    split = morph_conv if taps == "paper" else morph_conv_2x
    f1, f2 = split(state["conv1.weight"].float(), generator=torch.Generator().manual_seed(0))
    eps = nn.BatchNorm2d(1).eps
    out.update({"conv1.conv1_1.weight": f1, "conv1.conv1_2.weight": f2,
                "conv1.bn1_1.weight": torch.ones(MID), "conv1.bn1_1.bias": torch.zeros(MID),
                "conv1.bn1_1.running_mean": torch.zeros(MID), "conv1.bn1_1.running_var": torch.full((MID,), 1 - eps),
                "conv1.bn1_1.num_batches_tracked": torch.tensor(0), "conv1.act1_1.weight": torch.ones(MID)})
    return out


def morph_resnet18_state_2x(state: dict) -> dict:
    """``morph_resnet18_state(state, taps="2x")``: ``morphhr_2x``'s ``adapt_weights``."""
    return morph_resnet18_state(state, taps="2x")


# the specs (morphhr, morphhr_2x) are declared in bench.backbones.builtin
builtin.bind(__name__)
MORPHHR = BACKBONES.get("morphhr")
