"""What a walk reads and walks: its settings read once, the input kernel computed once, and
only the entries gamma needs.

Each shortcut is checked against the plain computation it replaces: the per-batch walk of
a network that ends centred against the full N x N walk, the strip-wise centring against
the centring matrix ``P K P``, the pair quantiles against the index array of the pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers.conf_values import group_values

from igb.ensemble import EnsembleSpec
from igb.theory.nngp import WalkSettings, architecture, predict_gamma, predict_layers
from igb.theory.nngp.finite import PAIRS, correction, pair_quantiles
from igb.theory.nngp.kernel import (
    InputKernel,
    centre,
    ends_centred,
    final_kernel,
    gamma_kernel,
    kernel_means,
)
from igb.theory.nngp.subsample import choose

MLP = {"depth": 4, "width": 64}
BN_POST = {"placement": "post", "kind": "batch"}
N, DIM = 120, 30


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((N, DIM)) + 0.4


def test_settings_read_once_carry_the_architecture_or_the_reason() -> None:
    walk = WalkSettings.from_groups(MLP, BN_POST, 25, norm_mode="eval", num_classes=3)
    assert walk.arch == architecture(MLP, BN_POST, "eval", 3) and walk.reason is None
    assert (walk.batch_size, walk.max_points, walk.seed) == (25, None, 0)
    cnn = WalkSettings.from_groups({"_target_": "igb.nn.cnn.CNN", "name": "cnn"}, BN_POST, 25)
    assert cnn.arch is None and cnn.reason == "the theory covers model=mlp only, not cnn"
    assert predict_gamma(cnn, np.zeros((4, 2))).reason == cnn.reason
    assert predict_layers(cnn, np.zeros((4, 2))) == cnn.reason


def test_settings_of_an_ensemble_spec_are_its_theory_settings() -> None:
    ens = {**group_values("ensemble", "ensemble"), "batch_size": 40, "theory_points": 100}
    groups = {"model": {"name": "mlp", **MLP}, "norm": BN_POST, "ensemble": ens,
              "dataset": {"name": "gaussian_blobs"}}  # fmt: skip
    want = WalkSettings.from_groups(MLP, BN_POST, 40, num_classes=2, max_points=100)
    assert WalkSettings.from_spec(EnsembleSpec.from_groups(groups), num_classes=2) == want


@pytest.mark.parametrize(
    ("model", "norm", "centred"),
    [
        (MLP, BN_POST, True),
        ({**MLP, "neutralize": "head"}, {"placement": "none"}, True),
        (MLP, {"placement": "pre", "kind": "batch"}, False),
        (MLP, {**BN_POST, "kind": "layer"}, False),
    ],
)
@pytest.mark.parametrize("batch", [30, 7])
def test_the_per_batch_walk_has_the_full_walks_means(x, model, norm, centred, batch) -> None:
    """Where the walk ends centred over each batch, the batches walked alone give the
    full kernel's diagonal and its mean (0: every block sums to zero); elsewhere the full
    walk itself."""
    arch = architecture(model, norm)
    assert ends_centred(arch) is centred
    full, walked = final_kernel(x, arch, batch), gamma_kernel(x, arch, batch)
    np.testing.assert_allclose(np.diag(walked), np.diag(full), rtol=1e-12)
    diag, mean = kernel_means(walked)
    assert diag == pytest.approx(kernel_means(full)[0], rel=1e-12)
    assert mean == pytest.approx(kernel_means(full)[1], abs=1e-14)
    if centred:
        assert abs(mean) < 1e-15 and np.count_nonzero(walked) <= N * (batch + 1)
    else:
        assert np.array_equal(walked, full)


def test_the_per_batch_walk_of_batches_walked_in_part_is_the_full_walks(x) -> None:
    """Batches larger than the subsample: each is represented by some of its members and
    its batch means are estimated from them; walked alone, the same estimate."""
    arch = architecture(MLP, BN_POST)
    sub = choose(N, 40, 30, coupled=True, seed=2)
    assert not sub.exact and len(sub.design.slices) == 3
    xs = x[sub.index]
    full = final_kernel(xs, arch, 40, sub.design)
    walked = gamma_kernel(xs, arch, 40, sub.design)
    np.testing.assert_allclose(np.diag(walked), np.diag(full), rtol=1e-12)
    diag, mean = kernel_means(walked, sub.design)
    assert diag == pytest.approx(kernel_means(full, sub.design)[0], rel=1e-12)
    assert mean == pytest.approx(kernel_means(full, sub.design)[1], abs=1e-14)


@pytest.mark.parametrize("sizes", [None, (50, 60, 40)])
def test_the_strip_centring_is_the_centring_matrix(sizes) -> None:
    """``P K P`` with the centring matrix of whole batches; batches walked in part
    (``sizes``) differ from it only in each batch's own row means."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((N, 8)) + 1.0
    k = z @ z.T
    slices = [slice(0, 50), slice(50, 70), slice(70, N)]
    got, ones = centre(k, slices, sizes)
    assert np.array_equal(ones, np.ones(N))
    if sizes is None:
        p = np.eye(N)
        for s in slices:
            p[s, s] -= 1.0 / (s.stop - s.start)
        np.testing.assert_allclose(got, p @ k @ p, rtol=0, atol=1e-12)
        for s in slices:
            np.testing.assert_allclose(got[s].sum(axis=0), 0, atol=1e-10)
    else:  # a complete batch (the first) is centred exactly, the others estimate
        np.testing.assert_allclose(got[:50, :50].sum(axis=0), 0, atol=1e-10)
        assert abs(got[50:70, 50:70].sum()) > 1e-6
    scaled, inv = centre(k, slices, sizes, eps=0.5)
    np.testing.assert_allclose(scaled, got * np.outer(inv, inv), rtol=1e-12)
    for s in slices:  # each batch's mean diagonal: var / (var + eps)
        var = np.diag(got)[s].mean()
        assert np.diag(scaled)[s].mean() == pytest.approx(var / (var + 0.5), rel=1e-12)


def test_the_pair_quantiles_read_each_pair_once(x) -> None:
    k0 = InputKernel.of(x).k
    diag = np.diag(k0)
    pairs = (k0 / np.sqrt(np.outer(diag, diag)))[np.triu_indices(N, 1)]
    want = np.quantile(pairs, (np.arange(PAIRS) + 0.5) / PAIRS)
    assert np.array_equal(pair_quantiles(k0), want)


def test_the_input_kernel_is_computed_once_for_both_walks(x) -> None:
    inputs = InputKernel.of(x)
    assert InputKernel.of(inputs) is inputs and inputs.fan_in == DIM
    np.testing.assert_allclose(inputs.k, x @ x.T / DIM, rtol=1e-14)
    arch = architecture(MLP, {"placement": "pre", "kind": "layer"})
    assert correction(inputs, arch, 30) == correction(x, arch, 30)
    keep = np.arange(N) % 3 > 0
    np.testing.assert_allclose(inputs.take(keep).k, InputKernel.of(x[keep]).k, rtol=1e-13)
