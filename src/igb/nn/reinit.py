"""Re-initialising one model replica as initialization ``seed`` of an ensemble.

``ensemble.vary`` says what an initialization samples:

- ``all``: the whole network is ``build_model(..., seed)``. Built-in models are
  re-initialised in place (``torch.manual_seed(seed); initialize(model, scheme)``, what
  ``build_model`` does); external ones (torchvision, timm, custom) are built again from
  the seed with the architecture's own initialization and copied in (with
  ``model.weights``, the backbone is the pretrained one for every seed).
- ``head``: the backbone is that of initialization ``seed0`` (or the pretrained weights)
  for every seed; only the head, every parameter whose shape depends on the number of
  classes, is that of ``build_model(..., seed)``.

Either way row ``k`` of an ensemble is a model that ``build_model`` gives alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn.build import build_model, head_module, model_class
from igb.nn.external import NATIVE, class_dependent, head_modules, is_external
from igb.nn.head_draws import head_replay
from igb.nn.init import InitSpec, initialize

VARY = ("all", "head")
Reinit = Callable[[nn.Module, int], None]
HeadSampler = Callable[[Sequence[int]], list[dict[str, torch.Tensor]]]
log = logging.getLogger(__name__)


def check_vary(vary: str) -> str:
    if vary not in VARY:
        raise ConfigError(
            "ensemble.vary", f"ensemble.vary={vary} unknown; allowed: {', '.join(VARY)}"
        )
    return vary


def head_names(
    model_cfg: Mapping[str, Any], norm_cfg: Mapping[str, Any], input_shape: tuple[int, ...],
    num_classes: int,
) -> frozenset[str]:  # fmt: skip
    """Names of the whole model's head parameters and buffers (see ``class_dependent``)."""
    return class_dependent(
        lambda c: build_model(model_cfg, norm_cfg, input_shape, c, seed=0, device="meta"),
        num_classes,
    )


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return dict((*model.named_parameters(), *model.named_buffers()))


@torch.no_grad()
def _copy_into(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Set every parameter and buffer of ``model`` (a replica may lack running stats)."""
    for name, tensor in _state(model).items():
        tensor.copy_(state[name])


def _require_live_head(state: Mapping[str, torch.Tensor], head: frozenset[str], name: Any) -> None:
    """Some architectures start with a zero head (timm's MLP-Mixer, torchvision's ViT):
    every logit is then equal at initialization and gamma is 0 / 0. Say so, and how out."""
    weights = [state[k] for k in head if state[k].dim() >= 2]
    if weights and not any(bool(w.any()) for w in weights):
        raise ConfigError(
            "model.head_init",
            f"model.head_init=native: {name} initialises its head to zero, so every logit is "
            "equal at initialization and gamma is undefined; use model.head_init=torch_default",
        )


def reinitializer(
    model_cfg: Mapping[str, Any], norm_cfg: Mapping[str, Any], input_shape: tuple[int, ...],
    num_classes: int, device: torch.device, vary: str = "all", seed0: int = 0,
) -> Reinit:  # fmt: skip
    """``reinit(model, seed)`` makes ``model`` initialization ``seed`` (see the module doc).

    Uses the global RNG (built-in models) or forks it: call it under the caller's lock."""
    check_vary(vary)
    input_shape = tuple(input_shape)
    external = is_external(model_class(model_cfg["_target_"]))
    if vary == "all" and not external:
        spec = InitSpec.from_config(model_cfg)
        head = head_module(model_cfg, norm_cfg, input_shape, num_classes, spec)

        def in_place(model: nn.Module, seed: int) -> None:
            torch.manual_seed(seed)
            initialize(model, spec, head)

        return in_place

    built, head = seeded_states(model_cfg, norm_cfg, input_shape, num_classes, device)
    if vary == "all":
        return lambda model, seed: _copy_into(model, built(seed))
    backbone = {k: v for k, v in built(seed0).items() if k not in head}

    def head_only(model: nn.Module, seed: int) -> None:
        fresh = built(seed)
        _copy_into(model, {**backbone, **{k: fresh[k] for k in head}})

    return head_only


def seeded_states(
    model_cfg: Mapping[str, Any], norm_cfg: Mapping[str, Any], input_shape: tuple[int, ...],
    num_classes: int, device: torch.device,
) -> tuple[Callable[[int], dict[str, torch.Tensor]], frozenset[str]]:  # fmt: skip
    """``(built, head)``: ``built(seed)`` is the state of ``build_model(..., seed)`` (a
    zero head that makes gamma undefined is refused), ``head`` its head's names."""
    input_shape = tuple(input_shape)
    head = head_names(model_cfg, norm_cfg, input_shape, num_classes)

    def built(seed: int) -> dict[str, torch.Tensor]:
        state = _state(build_model(model_cfg, norm_cfg, input_shape, num_classes, seed, device))
        _require_live_head(state, head, model_cfg.get("name"))
        return state

    return built, head


def head_sampler(
    model_cfg: Mapping[str, Any], built: Callable[[int], dict[str, torch.Tensor]],
    head: frozenset[str], device: torch.device, model: nn.Module, seed: int,
) -> tuple[HeadSampler, dict[str, torch.Tensor]]:  # fmt: skip
    """``(sample, built(seed))``: ``sample(seeds)`` gives the head parameters of
    ``build_model(..., s)`` for each seed, nothing else (``built``, ``head``:
    :func:`seeded_states` of the same model).

    The architecture's own head initialization comes after the backbone's draws: one whole
    build (that of ``seed``) is recorded, and each head then jumps the generator past the
    backbone's draws (:mod:`igb.nn.head_draws`); where the record cannot vouch for that,
    each head replays the whole initialization, and the log says why. An external model
    with ``model.head_init=torch_default`` draws its head alone, ``torch.manual_seed(seed)``
    then ``reset_parameters`` of the head's modules in module order
    (:func:`igb.nn.external.build_external`): that is replayed on ``model``'s own head
    modules."""
    external = is_external(model_class(model_cfg["_target_"]))
    if external and model_cfg.get("head_init", NATIVE) != NATIVE:
        return _reset_heads(model, head, device), built(seed)
    if device.type != "cpu":
        replay, state = f"the model is on {device}, not the CPU", built(seed)
    else:
        replay, state = head_replay(built, head, seed)
    if not isinstance(replay, str):
        return replay, state
    log.info("ensemble.vary=head: each head replays the whole initialization: %s", replay)
    return lambda seeds: [{k: v for k, v in built(s).items() if k in head} for s in seeds], state


def _reset_heads(model: nn.Module, head: frozenset[str], device: torch.device) -> HeadSampler:
    modules = [module for _, module in head_modules(model, head)]
    rng_devices = [device] if device.type == "cuda" else []

    @torch.no_grad()
    def sample(seeds: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        out = []
        for seed in seeds:
            with torch.random.fork_rng(devices=rng_devices):
                torch.manual_seed(seed)
                for module in modules:
                    module.reset_parameters()
            state = _state(model)
            out.append({k: state[k].clone() for k in head})
        return out

    return sample
