"""Pre-flight for the Hydra entry points: bad input -> one line, exit code 2, no folders.

Hydra creates the sweep/job folders before a task function runs and prints multi-line
errors for unknown options or keys. ``preflight`` composes every job of the requested
run or grid first (the same way Hydra's basic sweeper expands it, including grids that
an ``experiment`` puts under ``hydra.sweeper.params``), validates each with
:func:`igb.launch.validate.validate`, and exits with one clear line on the first problem.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from igb.compat import (
    MODE_UNREAD,
    get_args_parser,
    hydra_missing_option,
    hydra_unknown_key,
    split_grid,
)
from igb.errors import ConfigError, JobError, one_line
from igb.launch.conf_dir import find_conf_dir
from igb.launch.output_paths import output_path_problem
from igb.launch.overrides import (
    added_key_problem,
    given_twice,
    grid_size,
    parse,
    too_many_jobs,
    value_problem,
)
from igb.launch.search_space import BASIC_SWEEPER, probe_jobs

CONF_DIR = find_conf_dir()
Validator = Callable[[DictConfig], object]
#: the folder outputs and data go under (``paths.root_dir``); the launch directory if unset
ROOT_ENV = "IGB_ROOT"


def _options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _explain_composition(exc: Exception, overrides: Sequence[str], config_name: str) -> str:
    """Turn Hydra's multi-line composition errors into one line naming key and allowed values."""
    text = str(exc)
    if isinstance(exc, MissingConfigException):
        found = hydra_missing_option(text)
        if found:
            group, option = found
            allowed = list(exc.options or []) or _options(group)
            return f"{group}={option} is not an option of '{group}'; allowed: {', '.join(allowed)}"
    key = hydra_unknown_key(text)
    if key:
        rest = [o for o in overrides if not o.lstrip("+~").startswith(key)]
        try:
            parent, node = _deepest_node(compose_job(config_name, rest), key)
            keys = sorted(k for k in node.keys())
        except Exception:  # noqa: BLE001 - best effort for the message only
            parent, keys = (key.rsplit(".", 1)[0] if "." in key else ""), []
        where = f"'{parent}'" if parent else "the config"
        return f"{key} is not a config key; keys of {where}: {', '.join(map(str, keys))}"
    return one_line(exc)


def _deepest_node(cfg: DictConfig, key: str) -> tuple[str, DictConfig]:
    """The deepest node of ``cfg`` on the way to ``key`` (``trainer.max_epochs`` in a config
    without ``trainer``: the config itself), and its path."""
    path, node = "", cfg
    parts = key.split(".")
    for i in range(1, len(parts)):
        sub = OmegaConf.select(cfg, ".".join(parts[:i]))
        if not isinstance(sub, DictConfig):
            break
        path, node = ".".join(parts[:i]), sub
    return path, node


def compose_job(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose one job's config; runtime fields are filled so interpolations resolve."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.cwd = os.getcwd()
        cfg.hydra.runtime.output_dir = os.path.join(os.getcwd(), "<not-created-by-preflight>")
    HydraConfig.instance().set_config(cfg)
    return cfg


def search_path_override(folder: Path) -> str:
    """The override adding ``folder`` to Hydra's config search path, after ``conf/``: what
    ``--config-dir`` does (the folder's options add to igb's; igb's own files win)."""
    return f"hydra.searchpath=['file://{folder}']"


def is_multirun(cfg: DictConfig, flag: bool) -> bool:
    """``-m``, or ``hydra.mode: MULTIRUN`` in the config (a search preset sets it)."""
    return flag or OmegaConf.select(cfg, "hydra.mode") == RunMode.MULTIRUN


def expand_jobs(config_name: str, overrides: Sequence[str], multirun: bool) -> list[list[str]]:
    """The override list of every job Hydra's basic sweeper would launch (the first job
    and the bounds of the search space for another sweeper: :func:`launch_jobs`)."""
    cfg = compose_job(config_name, probe_jobs({}, overrides)[0])
    return launch_jobs(cfg, overrides, multirun)


def launch_jobs(cfg: DictConfig, overrides: Sequence[str], multirun: bool) -> list[list[str]]:
    """The override list of every job the launch runs: all of them for Hydra's basic
    sweeper (``cfg`` is the first job's composed config, which names the sweeper); for a
    sweeper that picks its jobs as it runs, the first job and the bounds of its search
    space (:func:`igb.launch.search_space.probe_jobs`)."""
    if not multirun:
        return [list(overrides)]
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    if not basic_sweeper(cfg):
        return probe_jobs(OmegaConf.to_container(params, resolve=False), overrides)
    return split_grid(params, overrides)


def basic_sweeper(cfg: DictConfig) -> bool:
    """Whether the launch runs on Hydra's basic sweeper (every job known in advance)."""
    return str(OmegaConf.select(cfg, "hydra.sweeper._target_") or BASIC_SWEEPER) == BASIC_SWEEPER


def job_folder(cfg: DictConfig, num: int, multirun: bool) -> Path:
    """The folder Hydra will give job ``num`` of a launch; the composed config then
    resolves ``paths.output_dir`` to it, as in the job itself."""
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.hydra.job.num = num
    sweep = cfg.hydra.sweep
    folder = Path(sweep.dir) / str(sweep.subdir) if multirun else Path(cfg.hydra.run.dir)
    folder = Path(os.path.abspath(folder))
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(folder)
    HydraConfig.instance().set_config(cfg)
    return folder


def empty_folder_key(cfg: DictConfig, multirun: bool) -> str | None:
    """``hydra.run.dir=`` (empty) would make the current directory the job's folder."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    if not str(OmegaConf.select(cfg, key) or "").strip():
        return f"{key} is empty: name the folder the job writes into (or leave it unset)"
    return None


def folder_problem(
    cfg: DictConfig, folder: Path, known: bool = True, multirun: bool = False
) -> str | None:
    """One line when the job cannot use ``folder``: it cannot be written, or (``known``:
    ``cfg`` is the job that will run there) it holds a job of another configuration
    (:func:`igb.jobs.runner.identity_problem`; damaged records too for a single run: in a
    grid the job reports them, the others run)."""
    from igb.jobs.lock import live_holder
    from igb.jobs.runner import identity_problem
    from igb.launch.job_spec import job_identity

    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        why = "not a folder" if not existing.is_dir() else "not writable"
        return (
            f"cannot create the job folder {folder}: {existing} is {why}; choose another "
            "folder (hydra.run.dir, hydra.sweep.dir or paths.log_dir)"
        )
    if not known or not folder.is_dir() or live_holder(folder) is not None:
        return None  # a live process runs this folder: the job runner names it
    return identity_problem(job_identity(cfg), folder, records=not multirun)


def check(
    config_name: str,
    argv: Sequence[str],
    validator: Validator,
    mode_read: list[Any] | None = None,
) -> str | None:
    """Return None when every job of ``argv`` composes and validates, else one error line.
    ``mode_read`` receives the ``hydra.mode`` the first job composed with (Hydra's main
    then need not compose again to read it: :func:`igb.compat.known_run_mode`)."""
    args, rest = get_args_parser().parse_known_args(list(argv))
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return None
    flags = [a for a in rest if a.startswith("-")]
    if flags:  # Hydra's parser would print its usage, then the error
        known = [o for a in get_args_parser()._actions for o in a.option_strings]
        return f"{flags[0]} is not a flag of this command; flags: {', '.join(known)}"
    stray = [a for a in rest if not a.startswith("-")]
    if stray:  # Hydra's own parser would stop on them only after the imports (minutes)
        return (
            f"overrides after a flag: {' '.join(stray)}; put -m (--multirun) and the other "
            "flags before or after all overrides, not between them"
        )
    overrides = list(args.overrides or [])
    config_name = args.config_name or config_name
    if args.config_dir is not None:  # composed from there too, as Hydra will
        folder = Path(args.config_dir).expanduser().resolve()
        if not folder.is_dir():
            return f"--config-dir {args.config_dir}: no such folder"
        overrides.append(search_path_override(folder))
    try:
        parsed = parse(overrides)
        problem = given_twice(parsed) or value_problem(parsed, _defaults(config_name, parsed))
        if problem:
            return problem
        first = probe_jobs({}, overrides)[0]  # every sweep override at its first value
        cfg = compose_job(config_name, first)
        if mode_read is not None:
            mode_read.append(OmegaConf.select(cfg, "hydra.mode"))
        multirun = is_multirun(cfg, bool(args.multirun))
        known = not multirun or basic_sweeper(cfg)  # else the jobs are probes, not the grid
        sweeps = [o.input_line or "" for o in parsed if o.is_sweep_override()]
        if not multirun and sweeps:
            return f"{sweeps[0]} lists several values: add -m to run them as a grid"
        problem = too_many_jobs(grid_size(parsed)) if known else None
        if problem:
            return problem
        jobs = launch_jobs(cfg, overrides, multirun)
        problem = too_many_jobs(len(jobs)) if known else None  # with an experiment's own grid
    except OverrideParseException as exc:
        return one_line(exc)
    except ConfigCompositionException as exc:
        return _explain_composition(exc, overrides, config_name)
    except Exception as exc:  # noqa: BLE001 - a bad override must never print a traceback
        return one_line(exc)
    if problem:
        return problem
    # compose every job first (Hydra only, fast), so a bad key or option is reported
    # before the validator imports torch and Lightning (seconds)
    composed: list[DictConfig] = []
    for job in jobs:
        try:  # a single run is the first job: composed already
            composed.append(cfg if job == first else compose_job(config_name, job))
        except ConfigCompositionException as exc:
            return _explain_composition(exc, job, config_name)
        except Exception as exc:  # noqa: BLE001 - a bad override must never print a traceback
            return one_line(exc)
    problem = added_key_problem(parsed, composed[0])
    if problem:
        return problem
    seen: set[str] = set()
    for num, cfg in enumerate(composed):
        try:
            HydraConfig.instance().set_config(cfg)  # interpolations resolve as for this job
            key = OmegaConf.to_yaml({k: cfg[k] for k in cfg if k != "hydra"}, resolve=False)
            if key not in seen:  # one validation per distinct configuration
                seen.add(key)
                validator(cfg)
            folder = job_folder(cfg, num, multirun)
            problem = (
                empty_folder_key(cfg, multirun)
                or output_path_problem(cfg.get("task_name"), folder, multirun)
                or folder_problem(cfg, folder, known, multirun)
            )
        except (ConfigError, FileNotFoundError, JobError) as exc:
            return one_line(exc)
        except Exception as exc:  # noqa: BLE001 - the promise: one line, never a traceback
            return f"this configuration does not build: {type(exc).__name__}: {one_line(exc)}"
        if problem:
            return problem
    return None


def _defaults(config_name: str, parsed: Sequence[Override]) -> Callable[[str], object]:
    """``key -> value`` of the configuration that the command line's group choices give,
    before its ``key=value`` overrides (None where it does not compose)."""
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
    keep = [
        f"{o.get_key_element()}={next(o.sweep_string_iterator())}"
        if o.is_sweep_override() else o.input_line or ""
        for o in parsed
        if o.key_or_group in groups or o.key_or_group.startswith("hydra") or o.is_delete()
    ]  # fmt: skip
    try:
        base = compose_job(config_name, keep)
    except Exception:  # noqa: BLE001 - composition errors are reported with the whole list
        return lambda key: None
    return lambda key: OmegaConf.select(base, key, throw_on_resolution_failure=False)


def preflight(config_name: str, validator: Validator, argv: Sequence[str] | None = None) -> Any:
    """Exit with status 2 and one line on stderr when the requested run cannot start; else
    return the run mode the configuration sets (:data:`igb.compat.MODE_UNREAD` when nothing
    was composed: ``--help``, ``--cfg``), for :func:`igb.compat.known_run_mode`."""
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault(ROOT_ENV, os.getcwd())  # paths.root_dir, for every job it starts
    mode_read: list[Any] = []
    error = check(config_name, argv, validator, mode_read)
    GlobalHydra.instance().clear()
    if error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
    return mode_read[0] if mode_read else MODE_UNREAD
