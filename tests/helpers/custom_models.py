"""User modules for ``model=custom`` runs in a subprocess (importable as ``helpers.*`` with
``tests`` on PYTHONPATH)."""

from __future__ import annotations

import torch
from torch import nn


class DefaultBiases(nn.Module):
    """A user's MLP with PyTorch's default (non-zero) Linear biases."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 16),
                                  nn.ReLU())  # fmt: skip
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


class NoHeadBias(DefaultBiases):
    """The same with a bias-free head: centring its input leaves every logit centred."""

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes)
        self.fc = nn.Linear(16, num_classes, bias=False)


class Tiny(nn.Module):
    """A sound user model for inputs of 3x8x8 (the tiny blobs): flatten, one Linear."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(192, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class ExitsInInit(Tiny):
    """A constructor that ends the process the way a script does."""

    def __init__(self, num_classes: int) -> None:
        raise SystemExit(3)


class HardExitInInit(Tiny):
    """A constructor that ends the process without unwinding (``os._exit``)."""

    def __init__(self, num_classes: int) -> None:
        import os

        os._exit(0)


class NeverReturns(Tiny):
    """A constructor that never returns."""

    def __init__(self, num_classes: int) -> None:
        import time

        while True:
            time.sleep(0.05)


class NaNLogits(Tiny):
    """Sound parameters, NaN logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * float("nan")


class OneLogit(Tiny):
    """One logit whatever the number of classes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)[:, :1]


class IntegerLogits(Tiny):
    """Logits of an integer dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).long()


class Enormous(nn.Module):
    """Two layers of 10^6 units: 4 TB of float32 weights (built on meta only)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(192, 10**6), nn.Linear(10**6, 10**6))
        self.fc = nn.Linear(10**6, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))
