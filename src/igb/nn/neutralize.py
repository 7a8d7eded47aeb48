"""``model.neutralize``: centre the features the head reads, on any model.

- ``none`` (default): the model as built;
- ``head``: :class:`igb.nn.centering.CenterNorm` on the head's input (the batch mean of
  every feature subtracted, like BatchNorm without the scale);
- ``head_frozen``: :class:`igb.nn.centering.CenterInitNorm` (the mean of the first
  training batch, then frozen).

The head is found as everywhere else (the parameters whose shape depends on the number
of classes, :func:`igb.nn.external.class_dependent`); it must be one ``nn.Linear``. The
centring module becomes its child ``center`` and runs as its forward pre-hook, so the
head's own parameter names (checkpoints, ``ensemble.vary=head``) do not change. It has
no random draws: initialization ``i`` is the same model with the centring in front. The
head's bias is removed (it would add a class preference after the centring).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn.centering import CenterInitNorm, CenterNorm

log = logging.getLogger(__name__)

MODES = ("none", "head", "head_frozen")
_LAYERS = {"head": CenterNorm, "head_frozen": CenterInitNorm}


def check_mode(mode: object) -> str:
    if mode not in MODES:
        raise ConfigError(
            "model.neutralize", f"model.neutralize={mode}; allowed: {', '.join(MODES)}"
        )
    return str(mode)


def head_owner(make: Callable[[int], nn.Module], num_classes: int, model_name: str) -> str:
    """The one module that holds the head (``make(c)`` builds the model on meta)."""
    from igb.nn.external import class_dependent, owner_modules

    owners = owner_modules(class_dependent(make, num_classes))
    if len(owners) != 1:
        raise ConfigError(
            "model.neutralize",
            f"model.neutralize cannot apply to model={model_name}: its head is spread over "
            f"{len(owners)} modules ({', '.join(owners) or 'none'}); use model.neutralize=none",
        )
    return owners[0]


def _center_head(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return (module.center(args[0]), *args[1:])


def neutralize(model: nn.Module, owner: str, mode: str, model_name: str) -> nn.Module:
    """Put the centring of ``mode`` (``head`` or ``head_frozen``; :func:`igb.nn.build_model`
    does not call it for ``none``) in front of the head ``owner`` of ``model`` (in place)."""
    head = model.get_submodule(owner)
    if type(head) is not nn.Linear:
        raise ConfigError(
            "model.neutralize",
            f"model.neutralize={mode} cannot apply to model={model_name}: its head {owner} is "
            f"a {type(head).__name__}, not an nn.Linear; use model.neutralize=none",
        )
    if head.bias is not None:
        # a bias after the centring would put back the class preference the centring
        # removes (PyTorch's default Linear draws one): the head has none
        head.register_parameter("bias", None)
        log.info("model.neutralize=%s: removed the bias of the head %s", mode, owner)
    device = head.weight.device
    center = _LAYERS[mode](head.in_features, "dense").to(device)
    if device.type != "meta":
        center.reset_parameters()
    head.add_module("center", center)
    head.register_forward_pre_hook(_center_head)
    return model
