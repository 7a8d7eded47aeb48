"""What the bench scripts share: a command line built from a table of defaults, one
job's composed config, and the ResNet-18 ensemble setting of the head and profile
benchmarks.

Each script is run as ``python bench/<script>.py``, so this folder is on ``sys.path`` and
the scripts import it as ``common``. An option's flag is its key with ``_`` spelled ``-``;
its type follows its default (``False``: a switch; a list: one or more values; an int or
float: that type; ``None`` or a string: a string), and an :class:`Opt` adds a help text or
any other ``argparse`` setting where the default alone does not say enough.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from igb.errors import OneLineParser

if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig

    from igb.ensemble import EnsembleSpec

#: the checkout's Hydra config tree (bench/ sits beside conf/)
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# torchvision's ResNet-18 with its own normalization and initialization (bench_heads, _profile)
NATIVE = {"placement": "native", "kind": "native"}
RESNET18 = {"_target_": "igb.nn.libraries.Torchvision", "name": "torchvision-resnet18",
            "arch": "resnet18"}  # fmt: skip


@dataclass(frozen=True)
class Opt:
    """An option's default plus what the default cannot say (help, choices, nargs...)."""

    default: Any = None
    help: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    positional: bool = False


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be a positive integer")
    return value


def _add(parser: argparse.ArgumentParser, key: str, spec: Any) -> None:
    opt = spec if isinstance(spec, Opt) else Opt(spec)
    if opt.positional:
        parser.add_argument(key, help=opt.help, **opt.settings)
        return
    kw: dict[str, Any] = {"help": opt.help}
    if opt.default is False:
        kw["action"] = "store_true"
    else:
        kw["default"] = opt.default
        if isinstance(opt.default, list):
            kw["nargs"] = "+"
        elif isinstance(opt.default, int) and opt.default > 0:
            kw["type"] = _positive_int  # counts (inits, repeats, processes): 0 measures nothing
        elif isinstance(opt.default, int | float):
            kw["type"] = type(opt.default)
    kw.update(opt.settings)
    parser.add_argument("--" + key.replace("_", "-"), **kw)


def parse_args(doc: str | None, whole_doc: bool = False, **options: Any) -> argparse.Namespace:
    """Parse ``sys.argv`` with one option per keyword (see the module docstring); the help
    text's description is the script docstring's first line (all of it with ``whole_doc``)."""
    text = doc or ""
    parser = OneLineParser(description=text if whole_doc else text.splitlines()[0])
    for key, spec in options.items():
        _add(parser, key, spec)
    return parser.parse_args()


def random_images(n: int) -> torch.Tensor:
    """``n`` fixed random 3x64x64 images (seed 0): the inputs of the ResNet-18 benches."""
    import torch  # here: the benches that time start-up or the preflight import no torch

    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def compose_cfg(name: str, overrides: list[str], out: Path) -> DictConfig:
    """``conf/<name>.yaml`` with ``overrides``, composed as Hydra would for one job whose
    output folder is ``out``. Composed here with Hydra's API, not through ``igb.launch``:
    a benchmark measures the subsystems below the launch and must not depend on it."""
    import os  # here: the benches that time start-up or the preflight import no torch

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.cwd = os.getcwd()
        cfg.hydra.runtime.output_dir = str(out)
        cfg.paths.output_dir = str(out)
    HydraConfig.instance().set_config(cfg)
    return cfg


def ensemble_spec(cfg: DictConfig) -> EnsembleSpec:
    """The spec of the composed ensemble config ``cfg`` (without a job folder's hash,
    W&B run and loggers), as the launch builds it."""
    from igb.ensemble import EnsembleSpec

    return EnsembleSpec.from_groups(cfg)


def eval_inputs(cfg: DictConfig) -> tuple[torch.Tensor, Any]:
    """The evaluation inputs of the composed ensemble config ``cfg``, and their dataset."""
    from igb.ensemble import eval_set

    ens = ensemble_spec(cfg)
    return eval_set(ens.dataset, ens.ensemble.eval_split, ens.ensemble.eval_samples)


def load() -> str:
    """The machine's load average, to print beside every timing (the machine is shared)."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def interleaved(
    commands: Mapping[str, Callable[[int], Sequence[str]]],
    repeats: int,
    env: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Median wall time of each command (a whole process; ``commands[name](round)`` is its
    command line in that round), over ``repeats`` rounds that run every command once in
    turn, so that a burst of load from elsewhere hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    run_env = {**os.environ, **(env or {})}
    for r in range(repeats):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(list(argv(r)), check=True, env=run_env, capture_output=True)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def python(*args: str) -> list[str]:
    """A command line running this interpreter."""
    return [sys.executable, *args]
