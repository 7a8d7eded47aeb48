"""A plain convolutional stack with pooling, then global average pooling and a linear head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn.classifier import Classifier
from igb.nn.memory_format import channels_last

POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def require_image(input_shape: tuple[int, ...], model: str) -> tuple[int, int, int]:
    """Conv models need (C, H, W) inputs; say which key to change otherwise."""
    if len(input_shape) != 3:
        raise ConfigError(
            "dataset.shape",
            f"model={model} needs image-shaped inputs (C, H, W) but the dataset gives "
            f"{list(input_shape)}; use model=mlp or set dataset.shape to [C, H, W]",
        )
    return input_shape  # type: ignore[return-value]


class CNN(Classifier):
    """``depth`` blocks of conv3x3 -> (norm, act, pool in placement order).

    Channels start at ``width`` and double after each pooled block up to ``8 * width``.
    A block is pooled (2x2) while the feature map is at least 4x4, so maps never
    shrink below 2x2 (instance norm needs more than one spatial element).
    """

    layouts = frozenset({"conv"})

    def __init__(self, depth: int = 4, width: int = 32, pool: str = "max", **common: Any) -> None:
        super().__init__(**common)
        norm_act = self.norm_act
        if pool not in POOLS:
            raise ConfigError("model.pool", f"unknown pool {pool!r}; allowed: {', '.join(POOLS)}")
        channels, h, w = require_image(self.input_shape, "cnn")
        blocks = []
        out = width
        for _ in range(depth):
            pooled = min(h, w) >= 4
            conv = nn.Conv2d(channels, out, kernel_size=3, padding=1)
            blocks.append(
                norm_act.block(conv, out, "conv", pool=POOLS[pool](2) if pooled else None)
            )
            channels = out
            if pooled:
                h, w = h // 2, w // 2
                out = min(out * 2, 8 * width)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(channels_last(x)).mean(dim=(2, 3)))
