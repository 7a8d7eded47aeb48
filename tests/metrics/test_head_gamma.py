"""Closed-form gamma of a Gaussian head on features: by hand, NNGP formula, sampled heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from igb.metrics import (
    feature_moments,
    gamma_bootstrap_ci,
    gamma_from_moments,
    head_gamma,
    logit_statistics,
    ratio_bootstrap_ci,
    reduce_features,
)
from igb.theory.nngp.kernel import gamma_from_kernel

# three points, two features: feature means (2, 2), population variances (2/3, 8/3)
H = torch.tensor([[1.0, 0.0], [3.0, 2.0], [2.0, 4.0]])


def test_hand_made_features_exact() -> None:
    mean_g, spread = feature_moments(H)
    assert mean_g == pytest.approx(4.0, abs=1e-12)  # (2^2 + 2^2) / 2
    assert spread == pytest.approx(5.0 / 3.0, abs=1e-12)  # (2/3 + 8/3) / 2
    gamma, lo, hi = head_gamma([mean_g], [spread])
    assert gamma == pytest.approx(2.4, abs=1e-12) and lo == hi == gamma


def test_equals_gamma_from_kernel() -> None:
    rng = np.random.default_rng(0)
    h = np.maximum(rng.normal(size=(40, 17)), 0) + 0.3 * rng.normal(size=(40, 1))
    kernel = h @ h.T / h.shape[1]
    gamma, _, _ = head_gamma(*[[v] for v in feature_moments(torch.from_numpy(h))])
    assert gamma == pytest.approx(gamma_from_kernel(kernel), rel=1e-12)


def test_ratio_of_expectations_over_inits() -> None:
    assert head_gamma([1.0, 3.0], [1.0, 1.0])[0] == 2.0
    assert head_gamma([1.0, 4.0], [1.0, 2.0])[0] == pytest.approx(5.0 / 3.0)  # not mean(a/b) = 1.5


def test_closed_form_matches_sampled_gaussian_heads() -> None:
    gen = torch.Generator().manual_seed(1)
    h = torch.relu(torch.randn(64, 32, generator=gen, dtype=torch.float64)) + 0.2
    n_heads, c = 4000, 5
    w = torch.randn(n_heads, c, 32, generator=gen, dtype=torch.float64)
    logits = torch.einsum("nf,kcf->knc", h, w)
    stats = logit_statistics(logits)
    sampled = gamma_from_moments(stats["mu"], stats["s2"])
    lo, hi = gamma_bootstrap_ci(stats["mu"], stats["s2"], n_boot=300)
    closed = head_gamma(*[[v] for v in feature_moments(h)])[0]
    assert lo < closed < hi
    assert sampled == pytest.approx(closed, rel=0.1)


def test_reductions() -> None:
    conv = torch.arange(2 * 3 * 2 * 2, dtype=torch.float64).reshape(2, 3, 2, 2)
    assert torch.equal(reduce_features(conv), conv.mean(dim=(2, 3)))
    assert torch.equal(reduce_features(conv, "flatten"), conv.reshape(2, 12))
    tokens = conv.reshape(2, 6, 2)
    assert torch.equal(reduce_features(tokens), tokens.mean(dim=1))
    with pytest.raises(ValueError, match="reduction"):
        reduce_features(conv, "max")


def test_ratio_bootstrap_columns_match_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random((30, 3)), rng.random((30, 3)) + 0.5
    lo, hi = ratio_bootstrap_ci(a, b, n_boot=200)
    for j in range(3):
        assert (lo[j], hi[j]) == pytest.approx(ratio_bootstrap_ci(a[:, j], b[:, j], n_boot=200))
