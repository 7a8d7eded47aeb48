"""torchmetrics versions of the prediction fractions and the centred-logit moments.

All states are float64 sums registered with ``dist_reduce_fx="sum"``, so a metric
fed batch by batch (and reduced across DDP ranks, or merged with
``merge_state``) gives the same value as the one-shot functions of
:mod:`igb.metrics.functional` on the concatenated logits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from igb.metrics.functional import bias_degree

__all__ = ["PredictionFractions", "CentredLogitMoments", "BiasDegree"]


def check_logits(logits: Tensor, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``logits`` has shape ``(N, num_classes)``."""
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"logits must have shape (N, {num_classes}), got {tuple(logits.shape)}")


def _check_num_classes(num_classes: int) -> int:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes


def _zeros(num_classes: int | None = None) -> Tensor:
    shape = () if num_classes is None else (num_classes,)
    return torch.zeros(shape, dtype=torch.float64)


def prediction_counts(logits: Tensor, num_classes: int) -> Tensor:
    """``#{x : argmax_k o_k(x) = c}`` as a float64 ``(C,)`` tensor (first max wins)."""
    return torch.bincount(logits.argmax(dim=1), minlength=num_classes).to(torch.float64)


def centred_sums(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Column sums of the centred logits ``d`` and of ``d**2``, in float64."""
    o = logits.detach().to(torch.float64)
    d = o - o.mean(dim=1, keepdim=True)
    return d.sum(dim=0), (d * d).sum(dim=0)


def moments_from_sums(sum_d: Tensor, sum_d2: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
    """``mu = sum_d / n`` and population variance ``s2 = sum_d2 / n - mu**2`` (clamped >= 0)."""
    mu = sum_d / n
    s2 = (sum_d2 / n - mu * mu).clamp_min(0.0)
    return mu, s2


class PredictionFractions(Metric):
    """``f_c``: fraction of the points seen so far whose argmax is class ``c``.

    ``update(logits)`` with logits ``(N, C)``; ``compute()`` returns float64 ``(C,)``.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = _check_num_classes(num_classes)
        self.add_state("counts", default=_zeros(num_classes), dist_reduce_fx="sum")
        self.add_state("total", default=_zeros(), dist_reduce_fx="sum")

    def update(self, logits: Tensor) -> None:
        check_logits(logits, self.num_classes)
        self.counts += prediction_counts(logits, self.num_classes).to(self.counts.device)
        self.total += logits.shape[0]

    def compute(self) -> Tensor:
        return self.counts / self.total


class CentredLogitMoments(Metric):
    """Per-class centre ``mu_c`` and spread ``s2_c`` of the centred logits.

    Accumulates ``sum_x d_c``, ``sum_x d_c^2`` and the point count, so ``compute()``
    returns ``(mu, s2)`` (float64 ``(C,)`` each; ``s2`` is the population variance).
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = _check_num_classes(num_classes)
        self.add_state("sum_d", default=_zeros(num_classes), dist_reduce_fx="sum")
        self.add_state("sum_d2", default=_zeros(num_classes), dist_reduce_fx="sum")
        self.add_state("total", default=_zeros(), dist_reduce_fx="sum")

    def update(self, logits: Tensor) -> None:
        check_logits(logits, self.num_classes)
        s1, s2 = centred_sums(logits)
        self.sum_d += s1.to(self.sum_d.device)
        self.sum_d2 += s2.to(self.sum_d2.device)
        self.total += logits.shape[0]

    def compute(self) -> tuple[Tensor, Tensor]:
        return moments_from_sums(self.sum_d, self.sum_d2, self.total)


class BiasDegree(CentredLogitMoments):
    """Single-initialization bias degree ``g = mean_c mu_c^2 / mean_c s2_c`` (a scalar)."""

    def compute(self) -> Tensor:
        mu, s2 = super().compute()
        return bias_degree(mu, s2)
