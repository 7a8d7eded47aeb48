"""Gaussian blobs generated in-process: the offline default, any number of classes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from igb.data.base import Arrays, InMemoryDataModule


class GaussianBlobsDataModule(InMemoryDataModule):
    """C Gaussian classes: ``x = m_y + N(0, I)``, means ``m_c = separation * z_c / sqrt(D)``.

    ``|m_c|`` is about ``separation`` noise standard deviations, so ``separation=0`` gives
    centred Gaussian inputs with random labels (the setting of the IGB theory). Labels
    are balanced. ``shape`` is the input shape (image-shaped by default so every model
    runs on it).
    """

    def __init__(
        self,
        num_classes: int = 10,
        num_samples: int = 2000,
        shape: Sequence[int] = (3, 32, 32),
        separation: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, **kwargs)
        self.num_samples = int(num_samples)
        self.shape = tuple(int(s) for s in shape)
        self.separation = float(separation)
        self.class_names = [f"blob{c}" for c in range(num_classes)]

    def expected_input_shape(self) -> tuple[int, ...]:
        return self.shape

    def _load(self) -> Arrays:
        g = torch.Generator().manual_seed(self.seed)
        c, n = self.num_classes, self.num_samples
        d = math.prod(self.shape)
        means = self.separation * torch.randn(c, d, generator=g) / math.sqrt(d)
        y = torch.arange(n) % c
        y = y[torch.randperm(n, generator=g)]
        x = means[y] + torch.randn(n, d, generator=g)
        return x.view(n, *self.shape), y, None, None
