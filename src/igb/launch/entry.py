"""What every entry point (``train.py``, ``eval.py``, ``ensemble.py``) does, in one place.

An entry point imports only Hydra before its pre-flight, so it names its checks and its
job by ``module:function`` and they are imported when first called: a bad key is reported
before torch and Lightning load (:mod:`igb.launch.preflight`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from igb.compat import known_run_mode
from igb.launch.preflight import Validator, preflight
from igb.launch.quick_exit import skip_final_collection

#: each entry's checks (they import torch: only after every job composed), and whether
#: Lightning is imported first: before Hydra sets up logging, Lightning keeps its own
#: console handler (one line per message); imported after, its lines also reach Hydra's
CHECKS: dict[str, tuple[str, bool]] = {
    "train": ("igb.launch.validate:validate", True),
    "eval": ("igb.launch.validate:validate_eval", True),
    "ensemble": ("igb.launch.validate_ensemble:validate_ensemble", False),
}


def lazy(target: str) -> Callable[..., Any]:
    """The function ``module:name``, imported when first called."""

    def call(*args: Any, **kwargs: Any) -> Any:
        module, name = target.split(":")
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    return call


def validator(config_name: str) -> Validator:
    """The checks the pre-flight runs on every job of ``config_name``."""
    target, lightning_first = CHECKS[config_name]

    def check(cfg: Any) -> object:
        if lightning_first:
            import lightning  # noqa: F401

        return lazy(target)(cfg)

    return check


def launch(config_name: str, main: Callable[[], Any]) -> None:
    """A quicker exit (:mod:`igb.launch.quick_exit`), the pre-flight, then Hydra's ``main``
    with the run mode the pre-flight read (:func:`igb.compat.known_run_mode`)."""
    skip_final_collection()
    with known_run_mode(preflight(config_name, validator(config_name))):
        main()
