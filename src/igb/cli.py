"""Pre-flight for the Hydra entry points: bad input -> one line, exit code 2, no folders.

Hydra creates the sweep/job folders before a task function runs and prints multi-line
errors for unknown options or keys. ``preflight`` composes every job of the requested
run or grid first (the same way Hydra's basic sweeper expands it, including grids that
an ``experiment`` puts under ``hydra.sweeper.params``), validates each with
:func:`igb.config.validate`, and exits with one clear line on the first problem.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict

from igb.errors import ConfigError, one_line

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
Validator = Callable[[DictConfig], object]


def _options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _explain_composition(exc: Exception, overrides: Sequence[str], config_name: str) -> str:
    """Turn Hydra's multi-line composition errors into one line naming key and allowed values."""
    text = str(exc)
    if isinstance(exc, MissingConfigException):
        m = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
        if m:
            group, option = m.group(1), m.group(2)
            allowed = list(exc.options or []) or _options(group)
            return f"{group}={option} is not an option of '{group}'; allowed: {', '.join(allowed)}"
    m = re.search(r"Could not override '([^']+)'", text) or re.search(
        r"Key '([^']+)' is not in struct", text
    )
    if m:
        key = m.group(1)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        rest = [o for o in overrides if not o.lstrip("+~").startswith(key)]
        try:
            cfg = _compose(config_name, rest)
            node = OmegaConf.select(cfg, parent) if parent else cfg
            keys = sorted(k for k in node.keys()) if isinstance(node, DictConfig) else []
        except Exception:  # noqa: BLE001 - best effort for the message only
            keys = []
        where = f"'{parent}'" if parent else "the config"
        return f"{key} is not a config key; keys of {where}: {', '.join(map(str, keys))}"
    return one_line(exc)


def _compose(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose one job's config; runtime fields are filled so interpolations resolve."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.cwd = os.getcwd()
        cfg.hydra.runtime.output_dir = os.path.join(os.getcwd(), "<not-created-by-preflight>")
    HydraConfig.instance().set_config(cfg)
    return cfg


def expand_jobs(config_name: str, overrides: Sequence[str], multirun: bool) -> list[list[str]]:
    """The override list of every job Hydra's basic sweeper would launch."""
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(list(overrides))
    first = BasicSweeper.split_arguments(parsed, None)[0]
    if not multirun:
        return [list(overrides)]
    cfg = _compose(config_name, first[0])
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    grid = [f"{k}={v}" for k, v in params.items()] + list(overrides)
    return BasicSweeper.split_arguments(parser.parse_overrides(grid), None)[0]


def check(config_name: str, argv: Sequence[str], validator: Validator) -> str | None:
    """Return None when every job of ``argv`` composes and validates, else one error line."""
    args, _ = get_args_parser().parse_known_args(list(argv))
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return None
    overrides = list(args.overrides or [])
    try:
        sweeps = _sweep_overrides(overrides)
        if not args.multirun and sweeps:
            return f"{sweeps[0]} lists several values: add -m to run them as a grid"
        jobs = expand_jobs(config_name, overrides, bool(args.multirun))
    except OverrideParseException as exc:
        return f"cannot parse overrides: {one_line(exc)}"
    except ConfigCompositionException as exc:
        return _explain_composition(exc, overrides, config_name)
    except Exception as exc:  # noqa: BLE001 - a bad override must never print a traceback
        return one_line(exc)
    # [issue 12] compose every job first (Hydra only, fast), so a bad key or option is
    # reported before the validator imports torch and Lightning (seconds)
    composed: dict[str, DictConfig] = {}
    for job in jobs:
        try:
            cfg = _compose(config_name, job)
        except ConfigCompositionException as exc:
            return _explain_composition(exc, job, config_name)
        key = OmegaConf.to_yaml({k: cfg[k] for k in cfg if k != "hydra"}, resolve=False)
        composed.setdefault(key, cfg)
    for cfg in composed.values():
        try:
            HydraConfig.instance().set_config(cfg)  # interpolations resolve as for this job
            validator(cfg)
        except (ConfigError, FileNotFoundError) as exc:
            return one_line(exc)
    return None


def _sweep_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides (as typed) that list several values, e.g. ``model=mlp,cnn``."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [o.input_line or "" for o in parsed if o.is_sweep_override()]


def preflight(config_name: str, validator: Validator, argv: Sequence[str] | None = None) -> None:
    """Exit with status 2 and one line on stderr when the requested run cannot start."""
    argv = sys.argv[1:] if argv is None else argv
    error = check(config_name, argv, validator)
    GlobalHydra.instance().clear()
    if error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
