"""Trained weights from another job: the checkpoint a path names, loaded into a model.

``python eval.py ckpt_path=<path>`` measures them, ``python train.py init_from=<path>``
starts from them. ``<path>`` is a job folder (its ``checkpoints/last.ckpt``) or a
checkpoint file: igb's or Lightning's (``state_dict`` with the module's ``model.``
prefix) or a plain ``state_dict`` of the network (``torch.save(net.state_dict(), f)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from igb.compat import load_checkpoint
from igb.errors import ConfigError
from igb.jobs.identity import load_saved_config
from igb.jobs.integrity import last_checkpoint

#: the attribute under which igb.training.module.IGBModule holds the network
MODULE_PREFIX = "model."


def resolve_checkpoint(path: str | Path, key: str) -> tuple[Path, Path | None]:
    """(the checkpoint file, the job folder that wrote it or None) for ``key=path``."""
    given = Path(path).expanduser()
    if given.is_dir():
        ckpt = last_checkpoint(given)
        if not ckpt.is_file():
            raise ConfigError(key, f"{key}={path}: the folder holds no {ckpt.relative_to(given)}")
        return ckpt.resolve(), given.resolve()
    if not given.is_file():
        raise ConfigError(key, f"{key}={path}: no such file or folder; name a job folder or "
                          "a checkpoint file")  # fmt: skip
    folder = given.resolve().parent.parent  # <job>/checkpoints/<file>
    return given.resolve(), folder if load_saved_config(folder) is not None else None


def read_checkpoint(ckpt: Path, key: str) -> dict[str, Any]:
    """The checkpoint's dictionary. ``weights_only``: a file named on the command line may
    come from anywhere, and unpickling it could run code; igb's and Lightning's
    checkpoints (tensors, numbers, strings, the callbacks' states) load this way."""
    try:
        data = load_checkpoint(ckpt)
    except Exception as exc:  # noqa: BLE001 - any unreadable file: one line
        raise ConfigError(key, f"{key}={ckpt}: not a readable checkpoint ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(key, f"{key}={ckpt}: holds a {type(data).__name__}, not a "
                          "checkpoint or state_dict")  # fmt: skip
    return data


def network_state(data: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's ``state_dict`` in a checkpoint (Lightning's, without the module's
    prefix) or the checkpoint itself when it is one."""
    state = data.get("state_dict", data)
    if state and all(str(k).startswith(MODULE_PREFIX) for k in state):
        return {str(k)[len(MODULE_PREFIX) :]: v for k, v in state.items()}
    return dict(state)


def aligned_state(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` under the model's own names: a plain ``state_dict`` of a torchvision or
    timm network (saved outside igb) names its entries without the ``net.`` of the
    adapter igb wraps it in (:class:`igb.nn.external.ExternalNet`)."""
    own = model.state_dict()
    if any(k in own for k in state) or not isinstance(getattr(model, "net", None), nn.Module):
        return state
    return {f"net.{k}": v for k, v in state.items()}


def fit_problem(model: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """Why ``state`` does not fit ``model`` (a missing, unexpected or differently shaped
    entry), or None. Shapes only: ``model`` may live on the meta device."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        return f"{what} ({len(missing)} missing, {len(unexpected)} unexpected keys)"
    for name, value in own.items():
        if tuple(value.shape) != tuple(state[name].shape):
            return (
                f"{name} has shape {list(state[name].shape)} there, {list(value.shape)} in "
                "the model"
            )
    return None


def check_fit(model: nn.Module, data: dict[str, Any], key: str, source: Path) -> None:
    """One line naming the first entry of the checkpoint that does not fit ``model``."""
    problem = fit_problem(model, aligned_state(model, network_state(data)))
    if problem:
        raise ConfigError(
            key,
            f"{key}={source} does not fit the model: {problem}; build the model it was trained as",
        )


def load_network(model: nn.Module, data: dict[str, Any], key: str, source: Path) -> None:
    """Load the checkpoint's weights into ``model`` (:func:`check_fit` first)."""
    check_fit(model, data, key, source)
    model.load_state_dict(aligned_state(model, network_state(data)))
