"""Gaussian blobs generated in-process: the offline default, any number of classes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from igb.data.base import Arrays, InMemoryDataModule, require_config


class GaussianBlobsDataModule(InMemoryDataModule):
    """C Gaussian classes: ``x = m_y + N(0, I)``, means ``m_c = separation * z_c / sqrt(D)``.

    ``z_c ~ N(0, I_D)``, so ``|m_c|`` is about ``separation`` noise standard deviations;
    ``separation=0`` gives centred Gaussian inputs with random labels (the setting of the
    IGB theory). Labels are balanced (round-robin, then shuffled). Everything is drawn
    from a generator seeded with ``seed``. ``shape`` is the shape of one input (any tuple,
    e.g. ``[100]`` for flat data; image-shaped by default so every model runs on it); a
    Hydra ``ListConfig`` or a single int is accepted.
    """

    def __init__(
        self,
        num_classes: int = 10,
        num_samples: int = 2000,
        shape: Sequence[int] | int = (3, 32, 32),
        separation: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, **kwargs)
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        self.shape = tuple(int(s) for s in dims)
        self.num_samples = int(num_samples)
        self.separation = float(separation)
        require_config(
            int(num_classes) >= 1,
            "dataset.num_classes",
            f"dataset.num_classes={num_classes} must be >= 1",
        )
        require_config(
            len(self.shape) >= 1 and all(s >= 1 for s in self.shape),
            "dataset.shape",
            f"dataset.shape={list(self.shape)} must be a non-empty list of positive sizes",
        )
        require_config(
            self.num_samples >= int(num_classes),
            "dataset.num_samples",
            f"dataset.num_samples={num_samples} must be >= dataset.num_classes={num_classes}",
        )
        require_config(
            self.separation >= 0,
            "dataset.separation",
            f"dataset.separation={separation} must be >= 0",
        )
        self.source_class_names = [f"blob{c}" for c in range(int(num_classes))]

    def expected_input_shape(self) -> tuple[int, ...]:
        return self.shape

    def _load(self) -> Arrays:
        g = torch.Generator().manual_seed(self.seed)
        c, n = self.source_num_classes(), self.num_samples
        d = math.prod(self.shape)
        means = self.separation * torch.randn(c, d, generator=g) / math.sqrt(d)
        y = (torch.arange(n) % c)[torch.randperm(n, generator=g)]
        x = means[y] + torch.randn(n, d, generator=g)
        return x.view(n, *self.shape), y, None, None
