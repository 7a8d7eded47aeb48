"""Finite-width gamma (igb.theory.nngp.finite): its closed-form pieces on hand-made inputs,
its infinite-width limit against the exact kernel walk, a law of ReLU networks it must
keep, and narrow networks where it falls inside the measured interval while the
infinite-width value is rejected."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.model_configs import mlp_config

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.metrics import gamma_bootstrap_ci
from igb.theory.nngp import WalkSettings, architecture, predict_gamma
from igb.theory.nngp.finite import (
    Correction,
    PairWalk,
    correction,
    fourth_moments,
    gamma_with_correction,
    sigma_points,
)
from igb.theory.nngp.kernel import final_kernel

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")


# -- closed-form pieces on hand-made inputs ---------------------------------------------------
def test_gamma_with_correction_of_offset_plus_noise_kernel():
    """K = a 11^T + b I shifted by (diag d, off o) is a' 11^T + b' I with a' = a + o,
    b' = b + d - o: gamma = (a' + b'/N) / (b' - b'/N)."""
    n, a, b, d, o = 40, 0.3, 2.0, 0.25, 0.1
    k = a * np.ones((n, n)) + b * np.eye(n)
    a2, b2 = a + o, b + d - o
    want = (a2 + b2 / n) / (b2 - b2 / n)
    assert gamma_with_correction(k, Correction(diag=d, off=o)) == pytest.approx(want, rel=1e-12)


def test_fourth_moments_of_identity_are_wick_exact():
    """phi = identity: Cov(u^2, v^2) = 2 k12^2, Cov(u^2, uv) = 2 k11 k12, Var(u) = k11 (Wick);
    Gauss-Hermite is exact on these polynomials."""
    k11, k22, k12 = np.array([2.0]), np.array([0.5]), np.array([-0.6])
    cov = fourth_moments("identity", k11, k22, k12)[0]  # f = (u^2, v^2, uv, u, v)
    assert cov[0, 1] == pytest.approx(2 * 0.36, rel=1e-10)
    assert cov[0, 2] == pytest.approx(2 * 2.0 * -0.6, rel=1e-10)
    assert cov[2, 2] == pytest.approx(2.0 * 0.5 + 0.36, rel=1e-10)
    assert cov[3, 3] == pytest.approx(2.0, rel=1e-10) and cov[0, 3] == pytest.approx(0, abs=1e-12)


def test_fourth_moments_of_relu_match_the_degree_two_arc_cosine_kernel():
    """E[relu(u)^2 relu(v)^2] = s1^2 s2^2 J2(t) / (2 pi), J2 = 3 sin t cos t + (pi - t)(1 +
    2 cos^2 t), t = arccos rho (Cho and Saul); E relu^2 = s^2 / 2."""
    s1, s2, rho = 1.3, 0.7, 0.35
    t = np.arccos(rho)
    j2 = 3 * np.sin(t) * np.cos(t) + (np.pi - t) * (1 + 2 * np.cos(t) ** 2)
    want = s1**2 * s2**2 * j2 / (2 * np.pi) - (s1**2 / 2) * (s2**2 / 2)
    cov = fourth_moments("relu", np.array([s1**2]), np.array([s2**2]), np.array([rho * s1 * s2]))
    assert cov[0, 0, 1] == pytest.approx(want, rel=2e-3)  # the kink: quadrature, not exact
    assert cov[0, 0, 0] == pytest.approx(5 * s1**4 / 4, rel=2e-3)  # 3/2 - 1/4


def test_sigma_points_carry_mean_and_covariance_exactly():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 3))
    cov = a @ a.transpose(0, 2, 1)
    mean = rng.standard_normal((2, 3))
    pts, w = sigma_points(mean, cov)
    np.testing.assert_allclose(np.einsum("k,pkd->pd", w, pts), mean, atol=1e-12)
    dev = pts - mean[:, None]
    np.testing.assert_allclose(np.einsum("k,pki,pkj->pij", w, dev, dev), cov, atol=1e-12)


# -- the infinite-width limit of the pair walk is the exact kernel walk ---------------------------
@pytest.mark.parametrize(
    "norm", [{"placement": "none"}, {"placement": "post", "kind": "layer"},
             {"placement": "pre", "kind": "rms"}, {"placement": "post", "kind": "rms"}],
)  # fmt: skip
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_pair_walk_at_infinite_width_is_the_kernel_walk(activation, norm):
    """Two points with norm q0 and correlation rho: the pair chain with no fluctuations
    equals :func:`final_kernel` on those two points (per-sample norms: pairs are closed)."""
    q0, rho, d = 1.7, 0.3, 8
    x = np.zeros((2, d))
    x[0, 0] = np.sqrt(q0 * d)
    x[1, :2] = np.sqrt(q0 * d) * np.array([rho, np.sqrt(1 - rho**2)])
    arch = architecture(mlp_config(4, 64, activation), norm)
    k = final_kernel(x, arch, batch_size=2)
    diag, off = PairWalk(arch, 2, np.inf).run(q0, np.array([rho]), d)
    assert diag == pytest.approx(k[0, 0], rel=1e-9)
    assert off[0] == pytest.approx(k[0, 1], rel=1e-9)


def test_relu_without_norm_keeps_the_expected_diagonal_at_any_width():
    """E[relu(z)^2] = Var(z) / 2 exactly and Kaiming's gain is 2: the expected squared norm of
    a point is the same at every width and depth; only its spread grows (log-normal, about
    5 depth / width in log), which the sigma points carry up to their fourth-order error:
    ``E e^X`` of a Gaussian X with variance v is read as ``2/3 + cosh(sqrt(3 v)) / 3`` times
    ``e^(E X)`` instead of ``e^(v / 2)``, 2% low at v = 1.6 (depth 10, width 32)."""
    x = torch.randn(20, 16, generator=torch.Generator().manual_seed(0))
    q = float((x * x).mean())
    for depth, tol in ((3, 0.002), (10, 0.03)):
        arch = architecture(mlp_config(depth, 32, "relu"), {"placement": "none"})
        assert abs(correction(x.numpy(), arch, 20).diag) < tol * q


# -- narrow networks: the finite-width value is measured, the infinite-width one rejected ---------
N_POINTS, N_CLASSES, N_INITS = 128, 10, 96
#: the measured interval is widened by REL_TOL (as the width-1024 comparison widens it)
REL_TOL = 0.15


@pytest.fixture(scope="module")
def eval_inputs() -> torch.Tensor:
    return torch.randn(N_POINTS, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "activation, norm, depth, width",
    [
        ("relu", {"placement": "none"}, 10, 32),  # measured ~3.4, infinite width 6.7
        ("relu", {"placement": "post", "kind": "layer"}, 5, 32),  # ~0.04 against ~0.01
        ("gelu", {"placement": "none"}, 10, 32),  # ~0.7 against 1.6
        ("relu", {"placement": "post", "kind": "layer"}, 10, 64),  # ~0.03 against 0.003
    ],
)
def test_finite_width_prediction_is_measured_where_infinite_width_is_rejected(
    activation, norm, depth, width, eval_inputs
):
    model = mlp_config(depth, width, activation)
    pred = predict_gamma(WalkSettings.from_groups(model, norm, N_POINTS), eval_inputs)
    plan = EvaluationPlan(model, norm, N_CLASSES, batch_size=N_POINTS, workers=2)
    measured = evaluate_ensemble(plan, eval_inputs, range(N_INITS))
    lo, hi = gamma_bootstrap_ci(measured.mu, measured.s2, n_boot=500)
    lo, hi = lo / (1 + REL_TOL), hi * (1 + REL_TOL)
    assert lo <= pred.gamma_finite <= hi, (pred.gamma_finite, measured.gamma, lo, hi)
    assert not lo <= pred.gamma <= hi, (pred.gamma, measured.gamma, lo, hi)
    assert pred.predicted_regime == pred.regime_finite


def test_beyond_the_expansion_there_is_no_finite_width_value_but_a_reason():
    """tanh at depth 20, width 16: correlations spread by more than MAX_VAR_RHO, so the
    walk declines (null + reason in summary.json) and the regime stays the infinite one."""
    x = torch.randn(40, 16, generator=torch.Generator().manual_seed(2))
    pred = predict_gamma(
        WalkSettings.from_groups(mlp_config(20, 16, "tanh"), {"placement": "none"}, 40), x
    )
    assert pred.gamma is not None and pred.gamma_finite is None
    assert "beyond the leading order" in pred.finite_reason
    assert pred.predicted_regime == pred.regime
    fields = pred.summary_fields()
    assert fields["gamma_theory_finite"] is None and "gamma_theory_finite_reason" in fields
