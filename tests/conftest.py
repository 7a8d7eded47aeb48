"""Shared fixtures: compose the real conf/ tree the way Hydra does, with tiny sizes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from helpers.sizes import TINY
from helpers.slurm_cluster import cluster_fixture  # noqa: F401  (the module-scoped `slurm` fixture)
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Never talk to a W&B server from the test suite, whatever credentials the machine has.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def run_train(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    """``python train.py ARGV`` as a user runs it, outputs under ``cwd``; text output."""
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *argv],
        cwd=cwd,
        env={**os.environ, "IGB_ROOT": str(cwd)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def compose_config(config_name: str, overrides: Sequence[str], output_dir: Path) -> DictConfig:
    """Compose conf/<config_name>.yaml with overrides, as Hydra would for one job."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.root_dir = str(output_dir.parent)
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.runtime.cwd = str(output_dir.parent)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):  # the task function gets the config without the hydra node
        del cfg["hydra"]
    output_dir.mkdir(parents=True, exist_ok=True)
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """make_cfg(*overrides, name="train", tiny=True, job="job") -> composed DictConfig."""

    def _make(*overrides: str, name: str = "train", tiny: bool = True, job: str = "job"):
        extra = TINY if tiny and name == "train" else []
        return compose_config(name, [*extra, *overrides], tmp_path / job)

    yield _make
    GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def one_intra_op_thread():
    """One intra-op thread for a module's models (ensembles parallelise over worker
    threads): tiny models gain nothing from intra-op threads, and on a busy machine
    OpenMP's barriers make them many times slower (see docs/ensemble.md)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
