"""bench.analysis.svcca: invariances, closed forms, textbook formulas, both computation routes, input checks."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import bench.analysis.svcca as sv
from bench.analysis.svcca import SimilarityWarning, cca, linear_cka, pwcca, svcca

RULES = ["singular_values", "variance"]


@pytest.fixture(params=["exact", "gram"])
def route(request, monkeypatch):
    """Run a test through exact SVDs and through the Gram-matrix route (normally used for large layers only)."""
    monkeypatch.setattr(sv, "_GRAM_MIN_WORK", 1e30 if request.param == "exact" else 0)
    return request.param


def layers(n=1500, p=12, q=9, shared=4, seed=0, offset=2.0):
    """Two layers sharing ``shared`` latent directions, with unequal neuron scales and non-zero means."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, shared))
    x = (z @ rng.normal(size=(shared, p)) + rng.normal(size=(n, p))) * np.linspace(2.0, 0.2, p) + offset
    y = z @ rng.normal(size=(shared, q)) + 0.7 * rng.normal(size=(n, q)) - offset
    return x, y


def orthogonal(k, seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(k, k)))
    return q


def textbook_cca(x, y, epsilon=0.0):
    """Canonical correlations as svd(Sxx^-1/2 Sxy Syy^-1/2), with google/svcca's scaled ridge when epsilon > 0."""
    c = np.cov(x.T, y.T)
    p = x.shape[1]
    sxx, syy, sxy = c[:p, :p], c[p:, p:], c[:p, p:]
    vx, vy = np.abs(sxx).max(), np.abs(syy).max()

    def inv_sqrt(s, v):
        w, u = np.linalg.eigh(s / v + epsilon * np.eye(len(s)))
        return u @ np.diag(w ** -0.5) @ u.T / np.sqrt(v)

    return np.linalg.svd(inv_sqrt(sxx, vx) @ sxy @ inv_sqrt(syy, vy), compute_uv=False)


def tutorial_svcca(x, y, keep, rule, epsilon=0.0):
    """google/svcca's tutorial recipe in this module's orientation: SVD, keep top k, CCA, mean."""
    reduced = []
    for a in (x, y):
        u, s, _ = np.linalg.svd(a - a.mean(0), full_matrices=False)
        w = s if rule == "singular_values" else s ** 2
        k = int(np.searchsorted(np.cumsum(w) / w.sum(), keep)) + 1
        reduced.append(u[:, :k] * s[:k])  # = (s[:k] * Vt[:k]).T in google's orientation
    return textbook_cca(*reduced, epsilon=epsilon).mean()


# --------------------------------------------------------------------------- identity, rotations, invariances

def test_identical_inputs_give_one(route):
    x, _ = layers()
    np.testing.assert_allclose(cca(x, x), 1.0, atol=1e-10)
    for rule in RULES:
        assert svcca(x, x, rule=rule) == pytest.approx(1.0, abs=1e-10)
    assert pwcca(x, x) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_rotated_copy_gives_one(route):
    x, _ = layers()
    rotated = x @ orthogonal(x.shape[1]) - 5.0
    np.testing.assert_allclose(cca(x, rotated), 1.0, atol=1e-10)
    for rule in RULES:
        assert svcca(x, rotated, rule=rule) == pytest.approx(1.0, abs=1e-10)
        assert svcca(x, rotated, rule=rule, keep=0.5) == pytest.approx(1.0, abs=1e-10)


def test_cca_invariant_to_invertible_maps_permutations_and_offsets(route):
    x, y = layers()
    rng = np.random.default_rng(3)
    base = cca(x, y)
    mixing = rng.normal(size=(x.shape[1], x.shape[1])) + 3 * np.eye(x.shape[1])
    assert np.linalg.cond(mixing) < 1e3
    np.testing.assert_allclose(cca(x @ mixing + 7.0, y), base, atol=1e-10)
    np.testing.assert_allclose(cca(x[:, rng.permutation(x.shape[1])], y[:, rng.permutation(y.shape[1])]), base,
                               atol=1e-12)
    np.testing.assert_allclose(cca(x * rng.uniform(0.01, 100, x.shape[1]), y), base, atol=1e-10)
    np.testing.assert_allclose(cca(x, x @ mixing), 1.0, atol=1e-10)


def test_svcca_invariant_to_rotation_and_isotropic_scaling(route):
    x, y = layers()
    for rule in RULES:
        base = svcca(x, y, rule=rule)
        assert svcca(3.0 * x @ orthogonal(x.shape[1]), 0.01 * y, rule=rule) == pytest.approx(base, abs=1e-10)
        assert svcca(x[:, ::-1], y, rule=rule) == pytest.approx(base, abs=1e-12)


def test_cka_invariant_to_orthogonal_maps_and_isotropic_scaling_not_general_maps():
    x, y = layers()
    base = linear_cka(x, y)
    assert linear_cka(2.5 * x @ orthogonal(x.shape[1]) + 1.0, 0.1 * y @ orthogonal(y.shape[1], seed=2)) == \
        pytest.approx(base, abs=1e-12)
    stretched = x * np.linspace(1.0, 10.0, x.shape[1])
    assert abs(linear_cka(stretched, y) - base) > 1e-3  # CKA, unlike CCA, sees the scale of each direction


def test_independent_noise_gives_values_near_zero(route):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(20_000, 10)), rng.exponential(size=(20_000, 8))
    assert cca(x, y).max() < 0.05
    for rule in RULES:
        assert svcca(x, y, rule=rule) < 0.03
    assert pwcca(x, y) < 0.03
    assert linear_cka(x, y) < 0.01


def test_symmetric_in_the_two_layers(route):
    x, y = layers(p=12, q=9)
    np.testing.assert_allclose(cca(x, y), cca(y, x), atol=1e-12)
    for rule in RULES:
        assert svcca(x, y, rule=rule) == pytest.approx(svcca(y, x, rule=rule), abs=1e-12)
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), abs=1e-14)


# --------------------------------------------------------------------------- agreement with textbook formulas

@pytest.mark.parametrize("epsilon", [0.0, 1e-6, 1e-3])
def test_cca_matches_textbook_covariance_formula(route, epsilon):
    x, y = layers(p=12, q=9)
    np.testing.assert_allclose(cca(x, y, epsilon=epsilon), textbook_cca(x, y, epsilon), atol=1e-10)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_svcca_matches_tutorial_recipe(route, rule, keep):
    x, y = layers(p=20, q=15)
    assert svcca(x, y, keep=keep, rule=rule) == pytest.approx(tutorial_svcca(x, y, keep, rule), abs=1e-10)
    assert svcca(x, y, keep=keep, rule=rule, epsilon=1e-4) == \
        pytest.approx(tutorial_svcca(x, y, keep, rule, epsilon=1e-4), abs=1e-10)


def test_keep_rules_count_directions_as_documented():
    # x's singular values are 4, 3, 2, 1: cumulative shares 0.4/0.7/0.9/1 by value, 0.53/0.83/0.97/1 by variance;
    # y's are 5, 1.5, 1.2, 1: shares 0.57/0.75/0.89/1 by value, 0.84/0.92/0.97/1 by variance.
    rng = np.random.default_rng(5)

    def centred_orthonormal(a):
        q, _ = np.linalg.qr(a - a.mean(0))
        return q

    u = centred_orthonormal(rng.normal(size=(400, 4)))
    v = centred_orthonormal(u + 0.8 * rng.normal(size=(400, 4)))
    x, y = 10 + u * [4.0, 3.0, 2.0, 1.0], v * [5.0, 1.5, 1.2, 1.0]  # columns are the singular directions
    for keep, rule, kx, ky in [(0.8, "singular_values", 3, 3), (0.8, "variance", 2, 1), (0.95, "variance", 3, 3),
                               (0.35, "singular_values", 1, 1), (1.0, "variance", 4, 4)]:
        expected = cca(x[:, :kx], y[:, :ky]).mean()
        assert svcca(x, y, keep=keep, rule=rule) == pytest.approx(expected, abs=1e-12), (keep, rule)


# --------------------------------------------------------------------------- robustness and the two routes

def test_rank_deficient_layer_is_exact_not_nan(route):
    x, y = layers(p=6, q=9)
    dependent = np.c_[x, x[:, 0] + x[:, 1], 2 * x[:, 2]]  # rank 6 with 8 neurons: google/svcca fails here
    got = cca(dependent, y)
    assert got.shape == (8,) and np.all(np.isfinite(got))
    np.testing.assert_allclose(got[:6], cca(x, y), atol=1e-10)
    np.testing.assert_allclose(got[6:], 0.0)
    assert svcca(dependent, y, keep=1.0) == pytest.approx(svcca(x, y, keep=1.0), abs=1e-10)
    assert math.isfinite(pwcca(dependent, y))


def test_nearly_rank_deficient_layer_stays_finite(route):
    x, y = layers(p=6, q=5)
    near = np.c_[x, x[:, 0] + 1e-12 * np.random.default_rng(6).normal(size=len(x))]
    got = cca(near, y)
    assert np.all(np.isfinite(got)) and np.all((got >= 0) & (got <= 1))
    np.testing.assert_allclose(got[:5], cca(x, y)[:5], atol=1e-6)


def test_ill_conditioned_layers_same_on_both_routes(monkeypatch):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3000, 30)) * np.logspace(0, -4, 30)       # s_max / s_min = 1e4: Gram route accurate
    y = x @ rng.normal(size=(30, 20)) + 1e-3 * rng.normal(size=(3000, 20))
    z = rng.normal(size=(3000, 30)) * np.logspace(0, -9, 30)       # 1e9: the Gram route must hand over to SVDs
    results = {}
    for name, work in [("exact", 1e30), ("gram", 0)]:
        monkeypatch.setattr(sv, "_GRAM_MIN_WORK", work)
        results[name] = (cca(x, y), svcca(x, y), svcca(x, y, rule="variance", keep=0.999999), cca(z, y),
                         svcca(z, y, keep=1.0), pwcca(x, y), pwcca(z, y))
    for a, b in zip(results["exact"], results["gram"], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9)


def test_constant_neurons_are_dropped_with_a_warning(route):
    x, y = layers(p=6, q=5)
    dead = np.c_[x[:, :3], np.zeros(len(x)), x[:, 3:], np.full(len(x), 0.3)]
    with pytest.warns(SimilarityWarning, match="ignored 2 of 8 neurons of 'x'"):
        got = cca(dead, y)
    np.testing.assert_allclose(got, cca(x, y), atol=1e-12)
    with pytest.warns(SimilarityWarning, match="zero variance"):
        assert svcca(dead, y) == pytest.approx(svcca(x, y), abs=1e-12)


def test_layer_without_varying_neuron_gives_nan(route):
    x, y = layers(p=3, q=4)
    flat = np.ones((len(x), 3))
    with pytest.warns(SimilarityWarning, match="no neuron that varies"):
        assert cca(flat, y).size == 0
    with pytest.warns(SimilarityWarning):
        assert math.isnan(svcca(flat, y)) and math.isnan(pwcca(y, flat))
    with pytest.warns(SimilarityWarning, match="constant"):
        assert math.isnan(linear_cka(flat, y))


def test_warns_when_datapoints_are_few_per_neuron():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(40, 10)), rng.normal(size=(40, 3))
    for fn in (cca, svcca, pwcca):
        with pytest.warns(SimilarityWarning, match="only 40 datapoints for 10 neurons"):
            fn(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cca(rng.normal(size=(50, 10)), rng.normal(size=(50, 3)))  # 5 per neuron: no warning


# --------------------------------------------------------------------------- PWCCA

def test_pwcca_is_a_weighted_mean_of_the_canonical_correlations(route):
    x, y = layers(p=12, q=5)
    rho = cca(x, y)
    for variant in ("canonical", "google"):
        assert rho.min() <= pwcca(x, y, variant=variant) <= rho.max()


def test_pwcca_canonical_matches_explicit_canonical_variates(route):
    x, y = layers(p=5, q=8)
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc

    def inv_sqrt(s):
        w, u = np.linalg.eigh(s)
        return u @ np.diag(w ** -0.5) @ u.T

    u, rho, _ = np.linalg.svd(inv_sqrt(sxx) @ sxy @ inv_sqrt(syy))
    h = xc @ inv_sqrt(sxx) @ u                      # canonical variates of x (unit length, orthogonal)
    alpha = np.abs(h.T @ xc).sum(axis=1)           # x has fewer neurons, so it sets the weights
    assert pwcca(x, y) == pytest.approx(np.sum(alpha * rho) / alpha.sum(), abs=1e-10)


def test_pwcca_variants_agree_when_neurons_are_white():
    # compute_pwcca orthonormalises rotated but unwhitened neurons; for white neurons that is the canonical variate.
    x, y = layers(p=6, q=9, offset=0.0)
    u, _, _ = np.linalg.svd(x - x.mean(0), full_matrices=False)
    white = 7.0 * u
    assert pwcca(white, y, variant="google") == pytest.approx(pwcca(white, y), abs=1e-10)
    assert abs(pwcca(x, y, variant="google") - pwcca(x, y)) > 1e-3


def test_pwcca_weights_come_from_the_smaller_layer():
    x, y = layers(p=12, q=5)
    assert pwcca(x, y) == pytest.approx(pwcca(y[:, ::-1], x[:, ::-1]), abs=1e-10)  # same smaller layer y


# --------------------------------------------------------------------------- input checks, types, back ends

def test_mismatched_datapoints_raise_with_a_transposition_hint():
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match=r"same number of datapoints .*got 100 and 90"):
        cca(rng.normal(size=(100, 4)), rng.normal(size=(90, 3)))
    with pytest.raises(ValueError, match=r"svcca\(x.T, y.T\)"):
        svcca(rng.normal(size=(4, 100)), rng.normal(size=(3, 100)))
    for fn in (pwcca, linear_cka):
        with pytest.raises(ValueError, match="same number of datapoints"):
            fn(rng.normal(size=(100, 4)), rng.normal(size=(99, 4)))


@pytest.mark.parametrize("kwargs, match", [
    ({"keep": 0.0}, "'keep' parameter of svcca"), ({"keep": 1.5}, "'keep'"), ({"keep": True}, "'keep'"),
    ({"rule": "energy"}, "'rule' parameter"), ({"epsilon": -1e-3}, "'epsilon'"), ({"dtype": "int8"}, "'dtype'"),
])
def test_invalid_options_raise(kwargs, match):
    x, y = layers(n=200, p=3, q=3)
    with pytest.raises(ValueError, match=match):
        svcca(x, y, **kwargs)


def test_invalid_arrays_raise():
    x, y = layers(n=200, p=3, q=3)
    with pytest.raises(ValueError, match="2-D"):
        cca(x[:, 0], y)
    with pytest.raises(ValueError, match="2-D"):
        svcca(x.reshape(20, 10, 3), y)
    bad = x.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cca(bad, y)
    with pytest.raises(ValueError, match="at least 2 datapoints"):
        cca(x[:1], y[:1])
    with pytest.raises(ValueError, match="'variant'"):
        pwcca(x, y, variant="paper")


def test_return_types():
    x, y = layers(n=300, p=4, q=6)
    rho = cca(x, y)
    assert rho.dtype == np.float64 and rho.shape == (4,) and np.all(np.diff(rho) <= 0)
    assert np.all((rho >= 0) & (rho <= 1))
    for value in (svcca(x, y), pwcca(x, y), linear_cka(x, y)):
        assert type(value) is float and 0 <= value <= 1
    assert cca(x.tolist(), y.astype(np.float32)).shape == (4,)  # lists and float32 are accepted


def test_float32_is_close_and_torch_matches(route):
    x, y = layers(n=2000, p=20, q=15)
    assert svcca(x, y, dtype="float32") == pytest.approx(svcca(x, y), abs=1e-4)
    assert linear_cka(x, y, dtype=np.float32) == pytest.approx(linear_cka(x, y), abs=1e-5)
    torch = pytest.importorskip("torch")
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    assert svcca(xt, yt) == pytest.approx(svcca(x, y), abs=1e-12)  # tensors are accepted on the numpy path
    assert svcca(x, y, device="cpu") == pytest.approx(svcca(x, y), abs=1e-10)
    np.testing.assert_allclose(cca(xt, yt, device="cpu"), cca(x, y), atol=1e-10)
    assert linear_cka(x, y, device="cpu", dtype=torch.float64) == pytest.approx(linear_cka(x, y), abs=1e-12)
