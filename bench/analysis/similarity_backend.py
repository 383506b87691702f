"""Input checks and the two linear-algebra backends (numpy/scipy, optional torch) of :mod:`bench.analysis.svcca`.

Pure functions on arrays: no I/O. The torch backend is used only when a caller passes ``device=`` or torch
tensors; ``import torch`` happens then, not here.
"""
from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import numpy as np
from scipy import linalg as sla
from scipy.linalg import blas as sblas

#: Fewer datapoints than this many per neuron makes canonical correlations spuriously high (warned).
MIN_DATAPOINTS_PER_NEURON = 5
# Row block of the Gram accumulation, in elements of the (rows x (p + q)) buffer (~32 MB in float64).
CHUNK_ELEMENTS = 4_000_000


class SimilarityWarning(UserWarning):
    """Inputs that make a similarity score unreliable or that were altered (too few datapoints, dead neurons)."""




# ----------------------------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------------------------

def is_torch(a: Any) -> bool:
    return type(a).__module__.split(".")[0] == "torch"


def check_matrix(a: Any, name: str, caller: str, allow_torch: bool) -> Any:
    """Return ``a`` as a 2-D float array (numpy, or a torch tensor when ``allow_torch``) after shape checks."""
    if is_torch(a):
        a = a.detach()
        if not allow_torch:
            a = a.cpu().numpy()
    else:
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"The {name!r} parameter of {caller} must be a numeric array; got dtype {a.dtype}.")
        if a.dtype.kind != "f":
            a = a.astype(np.float64)
    if a.ndim != 2:
        raise ValueError(f"The {name!r} parameter of {caller} must be 2-D of shape (n_datapoints, n_neurons); got "
                         f"shape {tuple(a.shape)}. Flatten convolutional maps to (n_images * height * width, "
                         "channels) or pool them spatially first.")
    if a.shape[1] == 0:
        raise ValueError(f"The {name!r} parameter of {caller} has no neurons (shape {tuple(a.shape)}).")
    return a


def check_pair(x: Any, y: Any, caller: str, allow_torch: bool = False, warn_few: bool = True) -> tuple[Any, Any]:
    x = check_matrix(x, "x", caller, allow_torch)
    y = check_matrix(y, "y", caller, allow_torch)
    (n, p), (m, q) = x.shape, y.shape
    if n != m:
        hint = ""
        if p == q:
            hint = (f" Their column counts agree ({p}), so they were probably given as google/svcca's (neurons, "
                    f"datapoints): call {caller}(x.T, y.T).")
        raise ValueError(f"{caller}: 'x' and 'y' must have the same number of datapoints (rows); got {n} and {m}. "
                         "Both layers must be evaluated on the same inputs, one row per datapoint." + hint)
    if n < 2:
        raise ValueError(f"{caller}: at least 2 datapoints are needed to centre the neurons; got {n}.")
    if warn_few and n < MIN_DATAPOINTS_PER_NEURON * max(p, q):
        warnings.warn(f"{caller}: only {n} datapoints for {max(p, q)} neurons (fewer than "
                      f"{MIN_DATAPOINTS_PER_NEURON} per neuron): canonical correlations are biased upwards (with as "
                      "many neurons as datapoints they are all 1). Use more datapoints, e.g. more spatial positions "
                      "per image, or fewer neurons.", SimilarityWarning, stacklevel=3)
    return x, y


def check_epsilon(epsilon: float, caller: str) -> float:
    eps = float(epsilon)
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"The 'epsilon' parameter of {caller} must be a finite float >= 0. Got {epsilon!r} instead.")
    return eps


def resolve_dtype(dtype: Any, caller: str) -> np.dtype:
    if dtype is None:
        return np.dtype(np.float64)
    name = str(dtype).replace("torch.", "")
    if name == "float32" or dtype is np.float32:
        return np.dtype(np.float32)
    if name == "float64" or dtype is np.float64:
        return np.dtype(np.float64)
    raise ValueError(f"The 'dtype' parameter of {caller} must be 'float32', 'float64' or None (float64). "
                     f"Got {dtype!r} instead.")


# ----------------------------------------------------------------------------------------------------------------
# Linear algebra back ends: numpy/scipy (default) and torch (optional, for GPUs)
# ----------------------------------------------------------------------------------------------------------------

def single_threaded_blas():
    """Limit BLAS to one thread: on 2 shared cores eigensolvers and SVDs run faster in pairs, one thread each."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def pair_map(fn, a, b):
    """``(fn(a), fn(b))``, the two calls in parallel threads with single-threaded BLAS."""
    with single_threaded_blas(), ThreadPoolExecutor(max_workers=2) as pool:
        fa, fb = pool.submit(fn, a), pool.submit(fn, b)
        return fa.result(), fb.result()


class NumpyOps:
    """Numpy/scipy back end in float32 or float64."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype

    def asarray(self, a):
        return a

    def means(self, a) -> np.ndarray:
        return np.mean(a, axis=0, dtype=np.float64)

    def constant(self, a) -> np.ndarray:
        return np.max(a, axis=0) == np.min(a, axis=0)

    def joint_gram(self, arrays, means) -> np.ndarray:
        """Upper triangle of ``C^T C`` for ``C = [a - mean for a in arrays]``, accumulated over row blocks."""
        n = arrays[0].shape[0]
        width = sum(a.shape[1] for a in arrays)
        syrk = sblas.get_blas_funcs("syrk", dtype=self.dtype)
        gram = np.zeros((width, width), dtype=self.dtype, order="F")
        rows = int(min(n, max(256, CHUNK_ELEMENTS // width)))
        buf = np.empty((rows, width), dtype=self.dtype)
        for start in range(0, n, rows):
            block = buf[: min(rows, n - start)]
            col = 0
            for a, mu in zip(arrays, means, strict=True):
                np.subtract(a[start:start + len(block)], mu.astype(self.dtype), out=block[:, col:col + a.shape[1]],
                            casting="same_kind")
                col += a.shape[1]
            # block.T is Fortran-ordered, gram too: dsyrk accumulates in place, nothing is copied.
            gram = syrk(1.0, block.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
        return gram

    def sym(self, upper: np.ndarray, rows, cols) -> np.ndarray:
        """Symmetric submatrix ``G[rows][:, cols]`` (rows == cols) from an upper-triangular Gram."""
        g = upper[np.ix_(rows, cols)]
        return np.triu(g) + np.triu(g, 1).T

    def block(self, upper: np.ndarray, rows, cols) -> np.ndarray:
        return np.asarray(upper[np.ix_(rows, cols)], dtype=np.float64)

    def centred(self, a, mean, kept) -> np.ndarray:
        sub = a if len(kept) == a.shape[1] else a[:, kept]
        return np.subtract(sub, mean[kept].astype(self.dtype), dtype=self.dtype)

    def sumsq(self, ac) -> np.ndarray:
        return np.einsum("ij,ij->j", ac, ac, dtype=np.float64)

    # numpy.linalg (LAPACK ?syevd / ?gesdd) releases the GIL, scipy.linalg's wrappers do not: only the former
    # lets the two layers' factorisations run side by side.
    def eigh_pair(self, gx, gy):
        def eig(g):
            w, v = np.linalg.eigh(g)
            return np.asarray(w[::-1], np.float64), np.asarray(v[:, ::-1], np.float64)
        return pair_map(eig, gx, gy)

    def svd_pair(self, xc, yc):
        def svd(a):
            try:
                u, s, vt = np.linalg.svd(a, full_matrices=False)
            except np.linalg.LinAlgError:  # pragma: no cover - gesdd rarely fails to converge; gesvd is slower
                u, s, vt = sla.svd(a, full_matrices=False, check_finite=False, lapack_driver="gesvd")
            return np.asarray(u, np.float64), np.asarray(s, np.float64), np.asarray(vt.T, np.float64)
        return pair_map(svd, xc, yc)

    def numpy(self, a) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)


class TorchOps:
    """Torch back end (e.g. ``device="cuda"``); results come back as float64 numpy arrays."""

    def __init__(self, dtype: np.dtype, device: Any, caller: str):
        try:
            import torch
        except ImportError as err:  # pragma: no cover - torch is a dependency of bench, but not of this module
            raise ValueError(f"The 'device' parameter of {caller} needs torch, which is not installed. Use "
                             "device=None for the numpy implementation.") from err
        self.torch = torch
        self.dtype = dtype
        self.tdtype = torch.float32 if dtype == np.float32 else torch.float64
        self.device = torch.device(device)

    def asarray(self, a):
        return self.torch.as_tensor(a).to(device=self.device, dtype=self.tdtype)

    def means(self, a) -> np.ndarray:
        return a.to(self.torch.float64).mean(dim=0).cpu().numpy()

    def constant(self, a) -> np.ndarray:
        return (a.amax(dim=0) == a.amin(dim=0)).cpu().numpy()

    def joint_gram(self, arrays, means):
        c = self.torch.cat([a - self.torch.as_tensor(mu, device=self.device, dtype=self.tdtype)
                            for a, mu in zip(arrays, means, strict=True)], dim=1)
        return c.T @ c

    def _index(self, idx):
        return self.torch.as_tensor(np.asarray(idx), device=self.device, dtype=self.torch.long)

    def sym(self, g, rows, cols):
        return g[self._index(rows)][:, self._index(cols)]

    def block(self, g, rows, cols) -> np.ndarray:
        return self.numpy(self.sym(g, rows, cols))

    def centred(self, a, mean, kept):
        idx = self._index(kept)
        return a[:, idx] - self.torch.as_tensor(mean[kept], device=self.device, dtype=self.tdtype)

    def sumsq(self, ac) -> np.ndarray:
        return self.numpy((ac.to(self.torch.float64) ** 2).sum(dim=0))

    def eigh_pair(self, gx, gy):
        out = []
        for g in (gx, gy):
            w, v = self.torch.linalg.eigh(g)
            out.append((self.numpy(w.flip(0)), self.numpy(v.flip(1))))
        return tuple(out)

    def svd_pair(self, xc, yc):
        out = []
        for a in (xc, yc):
            u, s, vh = self.torch.linalg.svd(a, full_matrices=False)
            out.append((self.numpy(u), self.numpy(s), self.numpy(vh.mT)))
        return tuple(out)

    def numpy(self, a) -> np.ndarray:
        return a.detach().to("cpu", self.torch.float64).numpy()


def backend(dtype: Any, device: Any, caller: str):
    dt = resolve_dtype(dtype, caller)
    return NumpyOps(dt) if device is None else TorchOps(dt, device, caller)
