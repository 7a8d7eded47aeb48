"""Gaussian blobs generated in-process: the offline default, any number of classes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from igb.data.base import Arrays, InMemoryDataModule, require_config

MEANS = ("random", "antipodal")


class GaussianBlobsDataModule(InMemoryDataModule):
    """C Gaussian classes: ``x = m_y + N(0, I)``.

    ``means=random``: ``m_c = separation * z_c / sqrt(D)`` with ``z_c ~ N(0, I_D)``, so
    ``|m_c|`` is about ``separation`` noise standard deviations; ``separation=0`` gives
    centred Gaussian inputs with random labels (the setting of the IGB theory).
    ``means=antipodal`` (two classes): ``m_0 = separation * (1, ..., 1) / sqrt(D)`` and
    ``m_1 = -m_0``, the authors' two blobs (``separation=1``: every coordinate of the
    centres is ``+-1/sqrt(D)``, ``|m_c| = 1``, centres 2 noise standard deviations apart).
    Labels are balanced (round-robin, then shuffled). ``test_samples``: draw a separate
    test set of that many points from the same blobs (an official test split:
    ``test_fraction`` is then unused); null cuts the test split from ``num_samples``.
    Everything is drawn from a generator seeded with ``seed``. ``shape`` is the shape of
    one input (any tuple, e.g. ``[100]`` for flat data; image-shaped by default so every
    model runs on it); a Hydra ``ListConfig`` or a single int is accepted.
    """

    def __init__(
        self,
        num_classes: int = 10,
        num_samples: int = 2000,
        shape: Sequence[int] | int = (3, 32, 32),
        separation: float = 1.0,
        means: str = "random",
        test_samples: int | None = None,
        **kwargs: Any,
    ) -> None:
        if test_samples is not None:
            kwargs["test_fraction"] = 0.0  # the separate test set is the test split
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
        require_config(
            means in MEANS,
            "dataset.means",
            f"dataset.means={means!r} is not one of {', '.join(MEANS)}",
        )
        require_config(
            means != "antipodal" or int(num_classes) == 2,
            "dataset.means",
            f"dataset.means=antipodal needs dataset.num_classes=2, got {num_classes}",
        )
        require_config(
            test_samples is None or int(test_samples) >= 1,
            "dataset.test_samples",
            f"dataset.test_samples={test_samples} must be a positive number (or null)",
        )
        self.means = str(means)
        self.test_samples = None if test_samples is None else int(test_samples)
        self.source_class_names = [f"blob{c}" for c in range(int(num_classes))]

    def expected_input_shape(self) -> tuple[int, ...]:
        return self.shape

    def class_means(self, g: torch.Generator) -> torch.Tensor:
        """``(C, D)`` blob centres (``g`` draws the random ones)."""
        c, d = self.source_num_classes(), math.prod(self.shape)
        if self.means == "antipodal":
            m0 = torch.full((d,), self.separation / math.sqrt(d))
            return torch.stack([m0, -m0])
        return self.separation * torch.randn(c, d, generator=g) / math.sqrt(d)

    def _draw(self, means: torch.Tensor, n: int, g: torch.Generator) -> tuple:
        c, d = means.shape
        y = (torch.arange(n) % c)[torch.randperm(n, generator=g)]
        x = means[y] + torch.randn(n, d, generator=g)
        return x.view(n, *self.shape), y

    def _load(self) -> Arrays:
        g = torch.Generator().manual_seed(self.seed)
        means = self.class_means(g)
        x, y = self._draw(means, self.num_samples, g)
        if self.test_samples is None:
            return x, y, None, None
        return (x, y, *self._draw(means, self.test_samples, g))
