"""Mean-field readout (igb.theory.meanfield) and the kernel walk with weight and bias
variances: closed forms, fixed-point equations, and both against computations written here
(quadrature, Monte-Carlo of real networks at width 512)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers.model_configs import mlp_config

from igb.launch.meanfield_cli import main as meanfield_main
from igb.nn.build import build_model
from igb.theory.meanfield import Declined, config_readout, edge_of_chaos, fixed_point
from igb.theory.meanfield.units import Unit
from igb.theory.nngp import WalkSettings, architecture, predict_gamma
from igb.theory.nngp.kernel import gamma_from_kernel, layer_kernels

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

Z, W = np.polynomial.hermite_e.hermegauss(160)
W = W / np.sqrt(2 * np.pi)


def normal_mlp(activation: str, weight_var: float, bias_var: float, **extra) -> dict:
    return {**mlp_config(3, 64, activation, "normal"), "weight_var": weight_var,
            "bias_var": bias_var, **extra}  # fmt: skip


def inputs(n: int = 40, d: int = 12, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x + 0.8  # a shared offset: correlated inputs, gamma well above its floor


# -- closed forms -------------------------------------------------------------------------
@pytest.mark.parametrize("bias_var", [0.0, 0.05, 0.3])
def test_relu_edge_is_two_for_any_bias(bias_var: float) -> None:
    assert edge_of_chaos("relu", bias_var) == pytest.approx(2.0, rel=1e-12)


def test_tanh_edge_without_bias_is_one() -> None:
    assert edge_of_chaos("tanh", 0.0) == pytest.approx(1.0, abs=1e-9)
    assert fixed_point("tanh", 1.0, 0.0).phase == "edge"
    assert fixed_point("tanh", 0.9, 0.0).phase == "ordered"
    assert fixed_point("tanh", 1.1, 0.0).phase == "chaotic"


def test_pooled_relu_edges_without_bias() -> None:
    assert edge_of_chaos("relu", 0.0, ("max", 2)) == pytest.approx(
        4 * math.pi / (3 * math.pi + 2), rel=1e-10
    )
    assert edge_of_chaos("relu", 0.0, ("avg", 2)) == pytest.approx(
        4 * math.pi / (math.pi + 1), rel=1e-10
    )


def test_relu_gamma_without_bias_does_not_depend_on_weight_var() -> None:
    """A homogeneous network without bias: the weight scale multiplies every logit."""
    x = inputs()
    gammas = [
        predict_gamma(
            WalkSettings.from_groups(normal_mlp("relu", w, 0.0), {"placement": "none"}, 40), x
        ).gamma
        for w in (0.5, 2.0, 4.0)
    ]
    assert gammas[0] > 0.1
    assert gammas == pytest.approx([gammas[0]] * 3, rel=1e-10)
    c_stars = {fixed_point("relu", w, 0.0).c_star for w in (0.5, 2.0, 4.0)}
    assert c_stars == {1.0}


@pytest.mark.parametrize(
    ("activation", "w", "b"), [("tanh", 2.0, 0.05), ("tanh", 4.0, 0.3), ("tanh", 1.5, 0.3),
                               ("relu", 1.5, 0.1)]
)  # fmt: skip
def test_q_star_solves_its_fixed_point_equation(activation: str, w: float, b: float) -> None:
    r = fixed_point(activation, w, b)
    phi = np.tanh if activation == "tanh" else (lambda u: np.maximum(u, 0))
    # Gauss-Hermite here (the readout uses a Gauss-Legendre rule split at 0)
    assert r.q_star == pytest.approx(w * (phi(np.sqrt(r.q_star) * Z) ** 2 @ W) + b, rel=1e-7)
    if activation == "relu":
        assert r.q_star == pytest.approx(b / (1 - w / 2), rel=1e-12)


def test_c_star_solves_its_fixed_point_equation_beyond_the_edge() -> None:
    r = fixed_point("tanh", 4.0, 0.3)
    assert r.phase == "chaotic" and 0 < r.c_star < 1
    q, c = r.q_star, r.c_star
    u = np.sqrt(q) * Z[:, None]
    v = np.sqrt(q) * (c * Z[:, None] + np.sqrt(1 - c * c) * Z[None, :])
    pair = np.tanh(u) * np.tanh(v)
    assert c * q == pytest.approx(4.0 * (W @ pair @ W) + 0.3, rel=1e-7)
    assert r.gamma_deep == pytest.approx(c / (1 - c))
    assert r.chi1 == pytest.approx(4.0 * ((1 - np.tanh(np.sqrt(q) * Z) ** 2) ** 2 @ W))


def test_ordered_phase_and_edge_have_infinite_deep_gamma() -> None:
    assert math.isinf(fixed_point("tanh", 1.2, 0.3).gamma_deep)  # ordered with a bias
    assert math.isinf(fixed_point("tanh", edge_of_chaos("tanh", 0.05), 0.05).gamma_deep)
    assert math.isinf(fixed_point("relu", 1.0, 0.0).gamma_deep)
    for w in (0.5, 1.0):  # tanh without bias: q* = 0, a linear network in the limit
        r = fixed_point("tanh", w, 0.0)
        assert r.q_star == 0 and math.isnan(r.c_star) and math.isnan(r.gamma_deep)
        assert r.as_dict()["c_star"] is None
    assert fixed_point("tanh", 3.0, 0.0).c_star == pytest.approx(0.0, abs=1e-12)  # odd map


def test_pooled_unit_moments_against_monte_carlo() -> None:
    rng = np.random.default_rng(1)
    z = rng.standard_normal((400_000, 2))
    w_ = rng.standard_normal((400_000, 2))
    c, q = 0.6, 1.3
    a, b = np.sqrt(q) * z, np.sqrt(q) * (c * z + np.sqrt(1 - c * c) * w_)
    for pool, reduce in (("max", lambda t: t.max(1)), ("avg", lambda t: t.mean(1))):
        unit = Unit("tanh", pool, 2)
        want = np.mean(reduce(np.tanh(a)) * reduce(np.tanh(b)))
        se = np.std(reduce(np.tanh(a)) * reduce(np.tanh(b))) / np.sqrt(z.shape[0])
        assert float(unit.pair(q, c)) == pytest.approx(want, abs=5 * se)


# -- the kernel walk with biases -------------------------------------------------------------
def test_pair_map_with_bias_against_2d_quadrature() -> None:
    """The walk's first block, Linear (weight_var, bias_var) then tanh, on two points."""
    x = np.array([[1.0, 0.5, -0.3], [0.2, 1.1, 0.4]])
    w, b = 1.7, 0.3
    arch = architecture(normal_mlp("tanh", w, b, depth=1), {"placement": "none"})
    (_, q1), (_, q2) = list(layer_kernels(x, arch, 2))
    k = w * x @ x.T / 3 + b
    assert q1 == pytest.approx(k, rel=1e-12)
    s1, s2 = np.sqrt(k[0, 0]), np.sqrt(k[1, 1])
    rho = k[0, 1] / (s1 * s2)
    u = s1 * Z[:, None]
    v = s2 * (rho * Z[:, None] + np.sqrt(1 - rho * rho) * Z[None, :])
    assert q2[0, 1] == pytest.approx(W @ (np.tanh(u) * np.tanh(v)) @ W, rel=1e-8)
    assert q2[0, 0] == pytest.approx(np.tanh(s1 * Z) ** 2 @ W, rel=1e-8)


def test_walk_with_bias_against_monte_carlo_at_width_512() -> None:
    """Real networks (build_model, model.init=normal) at width 512: the mean over seeds of
    the last block's empirical kernel, within 4 standard errors (plus O(1/width))."""
    x = inputs(6, 12)
    model_cfg = {**normal_mlp("tanh", 1.8, 0.2, depth=3), "width": 512}
    norm = {"placement": "none"}
    want = list(layer_kernels(x, architecture(model_cfg, norm), 6))[-1][1]
    kernels = []
    for seed in range(24):
        model = build_model(model_cfg, norm, (12,), 2, seed)
        with torch.no_grad():
            h = model.blocks(torch.from_numpy(x).float()).double().numpy()
        kernels.append(h @ h.T / h.shape[1])
    kernels = np.array(kernels)
    mean, se = kernels.mean(0), kernels.std(0, ddof=1) / np.sqrt(len(kernels))
    assert np.abs(mean - want).max() > 0  # a real comparison
    assert np.all(np.abs(mean - want) <= 4 * se + 2.0 / 512 * np.abs(want))


def test_head_bias_adds_its_offset_to_gamma() -> None:
    k = np.array([[2.0, 0.5, 0.2], [0.5, 1.5, 0.1], [0.2, 0.1, 1.0]])
    base = gamma_from_kernel(k)
    mean, diag = k.mean(), np.diag(k).mean()
    assert gamma_from_kernel(k, offset=0.3) == pytest.approx((mean + 0.3) / (diag - mean))
    assert gamma_from_kernel(k, offset=0.3) > base
    x = inputs()
    zero = predict_gamma(
        WalkSettings.from_groups(normal_mlp("tanh", 1.5, 0.1, head_bias_var=0.0), {}, 40), x
    ).gamma
    head = predict_gamma(
        WalkSettings.from_groups(normal_mlp("tanh", 1.5, 0.1, head_bias_var=0.6), {}, 40), x
    ).gamma
    assert head > zero


def test_measured_gamma_with_biases_near_the_prediction() -> None:
    """An ensemble of real networks with biases: its gamma brackets the walk's."""
    from igb.metrics import gamma_bootstrap_ci
    from igb.metrics.gamma import gamma_from_moments

    x = inputs(40, 12)
    model_cfg = {**normal_mlp("tanh", 2.0, 0.2, depth=3), "width": 512}
    pred = predict_gamma(
        WalkSettings.from_groups(model_cfg, {"placement": "none"}, 40, num_classes=2), x
    )
    mus, s2s = [], []
    for seed in range(160):
        model = build_model(model_cfg, {"placement": "none"}, (12,), 2, seed)
        with torch.no_grad():
            logits = model(torch.from_numpy(x).float()).double()
        d = logits - logits.mean(1, keepdim=True)
        mus.append(d.mean(0).numpy())
        s2s.append(d.var(0, unbiased=False).numpy())
    mu, s2 = np.array(mus), np.array(s2s)
    lo, hi = gamma_bootstrap_ci(mu, s2, n_boot=400, seed=0)
    assert lo <= pred.gamma_finite <= hi or lo <= pred.gamma <= hi
    assert gamma_from_moments(mu, s2) == pytest.approx(pred.gamma, rel=0.5)


# -- coverage and bad values -----------------------------------------------------------------
def test_readout_declines_with_reasons() -> None:
    with pytest.raises(Declined, match="BatchNorm"):
        fixed_point("tanh", 1.0, 0.0, norm="batch-pre")
    with pytest.raises(Declined, match="groups of 2"):
        fixed_point("relu", 1.0, 0.0, ("max", 4))
    with pytest.raises(Declined, match="monotone"):
        fixed_point("gelu", 1.0, 0.0, ("max", 2))
    with pytest.raises(Declined, match="bias_var"):
        fixed_point("tanh", 1.0, -0.1)
    block = config_readout({"_target_": "igb.nn.cnn.CNN", "name": "cnn"}, {})
    assert "model=mlp only" in block["reason"]
    maxpool = WalkSettings.from_groups(normal_mlp("relu", 2.0, 0.0, unit_pool="max"), {}, 40)
    walk = predict_gamma(maxpool, inputs())
    assert walk.gamma is None and "unit_pool=max" in walk.reason


def test_avg_pool_walk_against_monte_carlo() -> None:
    x = inputs(6, 12)
    model_cfg = {**normal_mlp("relu", 2.5, 0.1, depth=2, unit_pool="avg", unit_pool_size=2),
                 "width": 512}  # fmt: skip
    want = list(layer_kernels(x, architecture(model_cfg, {}), 6))[-1][1]
    kernels = []
    for seed in range(24):
        model = build_model(model_cfg, {"placement": "none"}, (12,), 2, seed)
        with torch.no_grad():
            h = model.blocks(torch.from_numpy(x).float()).double().numpy()
        assert h.shape[1] == 256
        kernels.append(h @ h.T / h.shape[1])
    kernels = np.array(kernels)
    mean, se = kernels.mean(0), kernels.std(0, ddof=1) / np.sqrt(len(kernels))
    assert np.all(np.abs(mean - want) <= 4 * se + 2.0 / 256 * np.abs(want))


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["model.init=normal", "model.weight_var=-1"], "model.weight_var=-1"),
        (["model.bias_var=-0.5"], "model.bias_var=-0.5"),
        (["model.unit_pool=max", "model.unit_pool_size=3"], "model.unit_pool_size=3"),
        (["model.unit_pool=mean"], "model.unit_pool"),
        (["model.init=normal"], "model.weight_var"),
        (["model.unit_pool=max", "model.unit_pool_size=4", "--phase-diagram"], "unit_pool=max"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    argv: list[str], words: str, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = meanfield_main(["model.width=16", "ensemble.eval_samples=32", *argv,
                           "--out", str(tmp_path / "pd.png")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and words in err
    assert not (tmp_path / "pd.png").exists()


def test_phase_diagram_draws_panels_and_measured_points(tmp_path, capsys) -> None:
    import json

    job = tmp_path / "sweep" / "0"
    job.mkdir(parents=True)
    summary = {"gamma": 0.4, "choices": {"norm_placement": "none", "norm_kind": "none",
               "activation": "tanh", "depth": 2},
               "meanfield": {"weight_var": 2.0, "bias_var": 0.05}}  # fmt: skip
    (job / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "pd.png"
    code = meanfield_main([
        "model.activation=tanh", "model.depth=2", "model.width=16", "ensemble.eval_samples=40",
        "norm=none,post", "norm.kind=layer", "--phase-diagram", "--out", str(out),
        "--weight-var", "0.5:3:4", "--bias-var", "0:0.2:3", "--points", "16",
        "--sweep", str(tmp_path / "sweep"),
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "2 panel(s), 1 measured point(s)" in capsys.readouterr().out
    assert out.stat().st_size > 10_000


def test_readout_table(capsys) -> None:
    code = meanfield_main(["model.activation=tanh", "model.init=normal",
                           "model.weight_var=1.0,4.0", "model.bias_var=0.3"])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert "q_star" in out[0] and "edge_weight_var" in out[0]
    assert "ordered" in out[1] and "chaotic" in out[2]
    assert "2.505" in out[1]  # the edge at bias_var 0.3


def test_summary_block_reads_the_init_and_norm() -> None:
    """The ``meanfield`` block of summary.json: Kaiming's ReLU MLP sits at the edge."""
    block = config_readout(mlp_config(3, 64, "relu"), {"placement": "none"})
    assert block["weight_var"] == 2.0 and block["phase"] == "edge"
    assert block["edge_weight_var"] == pytest.approx(2.0)
    tanh = config_readout(normal_mlp("tanh", 4.0, 0.3), {"placement": "post", "kind": "layer"})
    assert tanh["norm"] == "layer-post" and tanh["phase"] == "chaotic"
    batch = config_readout(normal_mlp("tanh", 4.0, 0.3), {"placement": "pre", "kind": "batch"})
    assert "BatchNorm" in batch["reason"]
    import json

    json.dumps(config_readout(normal_mlp("tanh", 0.5, 0.0), {}), allow_nan=False)  # JSON-ready
