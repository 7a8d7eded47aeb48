"""Infinite-width gamma (igb.theory.nngp): kernels against independent computations, gamma on
hand-made kernels, coverage (None with a reason, never a number), the theory-only command,
and prediction against measured ensembles at width 1024 for every placement."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from helpers.model_configs import mlp_config
from scipy import special

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.launch import ensemble_job
from igb.launch.theory_cli import main as nngp_main
from igb.metrics import gamma_bootstrap_ci
from igb.nn.norm_act import ACTIVATIONS
from igb.theory.nngp import WalkSettings, predict_gamma
from igb.theory.nngp.activations import activation_kernel, mehler_kernel, relu_kernel
from igb.theory.nngp.kernel import Units, batch_norm, gamma_from_kernel, layer_norm, rms_norm
from multirun_analysis.figures.gamma import theory_curve

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")


def mlp(depth: int, activation: str = "relu", width: int = 1024, init="kaiming_normal") -> dict:
    return mlp_config(depth, width, activation, init)


def random_kernel(n: int = 6, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 4))
    x[0] *= 2.5  # unequal variances: the general case of every formula
    x[1] = x[2] + 0.01  # a nearly perfectly correlated pair
    return x @ x.T / 2


# -- kernels against independent computations -------------------------------------------------
def test_relu_closed_form_equals_its_hermite_series():
    k = random_kernel()
    closed = relu_kernel(k)
    series = mehler_kernel(k, torch.nn.ReLU())
    # the slowest series there is (a kink): truncated at MAX_ORDER orders, closed by the
    # tail term; the error stays within the bound the series reports
    assert 0 < series.error_bound < 1e-3
    np.testing.assert_allclose(series.q, closed.q, rtol=0, atol=series.error_bound)
    np.testing.assert_allclose(series.m, closed.m, rtol=0, atol=1e-12)


def brute_force(k2: np.ndarray, phi, nodes: int = 400) -> float:
    """E[phi(u) phi(v)], (u, v) ~ N(0, k2), on a tensor Gauss-Legendre grid over z1, z2."""
    z, w = np.polynomial.legendre.leggauss(nodes)
    z, w = z * 12, w * 12 * np.exp(-((z * 12) ** 2) / 2) / np.sqrt(2 * np.pi)
    a = np.sqrt(k2[0, 0])
    rho = k2[0, 1] / np.sqrt(k2[0, 0] * k2[1, 1])
    b = np.sqrt(k2[1, 1])
    z1, z2 = z[:, None], z[None, :]
    u, v = a * z1, b * (rho * z1 + np.sqrt(1 - rho**2) * z2)
    return float(np.einsum("i,j,ij->", w, w, phi(u) * phi(v)))


SMOOTH = {
    "gelu": lambda x: x * special.ndtr(x),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "silu": lambda x: x * special.expit(x),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_smooth_activation_kernel_matches_2d_quadrature(name):
    k = random_kernel()
    got = activation_kernel(name, k)
    for i, j in [(0, 1), (1, 2), (3, 4), (0, 5)]:
        k2 = k[np.ix_([i, j], [i, j])]
        want = brute_force(k2, SMOOTH[name])
        # elu's kink in the second derivative makes its series slow: within its own bound
        assert abs(got.q[i, j] - want) <= 1e-6 * abs(want) + got.error_bound, (want, got.q)
    with torch.no_grad():  # the network's own module, on a fine 1-D grid: the mean
        z = torch.linspace(-12, 12, 200001, dtype=torch.float64)
        dens = torch.exp(-(z**2) / 2) / np.sqrt(2 * np.pi) * (z[1] - z[0])
        m0 = float((ACTIVATIONS[name]()(np.sqrt(k[0, 0]) * z) * dens).sum())
    assert got.m[0] == pytest.approx(m0, rel=1e-6)


def test_leaky_relu_is_relu_plus_linear_part():
    k = random_kernel()
    got = activation_kernel("leaky_relu", k)
    series = mehler_kernel(k, torch.nn.LeakyReLU())  # independent: the series, no formula
    np.testing.assert_allclose(got.q, series.q, atol=series.error_bound)


# -- norms and gamma on hand-made kernels -------------------------------------------------------
def test_gamma_of_offset_plus_noise_kernel():
    """K = a 11^T + b I: mean = a + b/N, mean diag = a + b, so gamma = (a + b/N) / (b - b/N)."""
    n, a, b = 50, 0.3, 2.0
    k = a * np.ones((n, n)) + b * np.eye(n)
    assert gamma_from_kernel(k) == pytest.approx((a + b / n) / (b - b / n), rel=1e-12)
    with pytest.raises(ValueError, match="same logits"):
        gamma_from_kernel(np.ones((4, 4)))


def test_batch_norm_centres_each_batch_with_its_own_mean():
    x = np.random.default_rng(1).standard_normal((7, 5)) + 3.0  # a large shared offset
    k = x @ x.T
    slices = [slice(0, 4), slice(4, 7)]
    out = batch_norm(Units(k=k, m=x.mean(axis=1)), slices, eps=0.0)
    centred = np.concatenate([x[s] - x[s].mean(axis=0) for s in slices])  # per unit, per batch
    kc = centred @ centred.T
    var = np.concatenate([np.full(s.stop - s.start, np.diag(kc)[s].mean()) for s in slices])
    np.testing.assert_allclose(out.k, kc / np.sqrt(np.outer(var, var)), atol=1e-12)
    for s in slices:
        np.testing.assert_allclose(out.k[s].sum(axis=0), 0, atol=1e-12)


def test_layer_and_rms_norm_maps_are_exact_on_empirical_moments():
    """With K and m the moments over n given units, the maps are exactly the kernels of
    the normalised units (the per-sample feature mean and variance are K and m's)."""
    z = np.random.default_rng(2).standard_normal((5, 40)) * 2.0 + 1.5  # offset units
    units = Units(k=z @ z.T / 40, m=z.mean(axis=1))
    eps = 1e-3
    ln = (z - z.mean(axis=1, keepdims=True)) / np.sqrt(z.var(axis=1, keepdims=True) + eps)
    np.testing.assert_allclose(layer_norm(units, eps).k, ln @ ln.T / 40, atol=1e-12)
    rms = z / np.sqrt((z * z).mean(axis=1, keepdims=True) + eps)
    got = rms_norm(units, eps)
    np.testing.assert_allclose(got.k, rms @ rms.T / 40, atol=1e-12)
    np.testing.assert_allclose(got.m, rms.mean(axis=1), atol=1e-12)


# -- coverage: None with the reason, never a number -------------------------------------------
@pytest.mark.parametrize(
    "model, norm, reason",
    [
        ({"_target_": "igb.nn.cnn.CNN", "name": "cnn"}, {"placement": "none"}, "model=mlp only"),
        (mlp(2), {"placement": "pre", "kind": "instance"}, "kind 'instance'"),
        (mlp(2, activation="softplus"), {"placement": "none"}, "activation 'softplus'"),
        (mlp(2, init="orthogonal"), {"placement": "none"}, "init 'orthogonal'"),
        (mlp(2), {"placement": "post", "kind": "layer", "center": True}, "norm.center"),
        ({**mlp(2), "dropout": 0.1}, {"placement": "none"}, "model.dropout"),
        (mlp(2, width=30), {"placement": "pre", "kind": "group", "groups": 8}, "does not divide"),
    ],
)
def test_uncovered_configurations_give_none_and_a_reason(model, norm, reason):
    pred = predict_gamma(WalkSettings.from_groups(model, norm, 5), torch.randn(10, 3))
    assert pred.gamma is None and pred.regime is None
    assert reason in pred.reason


def test_theory_command_prints_the_grid_and_rejects_bad_keys(capsys):
    assert nngp_main(["model.depth=1,4", "norm=none,post", "ensemble.eval_samples=40"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["model", "depth", "width"]
    assert lines[0].split()[-5:] == ["points", "gamma_theory", "gamma_finite", "regime", "time_s"]
    assert len(lines) == 5 and sum("batch-post" in line for line in lines) == 2
    assert "±" not in "".join(lines)  # 40 points: every one walked, no sampling error
    # past ensemble.theory_points a subsample is walked and its error stated
    argv = ["model.depth=2", "norm=none", "ensemble.eval_samples=300", "ensemble.theory_points=100"]
    assert nngp_main(argv) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    cells = dict(zip(header.split(), row.split()))
    assert cells["N"] == "300" and 100 <= int(cells["points"]) < 300
    assert row.split()[row.split().index(cells["gamma_theory"]) + 1] == "±"
    assert nngp_main(["model.depthh=3"]) == 2
    assert "model.depthh" in capsys.readouterr().err


# -- the ensemble job: summary.json and histogram.png carry the prediction ------------------
JOB = [
    "model.depth=3",
    "model.width=16",
    "dataset.num_samples=120",
    "dataset.shape=[10]",
    "ensemble.n_inits=6",
    "ensemble.eval_samples=80",
    "ensemble.batch_size=40",
    "ensemble.n_boot=50",
    "ensemble.progress=false",
]


@pytest.mark.parametrize("model, norm", [("mlp", "pre"), ("cnn", "post")])
def test_ensemble_summary_carries_gamma_theory(make_cfg, model, norm):
    cfg = make_cfg(*JOB, f"model={model}", f"norm={norm}", name="ensemble")
    if model == "cnn":
        cfg.dataset.shape = [3, 4, 4]
    ensemble_job.run(cfg)
    out = Path(cfg.paths.output_dir)
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "histogram.png").stat().st_size > 0
    if model == "cnn":
        assert summary["gamma_theory"] is None
        assert "model=mlp only" in summary["gamma_theory_reason"]
        return
    x, _ = ensemble_job.eval_inputs(cfg)
    want = predict_gamma(WalkSettings.from_groups(cfg.model, cfg.norm, 40), x)
    assert summary["gamma_theory"] == pytest.approx(want.gamma, rel=1e-12)
    assert summary["gamma_theory_regime"] == want.regime
    assert "gamma_theory_reason" not in summary
    # and at the network's width (igb.theory.nngp.finite): width 16 is far from infinite
    assert summary["gamma_theory_finite"] == pytest.approx(want.gamma_finite, rel=1e-9)
    assert summary["gamma_theory_finite_regime"] == want.regime_finite
    assert summary["gamma_theory_finite"] != pytest.approx(want.gamma, rel=1e-3)


# -- prediction against measurement at width 1024 ---------------------------------------------
N_POINTS, BATCH, N_CLASSES = 96, 48, 32
N_INITS = 24
#: tolerance of the comparison: the bootstrap interval of the measured gamma, widened by
#: REL_TOL and by an absolute depth / (4 width). REL_TOL covers the finite-width and
#: finite-batch corrections (relative order depth/width and 1/batch) and what the
#: bootstrap cannot see: every configuration uses the same 24 seeds, and with them the
#: ReLU-like networks at depth 5 measure 10-14% below the prediction (other seeds and
#: points measure above it: docs/theory.md). The absolute term is the residual offset
#: that LayerNorm after the activation leaves at finite width (measured: about
#: 0.18 depth / width, e.g. 0.0016 at width 1024, depth 10).
REL_TOL = 0.15
NORMS = {
    "none": {"placement": "none", "kind": "batch"},
    "batch-pre": {"placement": "pre", "kind": "batch"},
    "batch-post": {"placement": "post", "kind": "batch"},
    "layer-pre": {"placement": "pre", "kind": "layer"},
    "layer-post": {"placement": "post", "kind": "layer"},
    "rms-pre": {"placement": "pre", "kind": "rms"},
}


@pytest.fixture(scope="module")
def eval_inputs() -> torch.Tensor:
    return torch.randn(N_POINTS, 64, generator=torch.Generator().manual_seed(0))


def agrees(pred: float, lo: float, hi: float, depth: int, width: int) -> bool:
    slack = depth / (4 * width)
    return lo / (1 + REL_TOL) - slack <= pred <= hi * (1 + REL_TOL) + slack


@pytest.mark.parametrize("depth", [1, 5, 10])
@pytest.mark.parametrize("norm", list(NORMS))
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_prediction_matches_measurement_at_width_1024(activation, norm, depth, eval_inputs):
    model, norm_cfg = mlp(depth, activation), NORMS[norm]
    pred = predict_gamma(WalkSettings.from_groups(model, norm_cfg, BATCH), eval_inputs)
    n_inits = 3 if norm == "batch-post" else N_INITS
    plan = EvaluationPlan(model, norm_cfg, N_CLASSES, batch_size=BATCH, workers=2)
    measured = evaluate_ensemble(plan, eval_inputs, range(n_inits))
    swap = {"pre": "post", "post": "pre"}.get(norm_cfg["placement"])
    swapped = swap and predict_gamma(
        WalkSettings.from_groups(model, {**norm_cfg, "placement": swap}, BATCH), eval_inputs
    )
    if norm == "batch-post":  # exactly neutral: every batch mean of every unit is removed
        assert pred.gamma < 1e-12 and measured.gamma < 1e-12
        assert not swapped.gamma < 1e-3
        return
    lo, hi = gamma_bootstrap_ci(measured.mu, measured.s2, n_boot=500)
    assert agrees(pred.gamma, lo, hi, depth, 1024), (pred.gamma, measured.gamma, lo, hi)
    if swapped is None:
        return
    if norm == "rms-pre" and (activation == "relu" or depth == 1):
        # RMSNorm only rescales each point; ReLU is positively homogeneous, so pre and post
        # are the same function up to one constant factor: nothing can tell them apart.
        # (gelu at depth 1: the two differ by 27%, too close for the tolerance.)
        if activation == "relu":
            assert swapped.gamma == pytest.approx(pred.gamma, rel=1e-6)
        return
    assert not agrees(swapped.gamma, lo, hi, depth, 1024), (swapped.gamma, lo, hi)


def test_gamma_vs_depth_draws_the_predicted_curve_where_covered():
    fig, ax = plt.subplots()
    sel = pd.DataFrame({"depth": [1, 1, 5], "gamma_theory": [0.4, 0.4, 2.0]})
    theory_curve(ax, sel, "layer-pre", floor=1e-6)
    np.testing.assert_allclose(ax.lines[-1].get_xydata(), [[1, 0.4], [5, 2.0]])
    uncovered = pd.DataFrame({"depth": [1, 5], "gamma_theory": [None, None]})
    theory_curve(ax, uncovered, "layer-pre", floor=1e-6)
    assert len(ax.lines) == 1
    plt.close(fig)
