"""Pure-torch bias quantities of one set of logits (the names of ``science.md``).

Every function takes logits of shape ``(N, C)`` (N evaluation points, C classes) or
a quantity derived from them, and computes in float64 whatever the input dtype.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "prediction_fractions",
    "ranked_fractions",
    "normalized_entropy",
    "centred_logit_moments",
    "bias_degree",
]


def _check_logits(logits: Tensor, batched: bool = False) -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if batched:
        if logits.ndim < 2:
            raise ValueError(f"logits must have shape (..., N, C), got {tuple(logits.shape)}")
    elif logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    if logits.shape[-1] < 1:
        raise ValueError("logits must have at least one class column")


def prediction_fractions(logits: Tensor) -> Tensor:
    """Prediction fractions ``f_c = #{x : argmax_k o_k(x) = c} / N``.

    Ties in a row go to the first maximal index (the rule of ``torch.argmax``).
    Returns a float64 tensor of shape ``(C,)`` that sums to 1 (all NaN if ``N == 0``).
    """
    _check_logits(logits)
    n, c = logits.shape
    counts = torch.bincount(logits.argmax(dim=1), minlength=c).to(torch.float64)
    if n == 0:
        return torch.full((c,), math.nan, dtype=torch.float64, device=logits.device)
    return counts / n


def ranked_fractions(f: Tensor) -> tuple[Tensor, Tensor]:
    """Ranked fractions ``f_(1) >= f_(2) >= ... >= f_(C)`` and the class of each rank.

    Returns ``(values, order)`` with ``values[k] = f[order[k]]`` and ``order[k]`` the
    class of rank ``k + 1``. Ties are broken by the lower class index first (stable
    sort), so ``f = [0.25, 0.5, 0.25]`` gives ``order = [1, 0, 2]``.
    """
    if f.ndim != 1:
        raise ValueError(f"f must have shape (C,), got {tuple(f.shape)}")
    values, order = torch.sort(f, descending=True, stable=True)
    return values, order


def normalized_entropy(f: Tensor) -> Tensor:
    """Normalised prediction entropy ``H(f) / log C = -sum_c f_c log f_c / log C``.

    Uses ``0 log 0 = 0``. 1 means perfectly neutral (uniform f), 0 means every point
    goes to one class. Needs ``C >= 2`` (``log 1 = 0`` leaves nothing to normalise by).
    """
    if f.ndim != 1:
        raise ValueError(f"f must have shape (C,), got {tuple(f.shape)}")
    c = f.numel()
    if c < 2:
        raise ValueError(f"normalized_entropy needs at least 2 classes, got {c}")
    f = f.to(torch.float64)
    # 0.0 - x, not -x: one class taking every point gives 0.0, not -0.0 [issue 12]
    return (0.0 - torch.special.xlogy(f, f).sum()) / math.log(c)


def centred_logit_moments(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Per-class centre and spread of the centred logits.

    ``d_c(x) = o_c(x) - mean_k o_k(x)``; ``mu_c = mean_x d_c(x)`` and
    ``s2_c = var_x d_c(x)`` (population variance, divisor N). Accepts ``(N, C)`` or a
    stack ``(..., N, C)`` (e.g. one slice per initialization); the moments are taken
    over the ``N`` axis, giving float64 tensors of shape ``(..., C)``.
    """
    _check_logits(logits, batched=True)
    o = logits.to(torch.float64)
    d = o - o.mean(dim=-1, keepdim=True)
    mu = d.mean(dim=-2)
    s2 = d.var(dim=-2, unbiased=False)
    return mu, s2


def bias_degree(mu: Tensor, s2: Tensor) -> Tensor:
    """Single-initialization bias degree ``g = mean_c mu_c^2 / mean_c s2_c``.

    Takes the output of :func:`centred_logit_moments`; with stacked moments
    ``(..., C)`` it returns one ``g`` per leading index. Returns a float64 tensor.
    """
    if mu.shape != s2.shape:
        raise ValueError(f"mu and s2 must have the same shape, got {mu.shape} and {s2.shape}")
    mu = mu.to(torch.float64)
    s2 = s2.to(torch.float64)
    return (mu**2).mean(dim=-1) / s2.mean(dim=-1)
