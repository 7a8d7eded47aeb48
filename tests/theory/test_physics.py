"""Physics: where the norm sits decides the regime of a ReLU MLP at initialization.

Ensembles of a depth-10, width-100 MLP (kaiming_normal weights, zero biases) on centred
Gaussian inputs (``separation=0``: 500 points of dimension 100, binary labels that the
network never sees), measured exactly as ``python ensemble.py`` measures them. What
docs/science.md predicts, and what was measured when this file was written (300 inits):

=====================  ===============  =====================================================
configuration          measured gamma   why
=====================  ===============  =====================================================
ReLU, BatchNorm post   ~2e-14           the batch mean of every unit is subtracted after the
                                        ReLU: the head sees centred features, mu_c = 0
ReLU, BatchNorm pre    ~0.41            centred before the ReLU, which re-creates the offset
ReLU, no norm          ~5.4             the offset grows with depth: deeply prejudiced
tanh, no norm          ~9e-4 (~1/2N)    odd activation, zero biases: no offset at all
ReLU, LayerNorm post   ~0.02            centres each sample over features: most of the offset
ReLU, RMSNorm post     ~7.6             rescales without centring: keeps the whole offset
=====================  ===============  =====================================================

The gamma values are plug-in estimates on N = 500 points (``theory.gamma_finite_sample_floor``
is 1/N = 2e-3 for a network with no bias at all); BatchNorm post sits far below that floor
because the centring is exact over the very points that are measured.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from igb.data import GaussianBlobsDataModule
from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.metrics import gamma_bootstrap_ci
from igb.theory import gaussian as theory

N_INITS = 300
#: two worker threads with one intra-op thread each: fast, and robust to a busy CPU
pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

N_POINTS = 500
DEPTH, WIDTH, DIM = 10, 100, 100


@pytest.fixture(scope="module")
def centred_gaussian() -> torch.Tensor:
    dm = GaussianBlobsDataModule(
        num_classes=2,
        num_samples=N_POINTS,
        shape=(DIM,),
        separation=0.0,
        val_fraction=0.0,
        test_fraction=0.0,
        seed=0,
    )
    dm.setup()
    x, _ = dm.split_tensors("train")
    assert x.shape == (N_POINTS, DIM)
    return x


def ensemble(x: torch.Tensor, activation: str, placement: str, kind: str = "batch", depth=DEPTH):
    model = {
        "_target_": "igb.nn.mlp.MLP",
        "name": "mlp",
        "depth": depth,
        "width": WIDTH,
        "activation": activation,
        "init": "kaiming_normal",
    }
    plan = EvaluationPlan(
        model,
        {"placement": placement, "kind": kind},
        num_classes=2,
        batch_size=N_POINTS,  # batch statistics over the whole evaluation set
        workers=2,
    )
    result = evaluate_ensemble(plan, x, range(N_INITS))
    lo, hi = gamma_bootstrap_ci(result.mu, result.s2, n_boot=500)
    return result, result.gamma, (lo, hi)


def test_batchnorm_post_is_neutral(centred_gaussian) -> None:
    result, gamma, (lo, hi) = ensemble(centred_gaussian, "relu", "post")
    assert gamma < 1e-3 and hi < 1e-3, (gamma, lo, hi)
    assert theory.regime(gamma) == "neutral"
    # every initialization splits the points nearly evenly (finite-sample noise only)
    assert np.abs(result.f[:, 0] - 0.5).max() < 0.15


def test_batchnorm_pre_is_prejudiced(centred_gaussian) -> None:
    result, gamma, (lo, hi) = ensemble(centred_gaussian, "relu", "pre")
    assert theory.NEUTRAL_TOL < lo <= gamma <= hi < 1, (gamma, lo, hi)
    assert theory.regime(gamma) == "prejudiced"
    # and the law of f_0 is the Gaussian model's p(f_0 | gamma) at the measured gamma
    ks = stats.kstest(result.f[:, 0], lambda q: theory.f0_cdf(q, gamma))
    assert ks.pvalue > 0.01, ks


def test_no_norm_is_deeply_prejudiced(centred_gaussian) -> None:
    result, gamma, (lo, hi) = ensemble(centred_gaussian, "relu", "none")
    assert 1 < lo <= gamma <= hi, (gamma, lo, hi)
    assert theory.regime(gamma) == "deeply_prejudiced"
    # bimodal law: many initializations send (nearly) every point to one class
    f0 = result.f[:, 0]
    assert np.mean((f0 < 0.05) | (f0 > 0.95)) > 0.3


def test_tanh_without_norm_is_neutral(centred_gaussian) -> None:
    result, gamma, (lo, hi) = ensemble(centred_gaussian, "tanh", "none")
    assert hi < theory.NEUTRAL_TOL, (gamma, lo, hi)
    assert theory.regime(gamma) == "neutral"
    # no bias beyond the finite-sample floor of a network with none
    assert gamma < 2 * theory.gamma_finite_sample_floor(N_POINTS)


def test_centring_decides_layernorm_and_rmsnorm(centred_gaussian) -> None:
    """LayerNorm post removes most of the offset; RMSNorm (no centring) removes none."""
    _, ln_post, _ = ensemble(centred_gaussian, "relu", "post", kind="layer")
    _, rms_post, _ = ensemble(centred_gaussian, "relu", "post", kind="rms")
    _, none, _ = ensemble(centred_gaussian, "relu", "none")
    assert ln_post < 0.1 < 1 < rms_post, (ln_post, rms_post)
    assert ln_post < none / 50


def test_depth_amplifies_the_bias_without_norm(centred_gaussian) -> None:
    gammas = [ensemble(centred_gaussian, "relu", "none", depth=d)[1] for d in (1, 3, 10)]
    assert gammas[0] < gammas[1] < gammas[2], gammas
