"""Per-true-class accuracy and loss, and :class:`BiasStatistics`, all bias quantities at once.

Same conventions as :mod:`igb.metrics.prediction`: float64 sum states with
``dist_reduce_fx="sum"``, so batch-wise, merged and DDP-reduced values equal the
one-shot values. A class with no sample gets NaN.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from igb.metrics.functional import bias_degree, normalized_entropy, ranked_fractions
from igb.metrics.prediction import (
    _check_num_classes,
    _zeros,
    centred_sums,
    check_logits,
    moments_from_sums,
    prediction_counts,
)

__all__ = ["PerClassAccuracy", "PerClassLoss", "BiasStatistics", "BIAS_KEYS", "TARGET_KEYS"]

#: keys of :meth:`BiasStatistics.compute` that need only logits
BIAS_KEYS = ("f", "f_max", "f_ranked", "rank_order", "entropy", "mu", "s2", "bias_degree")
#: keys added when targets were given to :meth:`BiasStatistics.update`
TARGET_KEYS = ("acc", "loss", "acc_class", "loss_class")


def _check_targets(logits: Tensor, targets: Tensor, num_classes: int) -> None:
    check_logits(logits, num_classes)
    if targets.ndim != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(
            f"targets must have shape ({logits.shape[0]},), got {tuple(targets.shape)}"
        )
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer class indices, got dtype {targets.dtype}")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(
            f"targets must lie in [0, {num_classes - 1}], got values in "
            f"[{int(targets.min())}, {int(targets.max())}]"
        )


def _per_class_sums(
    logits: Tensor, targets: Tensor, num_classes: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Per true class: sample count, number correct, summed cross-entropy (float64)."""
    targets = targets.long()
    ones = torch.ones(targets.shape[0], dtype=torch.float64, device=logits.device)
    correct = (logits.argmax(dim=1) == targets).to(torch.float64)
    loss = F.cross_entropy(logits.detach().to(torch.float64), targets, reduction="none")
    count = _zeros(num_classes).to(logits.device).index_add_(0, targets, ones)
    n_correct = _zeros(num_classes).to(logits.device).index_add_(0, targets, correct)
    loss_sum = _zeros(num_classes).to(logits.device).index_add_(0, targets, loss)
    return count, n_correct, loss_sum


class PerClassAccuracy(Metric):
    """Accuracy per TRUE class: ``#{x in class c : argmax o(x) = c} / #{x in class c}``.

    ``update(logits, targets)``; ``compute()`` returns float64 ``(C,)`` (NaN where a
    class has no sample).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = _check_num_classes(num_classes)
        self.add_state("correct", default=_zeros(num_classes), dist_reduce_fx="sum")
        self.add_state("count", default=_zeros(num_classes), dist_reduce_fx="sum")

    def update(self, logits: Tensor, targets: Tensor) -> None:
        _check_targets(logits, targets, self.num_classes)
        count, correct, _ = _per_class_sums(logits, targets, self.num_classes)
        self.count += count.to(self.count.device)
        self.correct += correct.to(self.correct.device)

    def compute(self) -> Tensor:
        return self.correct / self.count


class PerClassLoss(Metric):
    """Mean cross-entropy per TRUE class (float64 ``(C,)``, NaN where a class has no sample)."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = _check_num_classes(num_classes)
        self.add_state("loss_sum", default=_zeros(num_classes), dist_reduce_fx="sum")
        self.add_state("count", default=_zeros(num_classes), dist_reduce_fx="sum")

    def update(self, logits: Tensor, targets: Tensor) -> None:
        _check_targets(logits, targets, self.num_classes)
        count, _, loss_sum = _per_class_sums(logits, targets, self.num_classes)
        self.count += count.to(self.count.device)
        self.loss_sum += loss_sum.to(self.loss_sum.device)

    def compute(self) -> Tensor:
        return self.loss_sum / self.count


class BiasStatistics(Metric):
    """Every bias quantity of ``science.md`` from one pass over the evaluation set.

    ``update(logits, targets=None)`` may be called batch by batch; ``compute()``
    returns a dict of float64 tensors (``rank_order`` is int64):

    - ``"f"`` (C,), ``"f_max"``, ``"f_ranked"`` (C,), ``"rank_order"`` (C,): the
      prediction fractions, their maximum, their descending sort and the class of each
      rank (ties: lower class index first);
    - ``"entropy"``: ``H(f) / log C``;
    - ``"mu"`` (C,), ``"s2"`` (C,), ``"bias_degree"``: the centred-logit moments and
      ``g = mean mu^2 / mean s2``;
    - only if some update had targets: ``"acc"``, ``"loss"`` (over all targeted
      points), ``"acc_class"`` (C,), ``"loss_class"`` (C,) (per true class, NaN for a
      class with no sample). If only some updates had targets, these cover exactly
      the points that came with targets.

    It is a single Metric (one state set, one DDP sync); use ``reset()`` between
    evaluations.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = _check_num_classes(num_classes)
        c = num_classes
        self.add_state("pred_counts", default=_zeros(c), dist_reduce_fx="sum")
        self.add_state("sum_d", default=_zeros(c), dist_reduce_fx="sum")
        self.add_state("sum_d2", default=_zeros(c), dist_reduce_fx="sum")
        self.add_state("total", default=_zeros(), dist_reduce_fx="sum")
        self.add_state("class_count", default=_zeros(c), dist_reduce_fx="sum")
        self.add_state("class_correct", default=_zeros(c), dist_reduce_fx="sum")
        self.add_state("class_loss", default=_zeros(c), dist_reduce_fx="sum")

    def update(self, logits: Tensor, targets: Tensor | None = None) -> None:
        check_logits(logits, self.num_classes)
        dev = self.total.device
        self.pred_counts += prediction_counts(logits, self.num_classes).to(dev)
        s1, s2 = centred_sums(logits)
        self.sum_d += s1.to(dev)
        self.sum_d2 += s2.to(dev)
        self.total += logits.shape[0]
        if targets is not None:
            _check_targets(logits, targets, self.num_classes)
            count, correct, loss_sum = _per_class_sums(logits, targets, self.num_classes)
            self.class_count += count.to(dev)
            self.class_correct += correct.to(dev)
            self.class_loss += loss_sum.to(dev)

    def compute(self) -> dict[str, Tensor]:
        f = self.pred_counts / self.total
        f_ranked, order = ranked_fractions(f)
        mu, s2 = moments_from_sums(self.sum_d, self.sum_d2, self.total)
        out = {
            "f": f,
            "f_max": f_ranked[0],
            "f_ranked": f_ranked,
            "rank_order": order,
            "entropy": normalized_entropy(f) if self.num_classes > 1 else f.new_tensor(0.0),
            "mu": mu,
            "s2": s2,
            "bias_degree": bias_degree(mu, s2),
        }
        n_targeted = self.class_count.sum()
        if n_targeted > 0:
            out["acc"] = self.class_correct.sum() / n_targeted
            out["loss"] = self.class_loss.sum() / n_targeted
            out["acc_class"] = self.class_correct / self.class_count
            out["loss_class"] = self.class_loss / self.class_count
        return out
