"""Weight initialization schemes, selected by ``model.init``.

Models are constructed on the ``meta`` device (no memory, no random numbers) and then
every parameter and buffer is set here, in module order, from one seeded generator
state. So the parameters depend only on (architecture, scheme, seed): initialization
``i`` of an ensemble is rebuilt alone from seed ``i``, and nothing is initialised twice.
Biases are always zero (as in the paper): the bias we study must come from the
architecture, not from random bias terms.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from igb.errors import ConfigError


def _kaiming(w: torch.Tensor) -> None:
    nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")


def _xavier(w: torch.Tensor) -> None:
    nn.init.xavier_normal_(w)


def _trunc_normal(w: torch.Tensor) -> None:
    nn.init.trunc_normal_(w, std=0.02)  # ViT / Swin (timm's and the authors' Swin)


#: init name -> function applied to every weight matrix / conv kernel (None = PyTorch's own).
INITS: dict[str, Callable[[torch.Tensor], None] | None] = {
    "kaiming_normal": _kaiming,
    "xavier": _xavier,
    "trunc_normal": _trunc_normal,
    "torch_default": None,
}


def check_scheme(scheme: str) -> Callable[[torch.Tensor], None] | None:
    if scheme not in INITS:
        raise ConfigError("model.init", f"unknown init {scheme!r}; allowed: {', '.join(INITS)}")
    return INITS[scheme]


@torch.no_grad()
def initialize(model: nn.Module, scheme: str) -> None:
    """Set every parameter and buffer of ``model`` (which may hold uninitialised memory)."""
    fn = check_scheme(scheme)
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            if fn is None:
                module.reset_parameters()
            else:
                fn(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention):
            if fn is None:
                nn.init.xavier_uniform_(module.in_proj_weight)
            else:
                fn(module.in_proj_weight)
            if module.in_proj_bias is not None:
                nn.init.zeros_(module.in_proj_bias)
        elif hasattr(module, "reset_parameters"):
            # norms (weight 1, bias 0, running stats 0/1) and models' own extra parameters
            module.reset_parameters()
