"""What an ensemble evaluation computes and how: one frozen value instead of a dozen arguments.

:class:`EvaluationPlan` is the description :func:`igb.ensemble.evaluate.evaluate_ensemble`
receives beside the data (the evaluation inputs) and the seeds. A job builds it from its
spec (:meth:`EvaluationPlan.from_spec`); tests and benches build it by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from igb.ensemble.spec import EnsembleSpec
from igb.plain import plain


@dataclass(frozen=True)
class EvaluationPlan:
    """The model, the measurement and the way of running an ensemble evaluation.

    ``model`` / ``norm``: the model and norm configs (plain dicts once built). ``norm_mode``:
    ``batch`` (batch statistics over batches of ``batch_size``) or ``eval``. ``device``,
    ``method``, ``chunk_size``, ``workers``: how the initializations are run (the same rows
    either way). ``vary``: ``all`` samples every parameter, ``head`` only the classifier head
    on the backbone of initialization ``backbone_seed`` (default: the first seed evaluated).
    """

    model: Mapping[str, Any]
    norm: Mapping[str, Any]
    num_classes: int
    batch_size: int
    norm_mode: str = "batch"
    device: torch.device | str = "cpu"
    method: str = "auto"
    chunk_size: int | str | None = "auto"
    workers: int | str | None = "auto"
    vary: str = "all"
    backbone_seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", plain(self.model))
        object.__setattr__(self, "norm", plain(self.norm))
        object.__setattr__(self, "num_classes", int(self.num_classes))
        object.__setattr__(self, "batch_size", int(self.batch_size))

    @classmethod
    def from_spec(
        cls, spec: EnsembleSpec, num_classes: int, device: torch.device | str | None = None
    ) -> EvaluationPlan:
        """The plan of an ensemble job's model, norm and ``ensemble`` settings (``device``:
        the resolved device; default ``ensemble.device`` as written). The backbone of
        ``vary=head`` is ``ensemble.seed0``'s, for every block of seeds."""
        ens = spec.ensemble
        return cls(
            model=spec.model,
            norm=spec.norm,
            num_classes=num_classes,
            batch_size=ens.batch_size,
            norm_mode=ens.norm_mode,
            device=device if device is not None else ens.device,
            method=ens.method,
            chunk_size=ens.chunk_size,
            workers=ens.workers,
            vary=ens.vary,
            backbone_seed=ens.seed0,
        )
