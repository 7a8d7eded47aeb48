"""Weight initialization schemes, selected by ``model.init``.

Models are constructed on the ``meta`` device (no memory, no random numbers) and then
every parameter and buffer is set here, in module order, from one seeded generator
state. So the parameters depend only on (architecture, scheme, seed): initialization
``i`` of an ensemble is rebuilt alone from seed ``i``, and nothing is initialised twice.

Biases are zero by default: the bias studied by the placement paper comes from the
architecture, not from random bias terms. ``model.bias_var`` draws every bias of every
Linear / conv layer (the head included) from ``N(0, bias_var)`` instead, and
``model.init=normal`` draws every weight from ``N(0, weight_var / fan_in)``: the two axes
of the mean-field phase diagram (:mod:`igb.theory.meanfield`). ``model.head_weight_var``
and ``model.head_bias_var`` set the head apart (null: as the hidden layers). A bias in
front of a norm that removes it (BatchNorm or LayerNorm right after the Linear) changes
nothing downstream; it is drawn all the same, so the seeds stay aligned across placements.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from igb.errors import ConfigError


def _kaiming(w: torch.Tensor) -> None:
    nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")


def _xavier(w: torch.Tensor) -> None:
    nn.init.xavier_normal_(w)


def _trunc_normal(w: torch.Tensor) -> None:
    nn.init.trunc_normal_(w, std=0.02)  # ViT / Swin (timm's and the authors' Swin)


#: init name -> function applied to every weight matrix / conv kernel (None = PyTorch's own;
#: ``normal`` is set from ``model.weight_var`` by :class:`InitSpec`).
INITS: dict[str, Callable[[torch.Tensor], None] | None] = {
    "kaiming_normal": _kaiming,
    "xavier": _xavier,
    "trunc_normal": _trunc_normal,
    "torch_default": None,
    "normal": None,
}
#: the keys of a model config read here
INIT_KEYS = ("init", "weight_var", "bias_var", "head_weight_var", "head_bias_var")


def check_scheme(scheme: str) -> Callable[[torch.Tensor], None] | None:
    if scheme not in INITS:
        raise ConfigError("model.init", f"unknown init {scheme!r}; allowed: {', '.join(INITS)}")
    return INITS[scheme]


def _variance(cfg: Mapping[str, Any], key: str, positive: bool) -> float | None:
    value = cfg.get(key)
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        what = "a positive number" if positive else "a number >= 0"
        raise ConfigError(f"model.{key}", f"model.{key}={value} must be {what}")
    return float(value)


@dataclass(frozen=True)
class InitSpec:
    """What :func:`initialize` draws: the scheme, and the variances of ``model.init=normal``
    and of the biases (the head's are None: as the hidden layers')."""

    scheme: str = "kaiming_normal"
    weight_var: float | None = None
    bias_var: float = 0.0
    head_weight_var: float | None = None
    head_bias_var: float | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> InitSpec:
        """The spec of a model config, or a one-line ConfigError naming the key."""
        scheme = str(cfg.get("init", "kaiming_normal"))
        check_scheme(scheme)
        weight_var = _variance(cfg, "weight_var", positive=True)
        head_weight_var = _variance(cfg, "head_weight_var", positive=True)
        if scheme == "normal" and weight_var is None:
            raise ConfigError(
                "model.weight_var",
                "model.init=normal needs model.weight_var (Var W = weight_var / fan_in), "
                "a positive number",
            )
        if scheme != "normal" and (weight_var, head_weight_var) != (None, None):
            key = "weight_var" if weight_var is not None else "head_weight_var"
            raise ConfigError(
                f"model.{key}",
                f"model.{key} applies to model.init=normal only (model.init={scheme})",
            )
        return cls(
            scheme=scheme,
            weight_var=weight_var,
            bias_var=_variance(cfg, "bias_var", positive=False) or 0.0,
            head_weight_var=head_weight_var,
            head_bias_var=_variance(cfg, "head_bias_var", positive=False),
        )

    @property
    def needs_head(self) -> bool:
        """Whether the head is drawn apart from the hidden layers."""
        return (self.head_weight_var, self.head_bias_var) != (None, None)

    def layer(self, head: bool) -> tuple[float | None, float]:
        """(weight variance times fan_in, or None: the scheme's; bias variance) of a layer."""
        if head:
            w = self.weight_var if self.head_weight_var is None else self.head_weight_var
            b = self.bias_var if self.head_bias_var is None else self.head_bias_var
            return w, b
        return self.weight_var, self.bias_var


def _weight(w: torch.Tensor, fn: Callable[[torch.Tensor], None] | None, var: float | None) -> bool:
    """Draw ``w``; False where PyTorch's own reset must do it."""
    if var is not None:
        nn.init.normal_(w, std=math.sqrt(var / w[0].numel()))  # fan_in: one output's inputs
    elif fn is not None:
        fn(w)
    else:
        return False
    return True


def _bias(b: torch.Tensor | None, var: float) -> None:
    if b is None:
        return
    if var > 0:
        nn.init.normal_(b, std=math.sqrt(var))
    else:
        nn.init.zeros_(b)


@torch.no_grad()
def initialize(model: nn.Module, init: InitSpec | str, head: str | None = None) -> None:
    """Set every parameter and buffer of ``model`` (which may hold uninitialised memory).

    ``head``: the name of the module holding the head, where :attr:`InitSpec.needs_head`."""
    spec = InitSpec(scheme=init) if isinstance(init, str) else init
    fn = check_scheme(spec.scheme)
    head_module = model.get_submodule(head) if head else None
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            w_var, b_var = spec.layer(module is head_module)
            if not _weight(module.weight, fn, w_var):
                module.reset_parameters()
            _bias(module.bias, b_var)
        elif isinstance(module, nn.MultiheadAttention):
            if not _weight(module.in_proj_weight, fn, spec.weight_var):
                nn.init.xavier_uniform_(module.in_proj_weight)
            _bias(module.in_proj_bias, spec.bias_var)
        elif hasattr(module, "reset_parameters"):
            # norms (weight 1, bias 0, running stats 0/1) and models' own extra parameters
            module.reset_parameters()
