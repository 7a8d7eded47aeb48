"""Centring-only norms: subtract a mean per feature/channel, never scale, no affine.

They isolate the one operation that decides neutrality: removing the shared offset
that a ReLU-like activation puts on every unit (the authors call these "Shift" and
"InitShift"). ``norm.kind=center`` subtracts the batch mean like BatchNorm does and
is measured the same way (batch statistics, :func:`igb.metrics.measure.batch_stat_mode`);
``norm.kind=center_init`` subtracts means frozen from the first training batch.

Layouts: ``dense`` (N, F), ``conv`` (N, C, H, W), ``token`` (N, T, D); the mean runs
over every axis except the feature/channel one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: layout -> axes the mean runs over, and the shape a per-feature vector takes
_AXES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "dense": ((0,), (1, -1)),
    "conv": ((0, 2, 3), (1, -1, 1, 1)),
    "token": ((0, 1), (1, 1, -1)),
}


class _Centering(nn.Module):
    def __init__(self, num_features: int, layout: str) -> None:
        super().__init__()
        if layout not in _AXES:
            raise ValueError(f"layout={layout!r}; allowed: {', '.join(_AXES)}")
        self.num_features = num_features
        self.layout = layout
        self._axes, self._view = _AXES[layout]

    def batch_mean(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self._axes)

    def per_feature(self, v: torch.Tensor) -> torch.Tensor:
        return v.view(self._view)

    def extra_repr(self) -> str:
        return f"{self.num_features}, layout={self.layout}"


class CenterNorm(_Centering):
    """``x - mean_batch(x)`` in training mode (the gradient flows through the mean, as in
    BatchNorm); in eval mode ``x - running_mean``, a running average updated on training
    steps only (grad enabled), so a measurement never moves it. At initialization the
    running mean is 0, so in eval mode the layer is the identity, exactly like BatchNorm:
    the initial bias must be measured with batch statistics."""

    def __init__(self, num_features: int, layout: str, momentum: float = 0.1) -> None:
        super().__init__(num_features, layout)
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_features))

    def reset_parameters(self) -> None:
        self.running_mean.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x - self.per_feature(self.running_mean)
        mean = self.batch_mean(x)
        if torch.is_grad_enabled():
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
        return x - self.per_feature(mean)


class CenterInitNorm(_Centering):
    """``x - m`` with ``m`` the per-feature mean of the first batch seen in a training
    step (training mode with grad enabled), then frozen: a buffer, saved in checkpoints
    with the frozen flag (extra state).

    Before that first step the layer behaves as :class:`CenterNorm` with batch statistics
    (training mode: what a bias measurement at step 0 uses) and as the identity in eval
    mode. The flag is a Python bool, so the layer also runs under ``torch.func.vmap``.
    """

    def __init__(self, num_features: int, layout: str) -> None:
        super().__init__(num_features, layout)
        self.register_buffer("init_mean", torch.zeros(num_features))
        self.frozen = False

    def reset_parameters(self) -> None:
        self.init_mean.zero_()
        self.frozen = False

    def get_extra_state(self) -> dict[str, Any]:
        return {"frozen": self.frozen}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.frozen = bool(state["frozen"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            return x - self.per_feature(self.init_mean)
        if not self.training:
            return x
        mean = self.batch_mean(x)
        if not torch.is_grad_enabled():  # a measurement: do not freeze
            return x - self.per_feature(mean)
        with torch.no_grad():
            self.init_mean.copy_(mean)
        self.frozen = True
        return x - self.per_feature(self.init_mean)
