"""CIFAR-style ResNet (ResNet-18 layout with ``depth=2`` blocks per stage); igb's own
network, not the authors' ResNet9 (:mod:`igb.nn.resnet9`).

Each basic block is ``conv -> NormAct -> conv -> (+ shortcut) -> NormAct`` where
NormAct is ``norm, act`` for ``pre`` and ``act, norm`` for ``post``. So with ``post``
the norm is the last operation of every block, right before the next conv (as the
authors' ResNet101 code places it); with ``pre`` the block is ResNet v1 with the second
norm after the residual sum instead of before it.

``stage_blocks`` sets the number of blocks of each stage (overriding ``depth`` and
``stages``): ``[3, 4, 23, 3]`` with width 64 and ``stem=imagenet`` (7x7 stride-2 conv and a
3x3 stride-2 max-pool, in placement order) is the authors' ResNet101-v2 layout of basic
blocks, with ``post`` their ``bn_after``; their ``bn_before`` puts the block's second
norm before the residual sum, and their shortcut projections carry a BatchNorm in both
settings (here a bare 1x1 conv).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn.classifier import Classifier
from igb.nn.cnn import require_image
from igb.nn.memory_format import channels_last
from igb.nn.norm_act import NormAct


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm_act: NormAct) -> None:
        super().__init__()
        conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.unit1 = norm_act.block(conv1, cout, "conv")
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = (
            nn.Identity() if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride=stride)
        )
        self.out = norm_act.norm_act(cout, "conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.conv2(self.unit1(x)) + self.shortcut(x))


class ResNet(Classifier):
    """Stem conv, four stages (width x 1, 2, 4, 8; stride 1, 2, 2, 2), GAP, linear head."""

    layouts = frozenset({"conv"})

    def __init__(
        self,
        depth: int = 2,
        width: int = 64,
        stages: int = 4,
        stage_blocks: Sequence[int] | None = None,
        stem: str = "cifar",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        norm_act = self.norm_act
        channels, _, _ = require_image(self.input_shape, "resnet")
        if stem == "cifar":
            self.stem = norm_act.block(nn.Conv2d(channels, width, 3, padding=1), width, "conv")
        elif stem == "imagenet":
            conv = nn.Conv2d(channels, width, 7, stride=2, padding=3)
            pool = nn.MaxPool2d(3, stride=2, padding=1)
            self.stem = norm_act.block(conv, width, "conv", pool=pool)
        else:
            raise ConfigError("model.stem", f"model.stem={stem!r} is not one of cifar, imagenet")
        counts = [depth] * stages if stage_blocks is None else [int(b) for b in stage_blocks]
        if not counts or any(b < 1 for b in counts):
            raise ConfigError(
                "model.stage_blocks",
                f"model.stage_blocks={stage_blocks} must be a non-empty list of positive counts",
            )
        blocks = []
        cin = width
        for stage, n_blocks in enumerate(counts):
            cout = width * 2**stage
            for i in range(n_blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(cin, cout, stride, norm_act))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(channels_last(x))).mean(dim=(2, 3)))
