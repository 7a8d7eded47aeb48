"""Norm and activation factories: placement and kind are data, not code paths.

Every model asks one :class:`NormAct` object for its hidden blocks, so the
only place that knows where a norm goes relative to the activation (and to the
pooling) is :data:`PLACEMENT_ORDER`, and the only place that knows how to build
a norm of a given kind for a given tensor layout is :data:`NORM_LAYERS`.
Adding a norm kind is one entry in :data:`NORM_LAYERS`; adding an activation
is one entry in :data:`ACTIVATIONS` (timm's ``create_norm_act_layer`` is the
model of this).

Layouts: ``dense`` is (N, F), ``conv`` is (N, C, H, W), ``token`` is (N, T, D).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from igb import PLACEMENTS
from igb.compat import batch_norm_base
from igb.errors import ConfigError
from igb.nn.centering import CenterInitNorm, CenterNorm

LAYOUTS = ("dense", "conv", "token")

#: Order of the parts of a hidden block for each placement. ``post`` puts the norm
#: last, after the pooling too: a max-pool after a centring norm re-creates a
#: positive offset (the max of centred values is positive; docs/science.md), so it must come
#: before the norm.
PLACEMENT_ORDER: dict[str, tuple[str, ...]] = {
    "none": ("layer", "act", "pool"),
    "pre": ("layer", "norm", "act", "pool"),
    "post": ("layer", "act", "pool", "norm"),
}


def _plain_sum(x: torch.Tensor, f: Callable, norm: Any, scale: float) -> torch.Tensor:
    return x + f(x) if scale == 1.0 else x + scale * f(x)


#: How a residual joins its input ``x``, its branch ``f`` and its norm for each placement:
#: Pre-LN ``x + F(Norm(x))``, Post-LN ``Norm(x + F(x))``, and without a norm the plain sum
#: (``scale`` multiplies the branch there). :class:`Residual` and the Swin blocks
#: (:mod:`igb.nn.swin`) read it, so that a placement means the same residual everywhere.
RESIDUAL_SUM: dict[str, Callable[[torch.Tensor, Callable, Any, float], torch.Tensor]] = {
    "none": _plain_sum,
    "pre": lambda x, f, norm, scale: x + f(norm(x)),
    "post": lambda x, f, norm, scale: norm(x + f(x)),
}


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the feature axis of (N, T, D) tokens: statistics over N*T."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class RMSNorm2d(nn.Module):
    """RMSNorm over (C, H, W) of each sample with a per-channel gain.

    Like GroupNorm(1, C) is LayerNorm for conv maps, this is RMSNorm for conv maps:
    it rescales but never centres, which is why it cannot remove the ReLU offset.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = x.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(self.eps).rsqrt()
        return x * rms * self.weight.view(1, -1, 1, 1)


def _groups(num_features: int, groups: int) -> int:
    if groups <= 0 or num_features % groups:
        raise ConfigError(
            "norm.groups",
            f"norm.kind=group needs the layer width to be a multiple of norm.groups={groups}, "
            f"but a layer has {num_features} features; choose norm.groups dividing the "
            f"model widths or a model width that is a multiple of {groups}",
        )
    return groups


NormBuilder = Callable[[int, "NormConfig"], nn.Module]

#: kind -> layout -> builder(num_features, cfg). A missing layout means "does not apply".
NORM_LAYERS: dict[str, dict[str, NormBuilder]] = {
    "batch": {
        "dense": lambda n, c: nn.BatchNorm1d(n, eps=c.eps, momentum=c.momentum),
        "conv": lambda n, c: nn.BatchNorm2d(n, eps=c.eps, momentum=c.momentum),
        "token": lambda n, c: TokenBatchNorm(n, eps=c.eps, momentum=c.momentum),
    },
    "layer": {
        "dense": lambda n, c: nn.LayerNorm(n, eps=c.eps),
        "conv": lambda n, c: nn.GroupNorm(1, n, eps=c.eps),
        "token": lambda n, c: nn.LayerNorm(n, eps=c.eps),
    },
    "rms": {
        "dense": lambda n, c: nn.RMSNorm(n, eps=c.eps),
        "conv": lambda n, c: RMSNorm2d(n, eps=c.eps),
        "token": lambda n, c: nn.RMSNorm(n, eps=c.eps),
    },
    "group": {
        "dense": lambda n, c: nn.GroupNorm(_groups(n, c.groups), n, eps=c.eps),
        "conv": lambda n, c: nn.GroupNorm(_groups(n, c.groups), n, eps=c.eps),
    },
    "instance": {
        "conv": lambda n, c: nn.InstanceNorm2d(n, eps=c.eps, affine=True),
    },
    # subtract the batch mean per feature/channel only (no scale, no affine)
    "center": {
        layout: (lambda n, c, layout=layout: CenterNorm(n, layout, momentum=c.momentum))
        for layout in LAYOUTS
    },
    # subtract the means of the first training batch, frozen
    "center_init": {
        layout: (lambda n, c, layout=layout: CenterInitNorm(n, layout)) for layout in LAYOUTS
    },
}

#: Activation name -> constructor. ``identity`` gives a linear network.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def has_norm(placement: str) -> bool:
    """Whether a block of ``placement`` holds a norm."""
    return "norm" in PLACEMENT_ORDER[placement]


def norm_before_act(placement: str) -> bool:
    """Whether the norm of ``placement`` reads the pre-activations (``pre``) rather than the
    activations (``post``); False without a norm."""
    order = PLACEMENT_ORDER[placement]
    return has_norm(placement) and order.index("norm") < order.index("act")


def norm_after_pool(placement: str) -> bool:
    """Whether the norm of ``placement`` reads the pooled units."""
    order = PLACEMENT_ORDER[placement]
    return has_norm(placement) and order.index("norm") > order.index("pool")


#: Whether a stack of residual blocks ends with a norm before the head (Pre-LN does).
FINAL_NORM: dict[str, bool] = {"none": False, "pre": True, "post": False}

#: Norm modules the bias measurement must switch to batch statistics (training mode).
BATCH_STAT_NORMS = (batch_norm_base(), CenterNorm, CenterInitNorm)


def kinds_for_layouts(layouts: set[str]) -> list[str]:
    """Norm kinds that apply to every layout in ``layouts``."""
    return sorted(k for k, table in NORM_LAYERS.items() if layouts <= table.keys())


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(
            "model.activation", f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]()


@dataclass(frozen=True)
class NormConfig:
    """The ``norm`` config group: where the norm sits and which kind it is."""

    placement: str = "none"
    kind: str = "batch"
    eps: float = 1e-5
    momentum: float = 0.1
    groups: int = 8

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise ConfigError(
                "norm", f"unknown placement {self.placement!r}; allowed: {', '.join(PLACEMENTS)}"
            )
        if self.placement != "none" and self.kind not in NORM_LAYERS:
            raise ConfigError(
                "norm.kind", f"unknown kind {self.kind!r}; allowed: {', '.join(NORM_LAYERS)}"
            )


class NormAct:
    """Builds norm layers, activations and whole hidden blocks for one configuration.

    Models receive one of these and never look at the placement themselves.
    """

    def __init__(self, norm: NormConfig, activation: str, model_name: str = "model") -> None:
        make_activation(activation)  # validate early
        self.cfg = norm
        self.activation = activation
        self.model_name = model_name

    @property
    def placement(self) -> str:
        return self.cfg.placement

    def act(self) -> nn.Module:
        return make_activation(self.activation)

    def norm(self, num_features: int, layout: str) -> nn.Module:
        """A norm layer for ``layout``, or Identity when the placement is ``none``."""
        if self.cfg.placement == "none":
            return nn.Identity()
        table = NORM_LAYERS[self.cfg.kind]
        if layout not in table:
            raise ConfigError(
                "norm.kind",
                f"norm.kind={self.cfg.kind} does not apply to the {layout} layers of "
                f"model={self.model_name}; allowed there: "
                f"{', '.join(kinds_for_layouts({layout}))}",
            )
        return table[layout](num_features, self.cfg)

    def block(
        self,
        layer: nn.Module,
        num_features: int,
        layout: str,
        pool: nn.Module | None = None,
        act: bool = True,
        pooled: int | None = None,
    ) -> nn.Sequential:
        """``layer`` followed by norm, activation and pooling in placement order.

        ``pooled``: the features the pool hands on, where it changes their number (a pool
        over units); a norm placed after the pool is built for them. Module names are the
        part names (``layer``, ``norm``, ``act``, ``pool``) so the structure can be read
        back (tests assert the order through them).
        """
        if pooled is not None and pool is not None and norm_after_pool(self.cfg.placement):
            num_features = pooled
        parts: dict[str, nn.Module | None] = {
            "layer": layer,
            "norm": self.norm(num_features, layout) if self.cfg.placement != "none" else None,
            "act": self.act() if act else None,
            "pool": pool,
        }
        seq = nn.Sequential()
        for name in PLACEMENT_ORDER[self.cfg.placement]:
            if parts[name] is not None:
                seq.add_module(name, parts[name])
        return seq

    def norm_act(self, num_features: int, layout: str) -> nn.Sequential:
        """Norm and activation without a layer (e.g. after a residual sum)."""
        return self.block(nn.Identity(), num_features, layout)[1:]

    def final_norm(self, num_features: int, layout: str) -> nn.Module:
        """The norm closing a residual stack (Pre-LN), Identity where the placement has none."""
        if FINAL_NORM[self.cfg.placement]:
            return self.norm(num_features, layout)
        return nn.Identity()

    def residual(
        self, branch: nn.Module, num_features: int, layout: str, scale: float = 1.0
    ) -> Residual:
        """Residual wrapper: pre = ``x + F(Norm(x))`` (Pre-LN), post = ``Norm(x + F(x))``,
        none = ``x + scale * F(x)`` (see :class:`Residual`)."""
        norm = self.norm(num_features, layout) if self.cfg.placement != "none" else None
        return Residual(branch, norm, self.cfg.placement, scale)


class Residual(nn.Module):
    """``x + F(x)`` with the norm inside the branch (pre) or after the sum (post)."""

    def __init__(
        self, branch: nn.Module, norm: nn.Module | None, placement: str, scale: float = 1.0
    ) -> None:
        super().__init__()
        self.placement = placement
        self.branch = branch
        #: multiplies the branch of a residual without norm (1: the plain sum)
        self.scale = float(scale)
        if norm is not None:
            self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RESIDUAL_SUM[self.placement](x, self.branch, getattr(self, "norm", None), self.scale)
