"""Fully connected network: ``depth`` hidden blocks of ``width`` units, then a linear head.

``unit_pool=max|avg`` makes every hidden block a multi-node activation: its ``width``
units, in consecutive groups of ``unit_pool_size``, are reduced to one value per group
(the maximum or the mean of the activations), so the next layer reads
``width / unit_pool_size`` units. Where the pool sits relative to the norm is the
placement's (:data:`igb.nn.norm_act.PLACEMENT_ORDER`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn.classifier import Classifier

UNIT_POOLS = ("none", "max", "avg")


class UnitPool(nn.Module):
    """Max or mean over consecutive groups of ``size`` units of a (N, F) layer."""

    def __init__(self, kind: str, size: int) -> None:
        super().__init__()
        self.kind, self.size = kind, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = x.unflatten(-1, (x.shape[-1] // self.size, self.size))
        return groups.amax(dim=-1) if self.kind == "max" else groups.mean(dim=-1)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, size={self.size}"


def check_unit_pool(unit_pool: str, size: int, width: int) -> int:
    """Units a pooled block hands on, or a one-line ConfigError naming the key."""
    if unit_pool not in UNIT_POOLS:
        raise ConfigError(
            "model.unit_pool", f"model.unit_pool={unit_pool}; allowed: {', '.join(UNIT_POOLS)}"
        )
    if unit_pool == "none":
        return width
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or width % size:
        raise ConfigError(
            "model.unit_pool_size",
            f"model.unit_pool_size={size} must be a positive integer dividing model.width={width}",
        )
    return width // size


class MLP(Classifier):
    """Flattens any input shape; every hidden layer comes from the norm-act block builder."""

    layouts = frozenset({"dense"})

    def __init__(
        self,
        depth: int = 3,
        width: int = 256,
        unit_pool: str = "none",
        unit_pool_size: int = 2,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        out_features = check_unit_pool(unit_pool, unit_pool_size, width)
        norm_act = self.norm_act
        in_features = math.prod(self.input_shape)
        blocks = []
        for _ in range(depth):
            pool = None if unit_pool == "none" else UnitPool(unit_pool, unit_pool_size)
            layer = nn.Linear(in_features, width)
            blocks.append(norm_act.block(layer, width, "dense", pool, pooled=out_features))
            in_features = out_features
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(in_features, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x.flatten(1)))
