""":class:`BiasStatistics`: every bias quantity, accuracy and loss (overall and per true class)
of a model on an evaluation set, fed batch by batch, in one torchmetrics Metric.

Its states are float64 sums with ``dist_reduce_fx="sum"`` (the three sums of
:mod:`igb.metrics.functional`, the per-class sample counts and cross-entropy sums), so
batch-wise, merged and DDP-reduced values equal the one-shot values. Per-class accuracy is
torchmetrics' own ``MulticlassAccuracy(average=None)``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy

from igb.metrics.functional import (
    centred_sums,
    check_logits,
    prediction_counts,
    ranked_fractions,
    statistics_from_sums,
)

__all__ = ["BiasStatistics", "BIAS_KEYS", "TARGET_KEYS"]

#: keys of :meth:`BiasStatistics.compute` that need only logits
BIAS_KEYS = ("f", "f_max", "f_ranked", "rank_order", "entropy", "mu", "s2", "bias_degree")
#: keys added when targets were given to :meth:`BiasStatistics.update`
TARGET_KEYS = ("acc", "loss", "acc_class", "loss_class")


def _zeros(num_classes: int | None = None) -> Tensor:
    shape = () if num_classes is None else (num_classes,)
    return torch.zeros(shape, dtype=torch.float64)


def _check_targets(logits: Tensor, targets: Tensor, num_classes: int) -> None:
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


class BiasStatistics(Metric):
    """Every bias quantity of docs/science.md from one pass over the evaluation set.

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

    Use ``reset()`` between evaluations.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        self.num_classes = c = num_classes
        self.add_state("pred_counts", default=_zeros(c), dist_reduce_fx="sum")
        self.add_state("sum_d", default=_zeros(c), dist_reduce_fx="sum")
        self.add_state("sum_d2", default=_zeros(c), dist_reduce_fx="sum")
        self.add_state("total", default=_zeros(), dist_reduce_fx="sum")
        self.add_state("class_count", default=_zeros(c), dist_reduce_fx="sum")
        self.add_state("class_loss", default=_zeros(c), dist_reduce_fx="sum")
        # targets are checked above with one-line messages; torchmetrics need not again
        self.class_accuracy = MulticlassAccuracy(c, average=None, validate_args=False)

    def update(self, logits: Tensor, targets: Tensor | None = None) -> None:
        check_logits(logits, self.num_classes)
        if logits.ndim != 2:
            raise ValueError(f"logits must have shape (N, {self.num_classes}), got {logits.shape}")
        dev = self.total.device
        self.pred_counts += prediction_counts(logits).to(dev)
        s1, s2 = centred_sums(logits)
        self.sum_d += s1.to(dev)
        self.sum_d2 += s2.to(dev)
        self.total += logits.shape[0]
        if targets is None or targets.numel() == 0:
            return
        _check_targets(logits, targets, self.num_classes)
        targets = targets.long()
        loss = F.cross_entropy(logits.detach().to(torch.float64), targets, reduction="none")
        self.class_count += torch.bincount(targets, minlength=self.num_classes).to(dev)
        self.class_loss += _zeros(self.num_classes).to(dev).index_add_(0, targets, loss.to(dev))
        self.class_accuracy.update(logits.detach(), targets)

    def merge_state(self, incoming_state: Any) -> None:
        super().merge_state(incoming_state)
        if isinstance(incoming_state, BiasStatistics):
            self.class_accuracy.merge_state(incoming_state.class_accuracy)

    def reset(self) -> None:
        super().reset()
        self.class_accuracy.reset()

    def compute(self) -> dict[str, Tensor]:
        out = statistics_from_sums(self.pred_counts, self.sum_d, self.sum_d2, self.total)
        f_ranked, order = ranked_fractions(out["f"])
        out.update(f_ranked=f_ranked, rank_order=order)
        n_targeted = self.class_count.sum()
        if n_targeted > 0:
            # MulticlassAccuracy answers in float32 and 0 for a class with no sample: the
            # number correct is recovered exactly (counts < 2**23), so acc_class and acc are
            # the float64 ratios, and NaN where a class has no sample
            correct = (self.class_accuracy.compute().double() * self.class_count).round()
            out["acc"] = correct.sum() / n_targeted
            out["loss"] = self.class_loss.sum() / n_targeted
            out["acc_class"] = correct / self.class_count
            out["loss_class"] = self.class_loss / self.class_count
        return {key: out[key] for key in (*BIAS_KEYS, *TARGET_KEYS) if key in out}
