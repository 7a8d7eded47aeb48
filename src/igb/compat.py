"""Every use igb makes of a private API of Hydra, Lightning or W&B, in one place.

Each entry of :data:`PRIVATE_APIS` names the private object, what igb uses it for, where,
and the version it was checked against; :func:`broken_apis` checks that each is still
there in the installed versions (``tests/test_compat.py`` fails with the API's name when
an upgrade removes or reshapes one). The code below is the only place that reaches into
them, except for ``igb.logging.csv_logger`` (a subclass of Lightning's CSV writer must
override its private hook; the names it uses are listed here and checked).

Nothing here is a speed hack: each fills a gap the public APIs leave. (``IGBModule`` used to
bypass ``nn.Module.__setattr__`` for the attributes Lightning sets around every hook call: 2.7
vs 0.45 us a call, 49 calls a step, so 0.11 ms a step, 0.3% of the default MLP's epoch on the
2-core development CPU; dropped, being far below the 5% that would justify it.)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Hydra: expanding a grid exactly as the basic sweeper will (the pre-flight validates every
# job before Hydra creates a folder) and parsing the command line exactly as Hydra does.
# Hydra has no public API for either.
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser

__all__ = [
    "CHECKED_VERSIONS",
    "PRIVATE_APIS",
    "BasicSweeper",
    "PrivateAPI",
    "broken_apis",
    "get_args_parser",
    "set_ddp_subprocess_command",
]

#: the versions every entry of :data:`PRIVATE_APIS` was checked against
CHECKED_VERSIONS = {"hydra-core": "1.3.8", "lightning": "2.6.6", "wandb": "0.31.0"}


@dataclass(frozen=True)
class PrivateAPI:
    """``module:attribute`` (dotted attributes allowed), who uses it and why."""

    package: str
    module: str
    attribute: str
    used_by: str
    why: str
    #: parameter names its signature must have (empty: not checked)
    parameters: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.module}:{self.attribute}"


PRIVATE_APIS: tuple[PrivateAPI, ...] = (
    PrivateAPI(
        "hydra-core",
        "hydra._internal.core_plugins.basic_sweeper",
        "BasicSweeper.split_arguments",
        "igb.launch.preflight, multirun_analysis.collect",
        "expand a grid into its jobs the way the basic sweeper does",
        ("overrides", "max_batch_size"),
    ),
    PrivateAPI(
        "hydra-core",
        "hydra._internal.utils",
        "get_args_parser",
        "igb.launch.preflight",
        "parse the command line as Hydra does (-m, --cfg, --help, overrides)",
    ),
    PrivateAPI(
        "lightning",
        "lightning.pytorch.strategies.launchers.subprocess_script",
        "_hydra_subprocess_cmd",
        "igb.jobs.ddp",
        "start a multirun job's DDP ranks as that job alone, in its folder",
        ("local_rank",),
    ),
    PrivateAPI(
        "lightning",
        "lightning.pytorch.loggers.csv_logs",
        "ExperimentWriter._check_log_dir_exists",
        "igb.logging.csv_logger",
        "keep an existing metrics.csv on resume (Lightning deletes it)",
        ("self",),
    ),
    PrivateAPI(
        "lightning",
        "lightning.pytorch.loggers.csv_logs",
        "ExperimentWriter.metrics_keys",
        "igb.logging.csv_logger",
        "reuse the existing file's column order when appending",
    ),
    PrivateAPI(
        "lightning",
        "lightning.pytorch.loggers.csv_logs",
        "ExperimentWriter._fs",
        "igb.logging.csv_logger",
        "read and rewrite metrics.csv through the writer's filesystem",
    ),
    PrivateAPI(
        "lightning",
        "lightning.pytorch.loggers",
        "CSVLogger._fs",
        "igb.logging.csv_logger",
        "create the log folder through the logger's filesystem",
    ),
    PrivateAPI(
        "lightning",
        "lightning.pytorch.loggers",
        "CSVLogger._experiment",
        "igb.logging.csv_logger",
        "the logger's writer, built once (the appending one)",
    ),
    PrivateAPI(
        "wandb",
        "wandb.sdk.lib.wbauth.authenticate",
        "_use_system_auth",
        "igb.logging.wandb_mode (mirrored, not called)",
        "decide online/offline without a prompt or a socket: where wandb looks for keys",
    ),
)


def _resolve(api: PrivateAPI) -> Any:
    obj: Any = importlib.import_module(api.module)
    for part in api.attribute.split("."):
        if isinstance(obj, type) and part not in dir(obj):
            # an instance attribute: set by the __init__ of the class or a base class
            sources = [
                inspect.getsource(c.__init__) for c in obj.__mro__[:-1] if "__init__" in vars(c)
            ]
            if not any(f"self.{part} =" in s or f"self.{part}:" in s for s in sources):
                raise AttributeError(f"no class of {obj.__name__} sets self.{part}")
            return None
        obj = getattr(obj, part)
    return obj


def broken_apis(apis: Sequence[PrivateAPI] = PRIVATE_APIS) -> list[str]:
    """One line per private API that is missing or changed shape (empty: all present)."""
    problems = []
    for api in apis:
        try:
            obj = _resolve(api)
        except (ImportError, AttributeError, OSError, TypeError) as exc:
            problems.append(f"{api.name} ({api.used_by}) is gone: {exc}")
            continue
        if api.parameters and obj is not None:
            params = list(inspect.signature(obj).parameters)
            missing = [p for p in api.parameters if p not in params]
            if missing:
                problems.append(f"{api.name} ({api.used_by}) lost parameters {missing}: {params}")
    return problems


def set_ddp_subprocess_command(build: Callable[[int], tuple[Sequence[str], str]]) -> None:
    """Make Lightning's subprocess launcher start rank ``r`` with ``build(r)`` (command, cwd)
    instead of re-running the whole command line (see :mod:`igb.jobs.ddp`)."""
    from lightning.pytorch.strategies.launchers import subprocess_script

    if subprocess_script._hydra_subprocess_cmd is not build:
        subprocess_script._hydra_subprocess_cmd = build
