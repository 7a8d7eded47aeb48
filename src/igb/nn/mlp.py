"""Fully connected network: ``depth`` hidden blocks of ``width`` units, then a linear head."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from igb.nn.classifier import Classifier


class MLP(Classifier):
    """Flattens any input shape; every hidden layer comes from the norm-act block builder."""

    layouts = frozenset({"dense"})

    def __init__(self, depth: int = 3, width: int = 256, **common: Any) -> None:
        super().__init__(**common)
        norm_act = self.norm_act
        in_features = math.prod(self.input_shape)
        blocks = []
        for _ in range(depth):
            blocks.append(norm_act.block(nn.Linear(in_features, width), width, "dense"))
            in_features = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(in_features, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x.flatten(1)))
