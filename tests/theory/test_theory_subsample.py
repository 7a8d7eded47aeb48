"""The theory on a subsample of the evaluation points (``ensemble.theory_points``).

Exact where it must be (a walk of whole batches is the full kernel restricted to them; all
N points walked is the full computation; a kernel whose pair means are known is recovered
from any subsample), and within a few stated errors of the full-N value on seeded cases
where it estimates. The real ``ensemble.py`` writes the error beside gamma_theory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.entry_points import run_entry

from igb.theory.nngp import WalkSettings, architecture, predict_gamma, predict_layers
from igb.theory.nngp.kernel import final_kernel, gamma_from_kernel, kernel_means
from igb.theory.nngp.subsample import choose

MLP = {"depth": 10, "width": 256}
BN_PRE = {"placement": "pre", "kind": "batch"}
N, DIM = 400, 50


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, DIM))


@pytest.mark.parametrize(("norm", "batch"), [(BN_PRE, 25), ({"placement": "none"}, 25)])
def test_the_walk_of_whole_batches_is_the_full_kernel_restricted(x, norm, batch) -> None:
    arch = architecture(MLP, norm)
    full = final_kernel(x, arch, batch)
    sub = choose(N, batch, 100, coupled=norm["placement"] != "none", seed=3)
    assert sub.exact and len(sub.index) == 100
    walked = final_kernel(x[sub.index], arch, batch, sub.design)
    np.testing.assert_allclose(walked, full[np.ix_(sub.index, sub.index)], rtol=0, atol=1e-13)


@pytest.mark.parametrize("batch", [25, 400])
def test_every_point_walked_is_the_full_computation_exactly(x, batch) -> None:
    full = predict_gamma(WalkSettings.from_groups(MLP, BN_PRE, batch), x)
    for limit in (N, N + 1):
        same = predict_gamma(WalkSettings.from_groups(MLP, BN_PRE, batch, max_points=limit), x)
        assert (same.gamma, same.gamma_finite) == (full.gamma, full.gamma_finite)
        assert same.points == N and same.stderr == 0.0
    assert full.summary_fields()["gamma_theory_points"] == N


def test_pair_means_of_a_known_kernel_from_any_subsample() -> None:
    """a on the diagonal, b within a batch, c across: mean(K) = (N a + P_in b + P_x c) / N^2
    whatever points are walked (whole batches, or some members of every batch)."""
    n_all, batch, (a, b, c) = 240, 30, (2.0, 0.7, 0.2)
    same_batch = np.arange(n_all)[:, None] // batch == np.arange(n_all)[None, :] // batch
    k = np.where(same_batch, b, c)
    np.fill_diagonal(k, a)
    p_in = 8 * batch * (batch - 1)
    want = (n_all * a + p_in * b + (n_all * (n_all - 1) - p_in) * c) / n_all**2
    assert kernel_means(k) == pytest.approx((a, want), rel=1e-14)
    for points, whole in ((120, True), (240, True), (40, False)):  # 4 of 8 batches; all; some
        sub = choose(n_all, batch, points, coupled=True, seed=1)  # members of each of the 8
        assert sub.exact == whole
        walked = k[np.ix_(sub.index, sub.index)]
        assert kernel_means(walked, sub.design) == pytest.approx((a, want), rel=1e-12)
        assert gamma_from_kernel(walked, sub.design) == pytest.approx(want / (a - want))


@pytest.mark.parametrize(
    ("norm", "batch"),
    [({"placement": "none"}, 25), (BN_PRE, 25), (BN_PRE, 400), (BN_PRE, 150)],
    ids=["random-points", "whole-batches", "one-batch-larger", "batches-in-part"],
)
def test_a_subsample_is_within_a_few_stated_errors_of_the_full_value(x, norm, batch) -> None:
    full = predict_gamma(WalkSettings.from_groups(MLP, norm, batch), x).gamma
    sub = predict_gamma(WalkSettings.from_groups(MLP, norm, batch, max_points=100, seed=0), x)
    assert 100 <= sub.points < N
    assert 0 < sub.stderr < 0.02 * full  # an error that says something
    assert abs(sub.gamma - full) < 3 * sub.stderr, (sub.gamma, full, sub.stderr)
    fields = sub.summary_fields()
    assert fields["gamma_theory_stderr"] == sub.stderr
    assert fields["gamma_theory_points"] == sub.points


@pytest.mark.slow
def test_ensemble_py_states_the_subsample_and_its_error(tmp_path: Path) -> None:
    folder = tmp_path / "ens"
    argv = ["ensemble.theory_points=100", "ensemble.n_inits=4", "ensemble.eval_samples=300",
            "dataset.num_samples=400", "dataset.shape=[16]", "model.depth=3", "model.width=32",
            "ensemble.n_boot=20", "ensemble.progress=false", f"hydra.run.dir={folder}"]  # fmt: skip
    proc = run_entry("ensemble.py", *argv, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["gamma_theory_points"] == 100 and summary["gamma_theory_stderr"] > 0
    line = f"gamma_theory = {summary['gamma_theory']:.4g} +- "
    assert line in proc.stderr + proc.stdout
    assert "a subsample of 100 of the 300 points" in proc.stderr + proc.stdout


@pytest.mark.parametrize("norm", [BN_PRE, {"placement": "none"}])
def test_the_profiles_layer_walk_takes_the_same_subsample(x, norm) -> None:
    """The profile's per-layer theory walks predict_gamma's subsample: its last layer is
    predict_gamma's gamma to the bit; with every point walked, the full per-layer walk."""
    walk = WalkSettings.from_groups(MLP, norm, 25, max_points=100)
    assert list(predict_layers(walk, x).values())[-1] == predict_gamma(walk, x).gamma
    every = WalkSettings.from_groups(MLP, norm, 25, max_points=N)
    assert predict_layers(every, x) == predict_layers(WalkSettings.from_groups(MLP, norm, 25), x)
