"""Build a model from its config group and the ``norm`` group, reproducibly from a seed."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from igb.errors import ConfigError, not_a_key
from igb.nn.external import build_external, check_norm, is_external
from igb.nn.init import INIT_KEYS, InitSpec, initialize
from igb.nn.neutralize import check_mode, head_owner, neutralize
from igb.nn.norm_act import NormAct, NormConfig
from igb.plain import locate, plain

#: keys of a model config that are consumed here rather than passed to the model class.
_BUILD_KEYS = ("_target_", "name", "activation", "neutralize", *INIT_KEYS)


__all__ = ["build_model", "head_module", "model_class", "norm_config"]


def model_class(target: str) -> type:
    """The class ``model._target_`` names (a ValueError where it names something else)."""
    cls = locate(target)
    if not isinstance(cls, type):
        what = type(cls).__name__
        raise ValueError(f"Located non-class of type '{what}' while loading '{target}'")
    return cls


def _positive(cfg: Mapping[str, Any], key: str) -> None:
    value = cfg.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ConfigError(f"model.{key}", f"model.{key}={value} must be a positive integer")


def norm_config(norm_cfg: Mapping[str, Any]) -> NormConfig:
    known = NormConfig.__dataclass_fields__
    extra = sorted(set(norm_cfg) - set(known) - {"_target_"})
    if extra:
        raise ConfigError(
            f"norm.{extra[0]}", f"norm.{extra[0]} is not a norm option; allowed: {', '.join(known)}"
        )
    return NormConfig(**{k: v for k, v in norm_cfg.items() if k in known})


def build_model(
    model_cfg: Mapping[str, Any],
    norm_cfg: Mapping[str, Any],
    input_shape: tuple[int, ...],
    num_classes: int,
    seed: int,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Instantiate ``model_cfg._target_`` with a :class:`NormAct` and initialise it.

    The model is built on the meta device and initialised once from ``seed`` (the global
    RNG is forked, not consumed), so initialization ``i`` of an ensemble can be rebuilt
    alone from its seed. ``device="meta"`` only checks that the configuration builds.
    ``model.neutralize`` (:mod:`igb.nn.neutralize`) centres the head's input afterwards.
    """
    cfg = dict(model_cfg)
    mode = check_mode(cfg.pop("neutralize", "none"))
    model = _build(cfg, norm_cfg, input_shape, num_classes, seed, device)
    if mode == "none":
        return model
    name = cfg.get("name", cfg["_target_"])
    return neutralize(model, _owner(cfg, norm_cfg, input_shape, num_classes), mode, str(name))


def _owner(
    cfg: Mapping[str, Any], norm_cfg: Mapping[str, Any], input_shape: tuple[int, ...], c: int
) -> str:
    """The module holding the head (cached per configuration: found by building on meta)."""
    return _head_owner(json.dumps(plain(cfg), sort_keys=True),
                       json.dumps(plain(norm_cfg), sort_keys=True),
                       tuple(input_shape), c)  # fmt: skip


@functools.lru_cache(maxsize=64)
def _head_owner(cfg_json: str, norm_json: str, input_shape: tuple[int, ...], c: int) -> str:
    cfg, norm_cfg = json.loads(cfg_json), json.loads(norm_json)
    return head_owner(lambda k: _build(cfg, norm_cfg, input_shape, k, 0, "meta"), c,
                      str(cfg.get("name", cfg["_target_"])))  # fmt: skip


def _build(
    cfg: dict[str, Any], norm_cfg: Mapping[str, Any], input_shape: tuple[int, ...],
    num_classes: int, seed: int, device: torch.device | str,
) -> nn.Module:  # fmt: skip
    for key in ("depth", "width"):
        _positive(cfg, key)
    cls = model_class(cfg["_target_"])
    name = cfg.get("name", cls.__name__.lower())
    # external architectures (model=torchvision|timm|custom) build and initialise themselves
    check_norm(cls, norm_cfg, name)
    if is_external(cls):
        return build_external(cls, cfg, tuple(input_shape), num_classes, seed, device)
    norm_act = NormAct(norm_config(norm_cfg), cfg.get("activation", "relu"), name)
    kwargs = {k: v for k, v in cfg.items() if k not in _BUILD_KEYS}
    spec = InitSpec.from_config(cfg)
    with torch.device("meta"):
        try:
            model = cls(
                input_shape=tuple(input_shape), num_classes=num_classes, norm_act=norm_act,
                **kwargs,
            )  # fmt: skip
        except TypeError as exc:  # a key the class does not take (``+model.foo=1``)
            error = not_a_key(exc, "model", name, list(cfg), kwargs)
            if error is None:
                raise
            raise error from None
    if torch.device(device).type == "meta":
        return model
    model = model.to_empty(device=device)
    with torch.random.fork_rng(
        devices=[torch.device(device)] if torch.device(device).type == "cuda" else []
    ):
        torch.manual_seed(seed)
        initialize(model, spec, head_module(cfg, norm_cfg, input_shape, num_classes, spec))
    return model


def head_module(
    cfg: Mapping[str, Any], norm_cfg: Mapping[str, Any], input_shape: tuple[int, ...],
    num_classes: int, spec: InitSpec,
) -> str | None:  # fmt: skip
    """The module holding the head, where ``spec`` draws it apart from the hidden layers."""
    if not spec.needs_head:
        return None
    cfg = {k: v for k, v in cfg.items() if k != "neutralize"}
    return _owner(cfg, norm_cfg, input_shape, num_classes)
