"""A job's identity and place from its composed configuration: the job runner's spec.

Training, evaluation and ensembles hand :mod:`igb.jobs` a :class:`igb.jobs.runner.JobSpec`
built here, once: the folder, what the job computes (and its hash), ``restart`` and
``skip_finished``, the resolved configuration ``config.yaml`` records, and what Hydra says
of the run (a multirun, its sweep). Nothing under :mod:`igb.jobs` reads the configuration
or Hydra itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from igb.jobs.identity import (
    JobIdentity,
    canonical,
    flatten,
    group_name,
    operational,
    run_identity,
)
from igb.jobs.identity import comparable as saved_comparable
from igb.jobs.runner import RESTART_KEY, JobSpec


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def sweep_group() -> str | None:
    """In a multirun: the sweep folder's name (prefixed by the experiment), else None."""
    if not in_multirun():
        return None
    hc = HydraConfig.get()
    return group_name(hc.sweep.dir, hc.runtime.choices.get("experiment"))


def job_name(cfg: Mapping[str, Any], kind: str = "train") -> dict[str, Any]:
    """:func:`igb.jobs.identity.run_identity` of ``cfg`` in this run's sweep group."""
    return run_identity(cfg, kind, group=sweep_group())


def comparable(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Flat ``key -> value`` of what a job computes (:func:`igb.jobs.identity.comparable`).

    A composed config is resolved key by key, so that the operational keys (which may
    name Hydra's runtime folders) are never resolved; a saved config is resolved already.
    """
    if not isinstance(cfg, DictConfig):
        return saved_comparable(cfg)
    out: dict[str, Any] = {}
    for key, raw in flatten(OmegaConf.to_container(cfg, resolve=False)):
        if operational(key):
            continue
        try:
            value = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
        except Exception:  # noqa: BLE001 - unresolvable here: compare the expression
            value = raw
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        out[key] = value
    return canonical(out)


def config_hash(cfg: DictConfig | Mapping[str, Any]) -> str:
    """The configuration hash of a composed (or saved) configuration."""
    return job_identity(cfg).config_hash


def job_identity(cfg: DictConfig | Mapping[str, Any]) -> JobIdentity:
    """What decides whether a folder holds the job ``cfg``."""
    return JobIdentity(
        comparable=comparable(cfg),
        restart=bool(cfg.get(RESTART_KEY, False)),
        skip_finished=bool(cfg.get("skip_finished", True)),
    )


def job_spec(cfg: DictConfig) -> JobSpec:
    """The job runner's spec of the job ``cfg`` (in its folder ``paths.output_dir``)."""
    return JobSpec(
        output_dir=Path(cfg.paths.output_dir),
        identity=job_identity(cfg),
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        multirun=in_multirun(),
    )
