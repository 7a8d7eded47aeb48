"""The bias quantities, computed once for everyone: the statistics callback (streaming, through
:class:`igb.metrics.BiasStatistics`), the ensemble (a stack of initializations at once) and
the tests all go through these functions (definitions: docs/science.md).

Everything is computed from three sums over the N evaluation points, so that a quantity
measured batch by batch, or summed across DDP ranks, equals the one-shot value: the
prediction counts ``#{x : argmax_k o_k(x) = c}`` and the column sums of the centred
logits ``d_c(x) = o_c(x) - mean_k o_k(x)`` and of ``d_c(x)^2``. Every function accepts a
leading stack of axes (e.g. one slice per initialization) and returns float64.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "prediction_counts",
    "centred_sums",
    "moments_from_sums",
    "centred_logit_moments",
    "ranked_fractions",
    "normalized_entropy",
    "bias_degree",
    "statistics_from_sums",
    "logit_statistics",
]


def check_logits(logits: Tensor, num_classes: int | None = None) -> None:
    """Raise ``ValueError`` unless ``logits`` has shape ``(..., N, C)`` (``C = num_classes``)."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    want = f"(..., N, {num_classes if num_classes is not None else 'C'})"
    if logits.ndim < 2 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape {want}, got {tuple(logits.shape)}")
    if num_classes is not None and logits.shape[-1] != num_classes:
        raise ValueError(f"logits must have shape {want}, got {tuple(logits.shape)}")


def prediction_counts(logits: Tensor) -> Tensor:
    """``#{x : argmax_k o_k(x) = c}``: float64 ``(..., C)``; ties go to the first maximal
    class (the rule of ``torch.argmax``)."""
    check_logits(logits)
    *stack, _, c = logits.shape
    k = math.prod(stack)
    winners = logits.argmax(dim=-1).reshape(k, -1)
    offset = torch.arange(k, device=logits.device).unsqueeze(1) * c
    counts = torch.bincount((winners + offset).flatten(), minlength=k * c)
    return counts.view(*stack, c).to(torch.float64)


def centred_sums(logits: Tensor) -> tuple[Tensor, Tensor]:
    """``(sum_x d_c(x), sum_x d_c(x)^2)``: float64 ``(..., C)`` each."""
    check_logits(logits)
    return _centred_sums(logits.detach().to(torch.float64))


def _centred_sums(o: Tensor) -> tuple[Tensor, Tensor]:
    d = o - o.mean(dim=-1, keepdim=True)
    return d.sum(dim=-2), (d * d).sum(dim=-2)


def moments_from_sums(sum_d: Tensor, sum_d2: Tensor, n: Tensor | int) -> tuple[Tensor, Tensor]:
    """``mu_c = sum_d / n`` and the population variance ``s2_c = sum_d2 / n - mu_c^2``
    (clamped at 0 against rounding)."""
    mu = sum_d / n
    s2 = (sum_d2 / n - mu * mu).clamp_min(0.0)
    return mu, s2


def centred_logit_moments(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Per-class centre ``mu_c`` and spread ``s2_c`` of the centred logits, ``(..., C)``."""
    return moments_from_sums(*centred_sums(logits), logits.shape[-2])


def ranked_fractions(f: Tensor) -> tuple[Tensor, Tensor]:
    """Ranked fractions ``f_(1) >= ... >= f_(C)`` and the class of each rank.

    Returns ``(values, order)`` with ``values[k] = f[order[k]]``. Ties go to the lower
    class index first (stable sort), so ``f = [0.25, 0.5, 0.25]`` gives ``order = [1, 0, 2]``.
    """
    values, order = torch.sort(f, dim=-1, descending=True, stable=True)
    return values, order


def normalized_entropy(f: Tensor) -> Tensor:
    """``H(f) / log C = -sum_c f_c log f_c / log C`` with ``0 log 0 = 0``: 1 is perfectly
    neutral (uniform f), 0 sends every point to one class (and the value for C = 1)."""
    f = f.to(torch.float64)
    c = f.shape[-1]
    if c < 2:
        return torch.zeros_like(f[..., 0])
    # 0.0 - x, not -x: one class taking every point gives 0.0, not -0.0
    return (0.0 - torch.special.xlogy(f, f).sum(dim=-1)) / math.log(c)


def bias_degree(mu: Tensor, s2: Tensor) -> Tensor:
    """Single-initialization bias degree ``g = mean_c mu_c^2 / mean_c s2_c`` (float64)."""
    if mu.shape != s2.shape:
        raise ValueError(f"mu and s2 must have the same shape, got {mu.shape} and {s2.shape}")
    mu = mu.to(torch.float64)
    s2 = s2.to(torch.float64)
    return (mu**2).mean(dim=-1) / s2.mean(dim=-1)


def statistics_from_sums(
    counts: Tensor, sum_d: Tensor, sum_d2: Tensor, n: Tensor | int
) -> dict[str, Tensor]:
    """The bias quantities from the three sums: ``f`` (..., C), ``f_max``, ``entropy``,
    ``mu`` and ``s2`` (..., C) and ``bias_degree`` (one value per leading index)."""
    f = counts / n
    mu, s2 = moments_from_sums(sum_d, sum_d2, n)
    return {
        "f": f,
        "f_max": f.max(dim=-1).values,
        "entropy": normalized_entropy(f),
        "mu": mu,
        "s2": s2,
        "bias_degree": bias_degree(mu, s2),
    }


def _raw_moments(o: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and population variance over the points of each raw (uncentred) logit
    ``o_c`` of float64 logits ``o``, ``(..., C)``: what the authors' estimators are built
    from."""
    return o.mean(dim=-2), o.var(dim=-2, unbiased=False)


def logit_statistics(logits: Tensor) -> dict[str, Tensor]:
    """:func:`statistics_from_sums` of logits ``(..., N, C)`` in one shot (e.g. a stack
    ``(K, N, C)`` of K initializations gives one row per initialization), plus the raw
    logits' moments ``raw_mu``, ``raw_s2`` (:func:`_raw_moments`). The float64 copy
    of the logits that both read is made once (a vmap chunk's stack can be large)."""
    check_logits(logits)
    o = logits.detach().to(torch.float64)
    stats = statistics_from_sums(prediction_counts(logits), *_centred_sums(o), logits.shape[-2])
    stats["raw_mu"], stats["raw_s2"] = _raw_moments(o)
    return stats
