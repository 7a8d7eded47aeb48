"""The authors' ResNet9 (the "ResNet" of their CIFAR-10 cats-vs-dogs runs).

Layout (``width=64`` gives their channel counts)::

    conv w -> conv 2w + pool -> res(conv 2w, conv 2w) -> conv 4w + pool -> conv 8w + pool
    -> res(conv 8w, conv 8w) -> global max-pool -> linear

Every conv block comes from the one :class:`~igb.nn.norm_act.NormAct` builder, so
``pre`` is ``conv -> norm -> act [-> pool]`` and ``post`` is ``conv -> act [-> pool] -> norm``
(the norm after the activation and the pool, as in the authors' ``conv_block``). A
residual unit adds its input to the output of its two blocks, with no norm after the sum.

The final global pool is a max over the last feature map (the authors' ``MaxPool2d(4)``
on a 4x4 map; ``global_pool=avg`` averages instead). A max of centred values is positive,
so after a ``post`` norm it re-creates the offset the norm removed: docs/studies.md has
the measured effect.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn.classifier import Classifier
from igb.nn.cnn import require_image
from igb.nn.memory_format import channels_last

GLOBAL_POOLS = ("max", "avg")


class ResNet9(Classifier):
    layouts = frozenset({"conv"})

    def __init__(
        self,
        width: int = 64,
        *,
        global_pool: str = "max",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        norm_act = self.norm_act
        if global_pool not in GLOBAL_POOLS:
            raise ConfigError(
                "model.global_pool",
                f"model.global_pool={global_pool!r}; allowed: {', '.join(GLOBAL_POOLS)}",
            )
        channels, h, w = require_image(self.input_shape, "resnet9")
        if min(h, w) < 8:
            raise ConfigError(
                "dataset",
                f"model=resnet9 pools three times by 2 and needs images of at least 8x8, "
                f"got {h}x{w}",
            )

        def block(cin: int, cout: int, pool: bool = False) -> nn.Sequential:
            conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
            return norm_act.block(conv, cout, "conv", pool=nn.MaxPool2d(2) if pool else None)

        self.global_pool = global_pool
        self.conv1 = block(channels, width)
        self.conv2 = block(width, 2 * width, pool=True)
        self.res1 = nn.Sequential(block(2 * width, 2 * width), block(2 * width, 2 * width))
        self.conv3 = block(2 * width, 4 * width, pool=True)
        self.conv4 = block(4 * width, 8 * width, pool=True)
        self.res2 = nn.Sequential(block(8 * width, 8 * width), block(8 * width, 8 * width))
        self.head = nn.Linear(8 * width, self.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, before the global pool."""
        out = self.conv2(self.conv1(channels_last(x)))
        out = self.res1(out) + out
        out = self.conv4(self.conv3(out))
        return self.res2(out) + out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.features(x)
        pooled = maps.amax(dim=(2, 3)) if self.global_pool == "max" else maps.mean(dim=(2, 3))
        return self.head(pooled)
