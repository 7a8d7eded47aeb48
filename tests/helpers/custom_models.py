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
