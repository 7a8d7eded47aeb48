"""Ensemble IGB strength ``gamma`` from per-initialization centred-logit moments.

``gamma = E_chi[mean_c mu_c^2] / E_chi[mean_c s2_c]`` over independent
initializations chi (docs/science.md). This is the plug-in estimator: on N
evaluation points an exactly neutral network still gives ``gamma ~ 1/N`` (see
:func:`igb.theory.gaussian.gamma_finite_sample_floor`).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["gamma_from_moments", "gamma_bootstrap_ci", "ratio_bootstrap_ci"]

#: most resampled init indices held in memory at once by the bootstrap
_BOOT_CHUNK_ELEMENTS = 4_000_000


def _per_init(mu, s2) -> tuple[np.ndarray, np.ndarray]:
    """``(mean_c mu^2, mean_c s2)`` per initialization, as float64 numpy vectors."""

    def as_np(x) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu", torch.float64).numpy()
        return np.asarray(x, dtype=np.float64)

    mu, s2 = as_np(mu), as_np(s2)
    if mu.ndim != 2 or mu.shape != s2.shape:
        raise ValueError(
            f"mu and s2 must both have shape (n_inits, C), got {mu.shape} and {s2.shape}"
        )
    if mu.shape[0] == 0:
        raise ValueError("need at least one initialization")
    return (mu**2).mean(axis=1), s2.mean(axis=1)


def gamma_from_moments(mu, s2) -> float:
    """``gamma = E_inits[mean_c mu_c^2] / E_inits[mean_c s2_c]``.

    ``mu`` and ``s2`` are ``(n_inits, C)`` tensors (or arrays): one row of
    :func:`~igb.metrics.centred_logit_moments` output per initialization.
    """
    a, b = _per_init(mu, s2)
    return float(a.mean() / b.mean())


def gamma_bootstrap_ci(
    mu, s2, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of :func:`gamma_from_moments`.

    Resamples initializations with replacement ``n_boot`` times (index matrices of
    many resamples at once, in chunks of at most a few million indices), recomputes the
    ratio of means for each and returns the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` percentiles. The rows of one initialization stay together,
    so the per-class correlations inside an initialization are respected.
    """
    a, b = _per_init(mu, s2)
    return ratio_bootstrap_ci(a, b, n_boot=n_boot, level=level, seed=seed)


def ratio_bootstrap_ci(
    a, b, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the ratio of expectations ``E[a] / E[b]``.

    ``a`` and ``b`` hold one value per initialization (same length); resampling keeps the
    pair of one initialization together. ``a`` may also be ``(n_inits, K)``: K ratios at
    once (the entries of a profile), each with its own interval, from the same resamples.
    Returns ``(lo, hi)`` (arrays of length K for 2-d input).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(f"a and b need the same non-empty shape, got {a.shape} and {b.shape}")
    n = a.shape[0]
    rng = np.random.default_rng(seed)
    width = int(np.prod(a.shape[1:], dtype=np.int64))
    rows = max(1, _BOOT_CHUNK_ELEMENTS // (n * max(1, width)))
    ratios = np.empty((n_boot, *a.shape[1:]))
    for start in range(0, n_boot, rows):  # a few chunks, each a vectorised batch of resamples
        stop = min(start + rows, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        ratios[start:stop] = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2], axis=0)
    if a.ndim == 1:
        return float(lo), float(hi)
    return lo, hi
