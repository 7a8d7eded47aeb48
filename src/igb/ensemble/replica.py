"""The model of an ensemble, built once and re-initialised in place for every seed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from igb.ensemble.plan import EvaluationPlan
from igb.nn import build_model


def empty_model(
    model_cfg: Mapping[str, Any],
    norm_cfg: Mapping[str, Any],
    input_shape: tuple[int, ...],
    num_classes: int,
    device: torch.device | str,
    norm_mode: str = "eval",
) -> nn.Module:
    """The architecture with uninitialised memory (every value is set by ``initialize``).

    With ``norm_mode="batch"`` its BatchNorm layers stop tracking running statistics
    (``torch.func.replace_all_batch_norm_modules_``): in batch-statistics mode they never
    use them, so the logits are bit-identical, and the model stops spending time on an
    update that would be thrown away (and under vmap there are no buffers to stack).
    """
    meta = build_model(model_cfg, norm_cfg, input_shape, num_classes, seed=0, device="meta")
    # meta.to_empty(device=device), but each tensor allocated from its sizes and strides:
    # torch's empty_like of a meta tensor takes a reference path that imports sympy, whose
    # import would dominate a small ensemble's start-up
    model = meta._apply(
        lambda t: torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=device)
    )
    if norm_mode == "batch":
        from torch.func import replace_all_batch_norm_modules_

        replace_all_batch_norm_modules_(model)
    return model


def plan_replica(plan: EvaluationPlan, input_shape: tuple[int, ...]) -> nn.Module:
    """:func:`empty_model` of ``plan``'s model, on its device, for its norm mode."""
    return empty_model(
        plan.model, plan.norm, tuple(input_shape), plan.num_classes, plan.device, plan.norm_mode
    )
