"""Every use igb makes of a private API of Hydra, Lightning, torch or W&B, in one place.

Each entry of :data:`PRIVATE_APIS` names the private object, what igb uses it for, where,
and the version it was checked against; :func:`broken_apis` checks that each is still
there in the installed versions (``tests/test_compat.py`` fails with the API's name when
an upgrade removes or reshapes one). The code below is the only place that reaches into
them, except for ``igb.logging.csv_logger`` (a subclass of Lightning's CSV writer must
override its private hook; the names it uses are listed here and checked).

Each fills a gap the public APIs leave; one, :func:`known_run_mode`, saves a whole
composition of the configuration (``hydra.main`` has no public way to take a run mode that
is already known).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Hydra: expanding a grid exactly as the basic sweeper will (the pre-flight validates every
# job before Hydra creates a folder) and parsing the command line exactly as Hydra does.
# Hydra has no public API for either.
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser

__all__ = [
    "CHECKED_VERSIONS",
    "PRIVATE_APIS",
    "BasicSweeper",
    "PrivateAPI",
    "broken_apis",
    "get_args_parser",
    "batch_norm_base",
    "checkpoint_globals",
    "load_checkpoint",
    "safe_checkpoint_globals",
    "drop_unset_wandb_init_key",
    "hydra_missing_option",
    "hydra_unknown_key",
    "known_run_mode",
    "MODE_UNREAD",
    "logger_run",
    "progress_stopped",
    "set_ddp_subprocess_command",
    "split_grid",
    "wandb_record_module",
]

#: the versions every entry of :data:`PRIVATE_APIS` was checked against
CHECKED_VERSIONS = {
    "hydra-core": "1.3.8",
    "lightning": "2.6.6",
    "wandb": "0.31.0",
    "torch": "2.14.1",
}


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
        "igb.compat.split_grid (igb.launch.preflight, hydra_callbacks, multirun_analysis.grid)",
        "expand a grid into its jobs the way the basic sweeper does",
        ("overrides", "max_batch_size"),
    ),
    PrivateAPI(
        "hydra-core",
        "hydra._internal.hydra",
        "Hydra.get_mode",
        "igb.compat.known_run_mode (train.py, ensemble.py, eval.py)",
        "hand hydra.main the run mode the pre-flight read, instead of a composition for it",
        ("config_name", "overrides"),
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
        "lightning",
        "lightning.pytorch.loggers",
        "WandbLogger._wandb_init",
        "igb.logging.loggers (drop_unset_wandb_init_key)",
        "drop the `anonymous=None` Lightning always passes (wandb warns on any value)",
    ),
    PrivateAPI(
        "lightning",
        "lightning.pytorch.loggers",
        "WandbLogger._experiment",
        "igb.logging.loggers, igb.jobs.checkpoint (logger_run)",
        "the W&B run if one was started, without starting one (`.experiment` would)",
    ),
    PrivateAPI(
        "lightning",
        "lightning.pytorch.callbacks",
        "RichProgressBar._progress_stopped",
        "igb.callbacks.progress (progress_stopped)",
        "draw the statistics pass in the live bar only while it is on screen",
    ),
    PrivateAPI(
        "torch",
        "torch.nn.modules.batchnorm",
        "_BatchNorm",
        "igb.nn.norm_act (batch_norm_base)",
        "every BatchNorm class (torch's 1d/2d/3d, timm's BatchNormAct2d) in one isinstance",
    ),
    PrivateAPI(
        "wandb",
        "wandb.proto.wandb_internal_pb2",
        "Record",
        "multirun_analysis.wandb_files (wandb_record_module)",
        "decode the records of an offline .wandb file (no public reader exists)",
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


def split_grid(params: Mapping[str, Any], overrides: Sequence[str]) -> list[list[str]]:
    """The jobs of a grid as Hydra's basic sweeper orders them: ``hydra.sweeper.params``
    first, then the command line's overrides (which win on a key given by both). Hydra's own
    parser and sweeper, because the sweep syntax (``range``, ``choice``, globs, quoting) has
    no other exact reading; the pre-flight checks every job with it, and the end-of-grid
    report and the analysis match the jobs to folders (:func:`igb.jobs.grid.match_grid`)."""
    grid = [f"{k}={v}" for k, v in params.items()] + [str(o) for o in overrides]
    parsed = OverridesParser.create().parse_overrides(grid)
    return BasicSweeper.split_arguments(parsed, None)[0]


#: the pre-flight did not compose (``--help``, ``--cfg``, ...): Hydra reads the mode itself
MODE_UNREAD = object()


@contextlib.contextmanager
def known_run_mode(mode: Any) -> Iterator[None]:
    """``hydra.main`` with ``hydra.mode`` as the pre-flight read it from its own composition
    of the job (None, or ``RunMode.MULTIRUN`` from a preset; :data:`MODE_UNREAD`: leave
    Hydra alone). Hydra otherwise composes the whole configuration once more only to read
    that key (``Hydra.get_mode``), and has no public way to be told it."""
    if mode is MODE_UNREAD:
        yield
        return
    from hydra._internal.hydra import Hydra

    original = Hydra.get_mode

    def read_already(self: Any, config_name: str | None, overrides: list[str]) -> Any:
        return mode

    Hydra.get_mode = read_already  # type: ignore[method-assign]
    try:
        yield
    finally:
        Hydra.get_mode = original  # type: ignore[method-assign]


def set_ddp_subprocess_command(build: Callable[[int], tuple[Sequence[str], str]]) -> None:
    """Make Lightning's subprocess launcher start rank ``r`` with ``build(r)`` (command, cwd)
    instead of re-running the whole command line (see :mod:`igb.jobs.ddp`)."""
    from lightning.pytorch.strategies.launchers import subprocess_script

    if subprocess_script._hydra_subprocess_cmd is not build:
        subprocess_script._hydra_subprocess_cmd = build


# -- Lightning / torch / W&B private attributes, each used from here only ------------------


def drop_unset_wandb_init_key(logger: Any, key: str = "anonymous") -> None:
    """Remove ``key`` from a WandbLogger's pending ``wandb.init`` kwargs when it is None."""
    init = getattr(logger, "_wandb_init", None)
    if isinstance(init, dict) and key in init and init[key] is None:
        init.pop(key)


def logger_run(logger: Any) -> Any:
    """The W&B run a logger has started, or None (never starts one, unlike ``.experiment``)."""
    return getattr(logger, "_experiment", None)


def progress_stopped(bar: Any) -> bool:
    """Whether a RichProgressBar has taken its live display off the screen."""
    return bool(getattr(bar, "_progress_stopped", False))


def batch_norm_base() -> type:
    """torch's base class of every BatchNorm (and of timm's BatchNormAct2d)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    return _BatchNorm


def wandb_record_module() -> Any:
    """wandb's protobuf module that defines ``Record`` (the rows of a ``.wandb`` file)."""
    from wandb.proto import wandb_internal_pb2

    return wandb_internal_pb2


# -- checkpoints: read with torch.load(weights_only=True) and an allow-list -----------------


#: the classes beyond tensors and plain containers that ``torch.load(weights_only=True)``
#: must accept in igb's checkpoints: none. What Lightning writes there (loops, callback and
#: optimizer states, schedulers, the stateful loader's position) is plain data, checked on
#: every optimizer, scheduler and callback set (tests/test_compat.py,
#: tests/jobs/test_records.py). Lightning's saved hyper-parameters would need more
#: (an AttributeDict, which weights_only cannot rebuild; an OmegaConf node): igb saves none.
CHECKPOINT_GLOBALS: tuple[Any, ...] = ()


def checkpoint_globals() -> list[Any]:
    """:data:`CHECKPOINT_GLOBALS`, as ``torch.serialization.safe_globals`` takes them."""
    return list(CHECKPOINT_GLOBALS)


def safe_checkpoint_globals() -> Any:
    """Context in which ``torch.load(weights_only=True)`` (igb's, Lightning's resume) accepts
    :func:`checkpoint_globals`."""
    import torch

    return torch.serialization.safe_globals(checkpoint_globals())


def load_checkpoint(path: Any, mmap: bool = False) -> Any:
    """A checkpoint read without unpickling code (``weights_only=True``): the one way igb
    reads a ``.ckpt`` file from a job folder. ``mmap``: tensors are mapped, not read."""
    import torch

    with safe_checkpoint_globals():
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


# -- Hydra's error messages: the texts igb reads keys and options out of --------------------

#: Hydra 1.3's wording (checked in tests/test_compat.py against errors Hydra really raises)
_MISSING_OPTION = re.compile(r"Could not find '([^']+)/([^'/]+)'")
_UNKNOWN_KEY = (
    re.compile(r"Could not override '([^']+)'"),
    re.compile(r"Key '([^']+)' is not in struct"),
)


def hydra_missing_option(text: str) -> tuple[str, str] | None:
    """``(group, option)`` from Hydra's "Could not find 'group/option'" message."""
    m = _MISSING_OPTION.search(text)
    return (m.group(1), m.group(2)) if m else None


def hydra_unknown_key(text: str) -> str | None:
    """The key of Hydra's "Could not override 'key'" / "Key 'key' is not in struct"."""
    for pattern in _UNKNOWN_KEY:
        m = pattern.search(text)
        if m:
            return m.group(1)
    return None
