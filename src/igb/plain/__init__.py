"""Config values as plain Python, for the code below the launch.

The launch hands config nodes down as they come (OmegaConf containers from Hydra, plain
dicts from the ensemble plan and the tests); :func:`plain` turns either into dicts and
lists through the ``Mapping`` / ``Sequence`` protocols both implement, so that no module
below the launch needs the config library. :func:`locate` resolves a ``_target_`` import
path with importlib, the one resolver of class paths below the launch.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableSequence
from typing import Any

__all__ = ["locate", "plain"]


def plain(value: Any) -> Any:
    """``value`` with every nested mapping a dict and every nested list (a config's list
    node included) a list, interpolations resolved (a config node resolves them when
    read); tuples, strings and scalars are kept as they are."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, MutableSequence):
        return [plain(v) for v in value]
    return value


def locate(path: str) -> Any:
    """The object a ``module.name`` import path names (``igb.nn.mlp.MLP``). Errors are
    importlib's own (ModuleNotFoundError, AttributeError), so that a caller can name them
    in its one line."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)
