"""gamma of a fresh Gaussian linear head on given features, in closed form.

For features ``h(x)`` in R^F on N evaluation points let ``G(x, x') = (1/F) sum_i h_i(x)
h_i(x')``. A linear head with iid zero-mean weights (any law: only second moments enter)
and zero bias gives, averaged over the head, exactly

    gamma = mean(G) / (mean(diag G) - mean(G))

(the plug-in estimator of :func:`igb.metrics.gamma_from_moments`; derivation in
docs/science.md). Both terms need only per-feature sums over the points, never the
N x N kernel: ``mean(G) = (1/F) sum_i (mean_x h_i)^2`` and ``mean(diag G) - mean(G) =
(1/F) sum_i var_x h_i``. Over initializations of the network the ratio of expectations
is taken, as for gamma: :func:`head_gamma` with the interval of
:func:`igb.metrics.ratio_bootstrap_ci`.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from igb.metrics.gamma import ratio_bootstrap_ci

__all__ = ["REDUCTIONS", "feature_moments", "head_gamma", "reduce_features", "sums_moments"]

#: how a map with spatial / token axes becomes one feature vector per point: ``pool``
#: (channel means over positions, token mean: what a global-average-pool head reads) or
#: ``flatten`` (every position a feature)
REDUCTIONS = ("pool", "flatten")


def reduce_features(h: Tensor, reduction: str = "pool", layout: str | None = None) -> Tensor:
    """``(N, F)`` features of a layer output: ``(N, C, H, W)`` maps, ``(N, T, D)`` tokens.

    ``layout`` is ``conv`` or ``token`` for 3-d/4-d outputs when known; by default a 4-d
    output is a conv map and a 3-d one tokens (channel axis 1 / last)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}; allowed: {', '.join(REDUCTIONS)}")
    if h.dim() <= 2:
        return h.reshape(h.shape[0], -1)
    if reduction == "flatten":
        return h.flatten(1)
    if h.dim() == 3 and layout != "conv":
        return h.mean(dim=1)
    # a reduction over the trailing axes, never a reshape: a channels-last map would be copied
    return h.mean(dim=tuple(range(2, h.dim())))


def sums_moments(s1: Tensor, s2: Tensor, n: int) -> tuple[float, float]:
    """``(mean G, mean diag G - mean G)`` from per-feature sums ``sum_x h_i``, ``sum_x h_i^2``."""
    mean = s1.double() / n
    spread = (s2.double() / n - mean * mean).clamp_min(0.0)
    return float((mean * mean).mean()), float(spread.mean())


def feature_moments(h: Tensor) -> tuple[float, float]:
    """``(mean G, mean diag G - mean G)`` of ``(N, F)`` features ``h`` (float64)."""
    h = h.detach().double().reshape(h.shape[0], -1)
    return sums_moments(h.sum(dim=0), (h * h).sum(dim=0), h.shape[0])


def head_gamma(
    mean_g, spread, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``E[mean G] / E[spread]`` over initializations, with its bootstrap interval.

    ``mean_g`` and ``spread`` hold one value per initialization (:func:`feature_moments`);
    with one initialization the interval is that single value."""
    a = np.asarray(mean_g, dtype=np.float64)
    b = np.asarray(spread, dtype=np.float64)
    gamma = _ratio(a.mean(axis=0), b.mean(axis=0))
    if a.shape[0] < 2:
        return gamma, gamma, gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = ratio_bootstrap_ci(a, b, n_boot=n_boot, level=level, seed=seed)
    return gamma, lo, hi


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")
