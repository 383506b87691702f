"""Similarity of two layers' representations: CCA, SVCCA, PWCCA and linear CKA.

Pure functions in scikit-learn's style: activations in, numbers out, no I/O, no GPU unless asked for with
``device=``. Used to compare a network before and after fine-tuning layer by layer (the seed study's Figure 1).

Orientation
-----------
Every function takes activations of shape ``(n_datapoints, n_neurons)``: one row per datapoint (an image, or one
spatial position of one image for a convolutional map), one column per neuron (a channel). This is scikit-learn's
``(n_samples, n_features)``. The reference implementation by Raghu et al. (github.com/google/svcca, ``cca_core.py``)
takes the *transpose*, ``(n_neurons, n_datapoints)``: ``cca_core.get_cca_similarity(acts1, acts2)`` corresponds
to ``cca(acts1.T, acts2.T)``. The two layers may have different numbers of neurons but must share the datapoints.

What is computed
----------------
Each neuron is centred (its mean over the datapoints subtracted). Neurons that are constant over all datapoints
(e.g. dead ReLUs) carry nothing to correlate: they are dropped with a :class:`SimilarityWarning`. With ``Xc = Ux Sx
Vx^T`` and ``Yc = Uy Sy Vy^T`` the thin singular value decompositions of the centred matrices, the canonical
correlations are the singular values of ``Ux^T Uy`` (the cosines of the principal angles between the two column
spaces). This is the same quantity as the textbook ``svd(Sxx^-1/2 Sxy Syy^-1/2)`` that google/svcca evaluates, but
it never inverts a covariance matrix, so it stays exact when a layer is (nearly) rank-deficient: directions below
the numerical rank of a layer (``s <= s_max * max(n_datapoints, n_neurons) * eps``) cannot be correlated and get
canonical correlation 0.

Relation to google/svcca
------------------------
- ``cca(x, y)`` equals ``get_cca_similarity(x.T, y.T, epsilon=0)["cca_coef1"]`` (``min(n_kept_x, n_kept_y)``
  values, sorted descending) wherever the reference is defined. Constant (dead) neurons differ: this module drops
  them with a :class:`SimilarityWarning`; the reference keeps them at ``epsilon=0`` (its ``remove_small`` keeps a
  variance ``>= epsilon``) and then either fails ("SVD did not converge") or returns one more coefficient, ~0, which
  moves ``np.mean(cca_coef1)`` by a few hundredths (3.9e-2 and 4.3e-2 in an independent check) and gives the dead
  neuron weight in ``compute_pwcca`` (up to 9.2e-2). With any ``epsilon > 0`` the reference drops them too and
  the two agree (~1e-15). The reference can also fail or return NaN for a rank-deficient layer, e.g. one neuron
  the sum of two others, where this module gives the exact answer.
- ``epsilon``: ``get_cca_similarity(..., epsilon=e)`` divides each covariance matrix by its largest entry (the
  largest neuron variance ``v_max``), drops neurons whose scaled variance is below ``e`` and adds ``e`` to the
  remaining scaled variances: a ridge, which lowers a correlation carried by directions of variance ``v`` by about
  ``e * v_max / (2 * v)``. ``epsilon=0`` (the default here) is exact CCA; pass the reference's ``epsilon`` to
  reproduce its numbers (the ridge is applied in closed form, agreement ~1e-10 in tests). For SVCCA the tutorial's
  ``epsilon=1e-10`` moves the mean by ~1e-8 for well-conditioned layers (at most 6e-8 with ``keep=0.99`` in an
  independent check) and by more as the kept singular values spread: measured with ``keep=1``, 9e-6 at a span
  ``s_0 / s_k`` of 4e3, 4.9e-4 at 4e4 and 1.8e-2 to 2.7e-2 at 3e5.
- ``svcca`` follows the SVCCA tutorial (``tutorials/001_Introduction.ipynb``): centre, keep the top ``k`` singular
  directions of each layer (``svacts = s[:k, None] * Vt[:k]``), run CCA on the two reduced matrices and report
  ``np.mean(results["cca_coef1"])``, the mean of all ``min(kx, ky)`` coefficients. It does *not* report
  ``results["mean"]``, which google/svcca truncates at 98 % of the coefficients' sum.
- ``pwcca`` documents its own relation to ``pwcca.compute_pwcca``, which differs from the paper's definition.
- ``linear_cka`` equals ``feature_space_linear_cka`` of Kornblith et al. (2019)'s notebook, which uses this
  module's orientation.

Speed
-----
For tall float64 inputs (more datapoints than neurons) the factorisations come from the Gram matrices: one pass
over the data in row blocks accumulates ``[Xc Yc]^T [Xc Yc]`` without copying the activations (``4 n p^2`` flops,
against ``> 8 n p^2`` for two SVDs), then the two symmetric eigenproblems run side by side on the two cores. At
2048 neurons x 20,000 datapoints this takes 6-8 s on a quiet 2-core machine (12 s with another job on a core) (``benchmarks/svcca_speed.py``), against
about 60 s for the reference recipe. Squaring loses accuracy only for directions far below the largest (error ~
``eps * (s_max / s)**2``), so the Gram route is used only while every direction that enters the result has
``s_max / s <= 1e5`` (differences to the SVD route ~1e-10 in tests); otherwise, and for small or wide inputs, exact
SVDs are used. ``dtype="float32"`` always uses SVDs (squaring in float32 would lose the small singular values):
it halves memory and is accurate to ~1e-6 but, on a CPU, is slower than the float64 Gram route; it is meant for
``device="cuda"``, which runs the factorisations in torch (optional; torch is imported only then).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bench.analysis.similarity_backend import (
    NumpyOps,
    SimilarityWarning,
    backend,
    check_epsilon,
    check_pair,
    single_threaded_blas,
)

__all__ = ["SimilarityWarning", "cca", "linear_cka", "pwcca", "svcca"]

# Largest s_max / s among the directions used for which the Gram route is trusted (error ~ eps * ratio**2).
_GRAM_MAX_COND = 1e5
# Below this many flops (n * (p + q)**2) exact SVDs are fast enough and are always used.
_GRAM_MIN_WORK = 2e9



# ----------------------------------------------------------------------------------------------------------------
# Factorisation of a pair of layers
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class _Side:
    """Thin SVD ``Xc = U diag(s) V^T`` of one centred layer restricted to its kept neurons."""

    kept: np.ndarray            # indices of the kept neurons
    mean: np.ndarray            # means of all neurons (float64)
    s: np.ndarray               # singular values, descending
    v: np.ndarray               # right singular vectors as columns, (n_kept, len(s))
    u: np.ndarray | None        # left singular vectors, (n_datapoints, len(s)); None on the Gram route
    rank: int                   # numerical rank
    ss_max: float               # largest sum of squares of a centred neuron (n - 1 times the largest variance)
    xc: np.ndarray | None       # centred kept activations (float64, exact route only)

    @property
    def n_kept(self) -> int:
        return len(self.kept)


@dataclass
class _Pair:
    x: _Side
    y: _Side
    gxy: np.ndarray | None      # Xc^T Yc on the Gram route
    route: Literal["gram", "exact"]


def _kept_neurons(sumsq: np.ndarray, constant: np.ndarray, epsilon: float, name: str,
                  caller: str) -> tuple[np.ndarray, str | None]:
    """Indices of the neurons that vary, and the warning about the others (None if there are none)."""
    # Exactly constant neurons; centring would leave rounding noise of the mean in them, so they are found directly.
    constant = constant | (sumsq == 0)
    small = np.zeros_like(constant)
    if epsilon > 0 and sumsq.max() > 0:
        small = ~constant & (sumsq < epsilon * sumsq.max())  # google/svcca's remove_small
    message = None
    if constant.any() or small.any():
        what = f"{int(constant.sum())} with zero variance (constant over all datapoints, e.g. dead ReLUs)"
        if small.any():
            what += f" and {int(small.sum())} with variance below epsilon={epsilon:g} times the largest"
        message = f"{caller}: ignored {int(constant.sum() + small.sum())} of {len(sumsq)} neurons of {name!r}: {what}."
    return np.flatnonzero(~(constant | small)), message


def _rank(s: np.ndarray, n: int, p: int, dtype: np.dtype) -> int:
    if len(s) == 0 or s[0] <= 0:
        return 0
    return int(np.count_nonzero(s > s[0] * max(n, p) * np.finfo(dtype).eps))


def _factorise(x, y, *, caller: str, epsilon: float, ops, route: str | None = None,
               kept: tuple[np.ndarray, np.ndarray] | None = None) -> _Pair | None:
    """Centre, drop constant neurons and factorise both layers; None when a layer has no varying neuron."""
    n, p = x.shape
    q = y.shape[1]
    if route is None:
        # Squaring in float32 would lose the small singular values that decide k and enter the mean: float32 always
        # takes the SVD route.
        tall = n >= max(p, q) and n * (p + q) ** 2 >= _GRAM_MIN_WORK
        route = "gram" if tall and ops.dtype == np.float64 else "exact"
    xa, ya = ops.asarray(x), ops.asarray(y)
    mx, my = ops.means(xa), ops.means(ya)
    for name, mu in (("x", mx), ("y", my)):
        if not np.all(np.isfinite(mu)):
            raise ValueError(f"{caller}: {name!r} contains NaN or infinite activations; remove or impute them first.")
    if route == "gram":
        upper = ops.joint_gram([xa, ya], [mx, my])
        diag = ops.numpy(upper.diagonal())
        sx_sq, sy_sq = diag[:p], diag[p:]
    else:
        xc_all, yc_all = ops.centred(xa, mx, np.arange(p)), ops.centred(ya, my, np.arange(q))
        sx_sq, sy_sq = ops.sumsq(xc_all), ops.sumsq(yc_all)
    messages: list[str | None] = []
    if kept is None:  # (a second call, after the Gram route handed over, reuses the first call's selection)
        (kx, msg_x), (ky, msg_y) = (_kept_neurons(sx_sq, ops.constant(xa), epsilon, "x", caller),
                                    _kept_neurons(sy_sq, ops.constant(ya), epsilon, "y", caller))
        messages = [msg_x, msg_y]
    else:
        kx, ky = kept
    if len(kx) == 0 or len(ky) == 0:
        warnings.warn(f"{caller}: {'x' if len(kx) == 0 else 'y'} has no neuron that varies over the datapoints; "
                      "the similarity is undefined (NaN).", SimilarityWarning, stacklevel=3)
        return None
    for message in filter(None, messages):
        warnings.warn(message, SimilarityWarning, stacklevel=3)
    if route == "gram":
        gx, gy = ops.sym(upper, kx, kx), ops.sym(upper, p + ky, p + ky)
        gxy = ops.block(upper, kx, p + ky)
        (wx, vx), (wy, vy) = ops.eigh_pair(gx, gy)
        sx, sy = np.sqrt(np.clip(wx, 0, None)), np.sqrt(np.clip(wy, 0, None))
        # The Gram route resolves singular values down to ~sqrt(eps) * s_max only.
        rx = int(np.count_nonzero(wx > wx[0] * len(kx) * np.finfo(ops.dtype).eps)) if wx[0] > 0 else 0
        ry = int(np.count_nonzero(wy > wy[0] * len(ky) * np.finfo(ops.dtype).eps)) if wy[0] > 0 else 0
        return _Pair(_Side(kx, mx, sx, vx, None, rx, float(sx_sq.max()), None),
                     _Side(ky, my, sy, vy, None, ry, float(sy_sq.max()), None), gxy, "gram")
    xc = xc_all if len(kx) == p else ops.centred(xa, mx, kx)
    yc = yc_all if len(ky) == q else ops.centred(ya, my, ky)
    (ux, sx, vx), (uy, sy, vy) = ops.svd_pair(xc, yc)
    keep_data = isinstance(ops, NumpyOps)
    side_x = _Side(kx, mx, sx, vx, ux, _rank(sx, n, len(kx), ops.dtype), float(sx_sq.max()),
                   ops.numpy(xc) if keep_data else None)
    side_y = _Side(ky, my, sy, vy, uy, _rank(sy, n, len(ky), ops.dtype), float(sy_sq.max()),
                   ops.numpy(yc) if keep_data else None)
    return _Pair(side_x, side_y, None, "exact")


def _gram_is_accurate(side: _Side, k: int, ridge: float) -> bool:
    """Whether the Gram route is accurate for the top ``k`` directions of ``side`` (see module notes)."""
    if k == 0:
        return True
    return side.s[0] <= _GRAM_MAX_COND * math.sqrt(side.s[k - 1] ** 2 + ridge)


def _cross(pair: _Pair, kx: int, ky: int, ridge_x: float, ridge_y: float) -> np.ndarray:
    """``(Ux[:, :kx] Dx)^T (Uy[:, :ky] Dy)`` with ``D = s / sqrt(s**2 + ridge)`` (``D = 1`` without a ridge)."""
    sx, sy = pair.x.s[:kx], pair.y.s[:ky]
    if pair.route == "gram":
        c = pair.x.v[:, :kx].T @ pair.gxy @ pair.y.v[:, :ky]
        return c / np.sqrt(sx ** 2 + ridge_x)[:, None] / np.sqrt(sy ** 2 + ridge_y)[None, :]
    dx = sx / np.sqrt(sx ** 2 + ridge_x) if ridge_x > 0 else np.ones(kx)
    dy = sy / np.sqrt(sy ** 2 + ridge_y) if ridge_y > 0 else np.ones(ky)
    return (pair.x.u[:, :kx] * dx).T @ (pair.y.u[:, :ky] * dy)


def _svdvals(c: np.ndarray) -> np.ndarray:
    """Singular values of ``c`` (canonical correlations, all <= 1), descending.

    ``sqrt(eigvalsh(c c^T))`` is about twice as fast as an SVD and accurate to 1e-10 or better while every value
    exceeds 1e-3; below that the square root amplifies rounding, and the SVD is used.
    """
    if c.size == 0:
        return np.zeros(0)
    small = c if c.shape[0] <= c.shape[1] else c.T
    with single_threaded_blas():
        lam = np.linalg.eigvalsh(small @ small.T)[::-1]
        rho = np.sqrt(np.clip(lam, 0.0, None)) if lam[-1] > 1e-6 else np.linalg.svd(c, compute_uv=False)
    return np.clip(rho, 0.0, 1.0)


def _pad(values: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length)
    out[: min(length, len(values))] = values[:length]
    return out


def _all_directions(side: _Side, epsilon: float) -> int:
    """Directions entering plain CCA: up to the numerical rank, or all of them with a ridge (which damps the rest)."""
    return len(side.s) if epsilon > 0 else side.rank


# ----------------------------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------------------------

def cca(x, y, *, epsilon: float = 0.0, dtype: Any = None, device: Any = None) -> np.ndarray:
    """Canonical correlations between two layers' activations, sorted descending.

    Parameters
    ----------
    x : array-like of shape (n_datapoints, n_neurons_x)
        Activations of the first layer, one row per datapoint. google/svcca uses the transpose
        ``(n_neurons, n_datapoints)``: pass ``acts1.T``.
    y : array-like of shape (n_datapoints, n_neurons_y)
        Activations of the second layer on the same datapoints, in the same order.
    epsilon : float, default=0.0
        0 computes exact CCA. A positive value reproduces ``cca_core.get_cca_similarity(x.T, y.T,
        epsilon=epsilon)``: neurons whose variance is below ``epsilon`` times the layer's largest are dropped and
        ``epsilon`` times the largest variance is added to every variance before whitening (a ridge).
    dtype : {None, "float64", "float32"}, default=None
        Working precision; None is float64. float32 halves memory and suits GPUs; on a CPU it is slower (see
        the module notes on speed).
    device : str or torch.device, optional
        None (default) computes with numpy/scipy; e.g. ``"cuda"`` does the heavy algebra with torch on that device.

    Returns
    -------
    ndarray of shape (min(n_kept_x, n_kept_y),)
        Canonical correlations in [0, 1], float64, descending; ``n_kept`` counts the neurons that vary. Directions
        beyond a layer's numerical rank (e.g. duplicated neurons) have correlation 0, as in the reference. Empty
        when a layer has no varying neuron.

    Raises
    ------
    ValueError
        If the inputs are not 2-D, have different numbers of datapoints, fewer than 2 datapoints, or non-finite
        values; or if ``epsilon`` or ``dtype`` is invalid.

    Warns
    -----
    SimilarityWarning
        When there are fewer than 5 datapoints per neuron (the correlations are then biased towards 1), and when
        constant neurons are dropped.

    See Also
    --------
    svcca : mean CCA after reducing each layer to its top singular directions.

    Notes
    -----
    With the thin SVDs ``Xc = Ux Sx Vx^T`` and ``Yc = Uy Sy Vy^T`` of the centred layers, the canonical correlations
    are the singular values of ``Ux^T Uy``; no covariance matrix is inverted. CCA is invariant to any invertible
    linear map of either layer's neurons (including permutations and rescaling) and symmetric in ``x`` and ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 3))
    >>> mixed = x @ rng.normal(size=(3, 3)) + 5.0      # an invertible map of the neurons, plus an offset
    >>> np.round(cca(x, mixed), 6)
    array([1., 1., 1.])
    >>> noise = rng.normal(size=(500, 2))
    >>> cca(x, noise).shape, bool(cca(x, noise).max() < 0.2)
    ((2,), True)
    """
    caller = "cca"
    epsilon = check_epsilon(epsilon, caller)
    ops = backend(dtype, device, caller)
    x, y = check_pair(x, y, caller, allow_torch=device is not None)
    pair = _factorise(x, y, caller=caller, epsilon=epsilon, ops=ops)
    if pair is None:
        return np.zeros(0)
    ridge_x, ridge_y = epsilon * pair.x.ss_max, epsilon * pair.y.ss_max  # google/svcca: epsilon * max variance
    kx, ky = _all_directions(pair.x, epsilon), _all_directions(pair.y, epsilon)
    full_rank = kx == pair.x.n_kept and ky == pair.y.n_kept
    if pair.route == "gram" and not (full_rank and _gram_is_accurate(pair.x, kx, ridge_x)
                                     and _gram_is_accurate(pair.y, ky, ridge_y)):
        pair = _factorise(x, y, caller=caller, epsilon=epsilon, ops=ops, route="exact",
                          kept=(pair.x.kept, pair.y.kept))
        kx, ky = _all_directions(pair.x, epsilon), _all_directions(pair.y, epsilon)
    rho = _svdvals(_cross(pair, kx, ky, ridge_x, ridge_y))
    return _pad(rho, min(pair.x.n_kept, pair.y.n_kept))


def _n_directions(side: _Side, keep: float, rule: str, epsilon: float) -> int:
    """Smallest k whose top-k singular values reach the share ``keep`` (capped at the numerical rank)."""
    s = side.s
    w = s if rule == "singular_values" else s * s
    share = np.cumsum(w) / w.sum()
    k = int(np.searchsorted(share, keep, side="left")) + 1
    k = max(1, min(k, side.rank))
    if epsilon > 0:  # google/svcca's remove_small, applied to the reduced matrices (variances s**2)
        k = min(k, int(np.count_nonzero(s ** 2 >= epsilon * s[0] ** 2)))
    return k


def svcca(x, y, *, keep: float = 0.99, rule: Literal["singular_values", "variance"] = "singular_values",
          epsilon: float = 0.0, dtype: Any = None, device: Any = None) -> float:
    """SVCCA similarity (Raghu et al. 2017): mean canonical correlation of the layers' top singular directions.

    Each layer is centred and reduced to its top ``k`` singular directions, ``k`` being the smallest count whose
    cumulative share of the layer's spectrum reaches ``keep``; the result is the mean of the ``min(kx, ky)``
    canonical correlations between the two reduced layers.

    Parameters
    ----------
    x : array-like of shape (n_datapoints, n_neurons_x)
        Activations of the first layer (e.g. the pretrained network), one row per datapoint. google/svcca uses
        the transpose ``(n_neurons, n_datapoints)``: pass ``acts1.T``.
    y : array-like of shape (n_datapoints, n_neurons_y)
        Activations of the second layer (e.g. after fine-tuning) on the same datapoints.
    keep : float in (0, 1], default=0.99
        Share of the spectrum to keep in each layer.
    rule : {"singular_values", "variance"}, default="singular_values"
        How the share is measured. ``"singular_values"``: ``cumsum(s) / sum(s)``, the arithmetic of google/svcca's
        tutorial, which the seed study used. ``"variance"``: ``cumsum(s**2) / sum(s**2)``, the "99 % of the
        variance" of the paper's wording. The variance rule keeps fewer directions.
    epsilon : float, default=0.0
        0 is exact. A positive value reproduces the tutorial's ``get_cca_similarity(svacts1, svacts2,
        epsilon=epsilon)`` on the reduced layers; the tutorial used ``1e-10``, which lowers the result more the
        wider the kept singular values spread (measured: 9e-6 at a span of 4e3, 4.9e-4 at 4e4, ~2e-2 at 3e5;
        module notes).
    dtype : {None, "float64", "float32"}, default=None
        Working precision; None is float64. float32 halves memory and suits GPUs; on a CPU it is slower (see
        the module notes on speed).
    device : str or torch.device, optional
        None (default) computes with numpy/scipy; e.g. ``"cuda"`` does the heavy algebra with torch there.

    Returns
    -------
    float
        Mean canonical correlation in [0, 1]; NaN when a layer has no varying neuron.

    Raises
    ------
    ValueError
        As :func:`cca`, and if ``keep`` is not in (0, 1] or ``rule`` is unknown.

    Warns
    -----
    SimilarityWarning
        As :func:`cca`; the warning about datapoints counts the layers' neurons before the reduction.

    Notes
    -----
    Equals google/svcca's tutorial recipe (``U, s, V = np.linalg.svd(cacts)``, ``svacts = s[:k, None] * V[:k]``,
    ``np.mean(get_cca_similarity(svacts1, svacts2, epsilon)["cca_coef1"])``) with ``acts = x.T`` and ``k`` from
    the rule above. The reduced layers need not be formed: their canonical correlations are the singular values
    of ``Ux[:, :kx]^T Uy[:, :ky]``. Symmetric in ``x`` and ``y``; invariant to rotations (orthogonal maps) and
    isotropic scaling of either layer's neurons, but, unlike CCA, not to general invertible maps.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 20)) * np.linspace(3.0, 0.1, 20)
    >>> q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    >>> round(svcca(x, x @ q), 6)                      # a rotated copy
    1.0
    >>> y = x[:, :10] + rng.normal(size=(2000, 10))    # half the neurons, plus noise
    >>> s1, s2 = svcca(x, y), svcca(x, y, rule="variance")
    >>> bool(0 < s1 < 1 and 0 < s2 < 1)
    True
    """
    caller = "svcca"
    if isinstance(keep, bool) or not (isinstance(keep, (int, float, np.floating)) and 0 < keep <= 1):
        raise ValueError(f"The 'keep' parameter of {caller} must be a float in (0, 1]. Got {keep!r} instead.")
    if rule not in ("singular_values", "variance"):
        raise ValueError(f"The 'rule' parameter of {caller} must be 'singular_values' or 'variance'. "
                         f"Got {rule!r} instead.")
    epsilon = check_epsilon(epsilon, caller)
    ops = backend(dtype, device, caller)
    x, y = check_pair(x, y, caller, allow_torch=device is not None)
    pair = _factorise(x, y, caller=caller, epsilon=0.0, ops=ops)
    if pair is None:
        return math.nan
    kx, ky = _n_directions(pair.x, keep, rule, epsilon), _n_directions(pair.y, keep, rule, epsilon)
    ridge_x, ridge_y = epsilon * pair.x.s[0] ** 2, epsilon * pair.y.s[0] ** 2
    if pair.route == "gram" and not (_gram_is_accurate(pair.x, kx, ridge_x) and _gram_is_accurate(pair.y, ky, ridge_y)):
        pair = _factorise(x, y, caller=caller, epsilon=0.0, ops=ops, route="exact", kept=(pair.x.kept, pair.y.kept))
        kx, ky = _n_directions(pair.x, keep, rule, epsilon), _n_directions(pair.y, keep, rule, epsilon)
    rho = _svdvals(_cross(pair, kx, ky, ridge_x, ridge_y))
    return float(np.mean(rho))


def pwcca(x, y, *, variant: Literal["canonical", "google"] = "canonical", epsilon: float = 0.0) -> float:
    """Projection-weighted CCA (Morcos et al. 2018): canonical correlations weighted by how much they explain.

    The weight of the i-th canonical correlation ``rho_i`` is ``alpha_i = sum_j |<h_i, z_j>|``, where ``h_i`` is
    the i-th canonical variate (unit length) of the layer with fewer neurons (``x`` on a tie), as in google/svcca,
    and ``z_j`` runs over that layer's neurons; the result is ``sum_i alpha_i rho_i / sum_i alpha_i``.

    Parameters
    ----------
    x : array-like of shape (n_datapoints, n_neurons_x)
        Activations of the first layer; google/svcca uses the transpose.
    y : array-like of shape (n_datapoints, n_neurons_y)
        Activations of the second layer on the same datapoints.
    variant : {"canonical", "google"}, default="canonical"
        ``"canonical"`` is the paper's definition: ``h_i = Xc a_i`` are the canonical variates of the centred
        layer, and ``z_j`` the centred neurons (centring ``z_j`` changes nothing, since ``h_i`` has zero mean).
        ``"google"`` reproduces ``pwcca.compute_pwcca(x.T, y.T, epsilon)`` of google/svcca, which instead
        orthonormalises (QR) the directions ``u_i^T Xc + means`` -- ``u_i`` the left singular vectors of
        ``Sxx^-1/2 Sxy Syy^-1/2``, i.e. the neurons rotated but not whitened, with the neuron means added back --
        and projects the uncentred neurons on them. Because the means are added to directions whose sign is
        arbitrary, that result also depends on the signs LAPACK gives the singular vectors; this variant takes the
        SVD of the same matrix to reproduce them (agreement ~1e-10 in tests; with a constant neuron only for
        ``epsilon > 0``, see the module notes). The two variants agree when the
        layer's neurons are uncorrelated with equal variances and differ by a few hundredths otherwise.
    epsilon : float, default=0.0
        As in :func:`cca`.

    Returns
    -------
    float
        Weighted mean correlation in [0, 1]; NaN when a layer has no varying neuron. Not symmetric in general:
        the weights come from the layer with fewer neurons.

    Raises
    ------
    ValueError
        As :func:`cca`, and for an unknown ``variant``.

    Warns
    -----
    SimilarityWarning
        As :func:`cca`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(1000, 4))
    >>> round(pwcca(x, x @ rng.normal(size=(4, 4))), 6)
    1.0
    >>> y = x[:, :2] * [3.0, 1.0] + rng.normal(size=(1000, 2))
    >>> np.round(cca(x, y), 3)
    array([0.949, 0.708])
    >>> round(pwcca(x, y), 3)    # above the plain mean 0.828: the weights favour the dominant direction
    0.872
    """
    caller = "pwcca"
    if variant not in ("canonical", "google"):
        raise ValueError(f"The 'variant' parameter of {caller} must be 'canonical' or 'google'. "
                         f"Got {variant!r} instead.")
    epsilon = check_epsilon(epsilon, caller)
    ops = NumpyOps(np.dtype(np.float64))
    x, y = check_pair(x, y, caller)
    route = "exact" if variant == "google" else None
    pair = _factorise(x, y, caller=caller, epsilon=epsilon, ops=ops, route=route)
    if pair is None:
        return math.nan
    ridge_x, ridge_y = epsilon * pair.x.ss_max, epsilon * pair.y.ss_max  # google/svcca: epsilon * max variance
    kx, ky = _all_directions(pair.x, epsilon), _all_directions(pair.y, epsilon)
    if pair.route == "gram" and not (kx == pair.x.n_kept and ky == pair.y.n_kept
                                     and _gram_is_accurate(pair.x, kx, ridge_x)
                                     and _gram_is_accurate(pair.y, ky, ridge_y)):
        pair = _factorise(x, y, caller=caller, epsilon=epsilon, ops=ops, route="exact",
                          kept=(pair.x.kept, pair.y.kept))
        kx, ky = _all_directions(pair.x, epsilon), _all_directions(pair.y, epsilon)
    n_coef = min(pair.x.n_kept, pair.y.n_kept)
    c = _cross(pair, kx, ky, ridge_x, ridge_y)
    if c.size == 0:
        return 0.0
    use_x = pair.x.n_kept <= pair.y.n_kept             # as compute_pwcca: the layer with fewer neurons
    side, k, ridge = (pair.x, kx, ridge_x) if use_x else (pair.y, ky, ridge_y)
    with single_threaded_blas():
        if variant == "canonical":
            a, rho, bt = np.linalg.svd(c, full_matrices=False)
        else:
            # The reference's whitened cross-covariance Sxx^-1/2 Sxy Syy^-1/2 equals Vx c Vy^T. It adds the neuron
            # means to its rotated directions, so its result depends on the signs LAPACK gives the singular
            # vectors: taking the SVD of this same matrix reproduces them.
            a, rho, bt = np.linalg.svd(pair.x.v[:, :kx] @ c @ pair.y.v[:, :ky].T)
    rho = np.clip(rho, 0.0, 1.0)
    rot = a if use_x else bt.T
    if variant == "canonical":
        # Canonical variate i of `side` is h_i = U_k diag(d) rot_i, d = s / sqrt(s**2 + ridge) (1 without ridge);
        # <h_i, z_j> = (rot_i^T diag(d * s) V_k^T)_j. h_i is normalised to unit length.
        s_k = side.s[:k]
        d = s_k / np.sqrt(s_k ** 2 + ridge) if ridge > 0 else np.ones(k)
        rot = rot[:, : len(rho)]
        proj = (rot * (d * s_k)[:, None]).T @ side.v[:, :k].T
        weights = np.abs(proj).sum(axis=1) / np.linalg.norm(rot * d[:, None], axis=0)
    else:
        mean = side.mean[side.kept]
        p_basis, _ = np.linalg.qr(side.xc @ rot + mean)  # rotated, unwhitened neurons plus the means, orthonormalised
        weights = np.abs(p_basis.T @ (side.xc + mean)).sum(axis=1)
    weights, rho = _pad(weights, n_coef), _pad(rho, n_coef)
    return float(np.sum(weights * rho) / np.sum(weights))


def linear_cka(x, y, *, dtype: Any = None, device: Any = None) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019) between two layers' activations.

    ``CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` for the centred activations.

    Parameters
    ----------
    x : array-like of shape (n_datapoints, n_neurons_x)
        Activations of the first layer, one row per datapoint (the orientation of Kornblith et al.'s code;
        google/svcca uses the transpose).
    y : array-like of shape (n_datapoints, n_neurons_y)
        Activations of the second layer on the same datapoints.
    dtype : {None, "float64", "float32"}, default=None
        Working precision; None is float64.
    device : str or torch.device, optional
        None (default) computes with numpy; e.g. ``"cuda"`` computes the Gram matrices with torch there.

    Returns
    -------
    float
        Similarity in [0, 1]; NaN if a layer is constant.

    Raises
    ------
    ValueError
        If the inputs are not 2-D, have different numbers of datapoints, fewer than 2 datapoints, or non-finite
        values.

    Notes
    -----
    Equals ``feature_space_linear_cka(x, y)`` of the authors' notebook (``debiased=False``). Invariant to
    orthogonal maps and isotropic scaling of either layer, not to general invertible maps; symmetric. Constant
    neurons contribute nothing and need not be dropped. With fewer datapoints than neurons the equivalent
    datapoint-space form ``<Kx, Ky>_F / (||Kx||_F ||Ky||_F)``, ``K = Xc Xc^T``, is used. Like CCA, CKA is biased
    upwards when there are few datapoints per neuron (no warning is issued).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 8))
    >>> q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    >>> round(linear_cka(x, 3.0 * x @ q + 1.0), 6)     # rotated, scaled and shifted copy
    1.0
    >>> bool(linear_cka(x, rng.normal(size=(300, 8))) < 0.1)
    True
    """
    caller = "linear_cka"
    ops = backend(dtype, device, caller)
    x, y = check_pair(x, y, caller, allow_torch=device is not None, warn_few=False)
    n, p = x.shape
    q = y.shape[1]
    xa, ya = ops.asarray(x), ops.asarray(y)
    mx, my = ops.means(xa), ops.means(ya)
    for name, mu in (("x", mx), ("y", my)):
        if not np.all(np.isfinite(mu)):
            raise ValueError(f"{caller}: {name!r} contains NaN or infinite activations; remove or impute them first.")
    if n >= p + q:
        upper = ops.joint_gram([xa, ya], [mx, my])
        gx = ops.numpy(ops.sym(upper, np.arange(p), np.arange(p)))
        gy = ops.numpy(ops.sym(upper, np.arange(p, p + q), np.arange(p, p + q)))
        cross = np.linalg.norm(ops.block(upper, np.arange(p), np.arange(p, p + q))) ** 2
    else:
        xc, yc = ops.centred(xa, mx, np.arange(p)), ops.centred(ya, my, np.arange(q))
        gx, gy = ops.numpy(xc @ xc.T), ops.numpy(yc @ yc.T)
        cross = float(np.vdot(gx, gy))
    norm = np.linalg.norm(gx) * np.linalg.norm(gy)
    if norm == 0:
        warnings.warn(f"{caller}: {'x' if np.linalg.norm(gx) == 0 else 'y'} is constant over the datapoints; "
                      "CKA is undefined (NaN).", SimilarityWarning, stacklevel=2)
        return math.nan
    return float(min(cross / norm, 1.0))
