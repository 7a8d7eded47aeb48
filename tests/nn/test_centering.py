"""Centring-only norms (``norm.kind=center|center_init``) and the data shift, measured the
way ``python ensemble.py`` measures: exact values on hand-made inputs, and the physics
they are there for (a centring norm after the ReLU is neutral; a shifted input is biased).
"""

from __future__ import annotations

import pytest
import torch

from igb.data import GaussianBlobsDataModule
from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.metrics.measure import batch_stat_mode, predict_logits
from igb.nn import build_model
from igb.nn.centering import CenterInitNorm, CenterNorm

SHAPES = {"dense": (6, 4), "conv": (6, 4, 3, 3), "token": (6, 5, 4)}
MEAN_AXES = {"dense": (0,), "conv": (0, 2, 3), "token": (0, 1)}
MLP = {"_target_": "igb.nn.mlp.MLP", "name": "mlp", "depth": 3, "width": 64}


@pytest.mark.parametrize("layout", SHAPES)
def test_center_subtracts_the_batch_mean_per_feature_and_nothing_else(layout: str) -> None:
    x = torch.randn(SHAPES[layout]) * 3 + 2
    norm = CenterNorm(4, layout, momentum=0.5)
    out = norm(x)
    mean = x.mean(dim=MEAN_AXES[layout], keepdim=True)
    torch.testing.assert_close(out, x - mean)  # no scaling: the spread is untouched
    torch.testing.assert_close(norm.running_mean, 0.5 * mean.flatten())
    with torch.no_grad():  # a measurement never moves the running mean
        norm(x + 100)
    torch.testing.assert_close(norm.running_mean, 0.5 * mean.flatten())
    norm.eval()
    torch.testing.assert_close(norm(x), x - 0.5 * mean)


def test_center_init_freezes_the_first_training_batch_and_checkpoints_it() -> None:
    first, second = torch.randn(8, 3) + 1, torch.randn(8, 3) - 5
    norm = CenterInitNorm(3, "dense")
    assert torch.equal(norm.eval()(first), first)  # eval before training: identity
    norm.train()
    with torch.no_grad():  # a step-0 measurement: batch mean, nothing frozen
        torch.testing.assert_close(norm(second), second - second.mean(0))
    assert not norm.frozen
    torch.testing.assert_close(norm(first), first - first.mean(0))
    assert norm.frozen
    torch.testing.assert_close(norm(second), second - first.mean(0))  # frozen ever after
    restored = CenterInitNorm(3, "dense")
    restored.load_state_dict(norm.state_dict())
    assert restored.frozen
    torch.testing.assert_close(restored.eval()(second), second - first.mean(0))
    restored.reset_parameters()  # what a fresh initialization does
    assert not restored.frozen and torch.equal(restored.init_mean, torch.zeros(3))


@pytest.mark.parametrize("kind", ["center", "center_init"])
def test_measurement_uses_batch_statistics_like_batchnorm(kind: str) -> None:
    net = build_model(MLP, {"placement": "post", "kind": kind}, (10,), 3, seed=0)
    x = torch.randn(40, 10) + 1
    measured = predict_logits(net, x, batch_size=40, norm_mode="batch")
    plain = predict_logits(build_model(MLP, {"placement": "none"}, (10,), 3, seed=0), x, 40)
    # the head sees centred features: the logits' mean over the batch is the (zero) bias
    torch.testing.assert_close(measured.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    assert plain.mean(0).abs().max() > 0.1
    with batch_stat_mode(net):
        pass
    assert all(not getattr(m, "frozen", False) for m in net.modules())


def _blobs(shift: float, dim: int = 50, n: int = 300) -> torch.Tensor:
    dm = GaussianBlobsDataModule(
        num_classes=2, num_samples=n, shape=(dim,), separation=0.0, val_fraction=0.0,
        test_fraction=0.0, seed=0, shift=shift,
    )  # fmt: skip
    return dm.split_tensors("train")[0]


def _gamma(norm: dict, x: torch.Tensor, n_inits: int = 60) -> float:
    plan = EvaluationPlan(MLP, norm, 2, batch_size=x.shape[0], method="loop", workers=1)
    result = evaluate_ensemble(plan, x, range(n_inits))
    return result.gamma


def test_center_post_mlp_is_neutral_and_none_is_not() -> None:
    x = _blobs(0.0)
    assert _gamma({"placement": "post", "kind": "center"}, x) < 1e-8
    assert _gamma({"placement": "post", "kind": "center_init"}, x) < 1e-8
    assert _gamma({"placement": "none"}, x) > 0.3


def test_input_shift_raises_gamma_without_norm() -> None:
    """A shifted input mean is itself a shared offset: the head turns it into bias."""
    x0, x3 = _blobs(0.0), _blobs(3.0)
    torch.testing.assert_close(x3, x0 + 3.0)
    g0, g3 = _gamma({"placement": "none"}, x0), _gamma({"placement": "none"}, x3)
    assert g3 > 2 * g0, (g0, g3)


@pytest.mark.parametrize("kind", ["center", "center_init"])
def test_vmap_path_matches_the_loop(kind: str) -> None:
    """The GPU ensemble path (vmap over stacked parameters and buffers), run on the CPU."""
    x = _blobs(0.0, n=120)
    norm = {"placement": "pre", "kind": kind}
    loop, vmapped = (
        evaluate_ensemble(EvaluationPlan(MLP, norm, 2, 60, method=m, workers=1), x, range(6))
        for m in ("loop", "vmap")
    )
    torch.testing.assert_close(torch.from_numpy(vmapped.mu), torch.from_numpy(loop.mu))
    assert vmapped.method == "vmap"
