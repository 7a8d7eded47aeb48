"""An ensemble job from its composed configuration: the typed values below the launch.

:func:`ensemble_spec` hands a job's composed groups, its configuration hash,
W&B run and logger factories over, once, as an :class:`igb.ensemble.spec.EnsembleSpec`;
:func:`run` runs that job in its folder on the job runner. Nothing under
:mod:`igb.ensemble` reads the configuration itself.
"""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from igb.ensemble import figure_worker
from igb.ensemble.eval_set import eval_set
from igb.ensemble.run import clear_outputs, run_ensemble
from igb.ensemble.spec import GROUPS, EnsembleSpec, LoggerFactory
from igb.ensemble.spec import choices as ensemble_choices
from igb.jobs.identity import config_hash, run_identity
from igb.jobs.runner import Outcome, run_job
from igb.jobs.signals import SignalGuard
from igb.jobs.status import JobFolder
from igb.logging.quiet import quiet_lightning
from igb.logging.tracked_run import TrackedRun
from igb.plain import plain


def groups(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The groups an ensemble's spec is read from, resolved, as plain dicts."""
    return {group: plain(cfg[group]) for group in GROUPS}


def choices(cfg: DictConfig) -> dict[str, Any]:
    """The configuration choices that place the ensemble ``cfg`` among others."""
    return ensemble_choices(groups(cfg))


def eval_inputs(cfg: DictConfig) -> tuple[Tensor, Any]:
    """The evaluation inputs of the ensemble ``cfg`` and their dataset
    (:func:`igb.ensemble.eval_set.eval_set`)."""
    ens = cfg.ensemble
    return eval_set(plain(cfg.dataset), str(ens.eval_split), ens.eval_samples)


def logger_factories(cfg: DictConfig) -> dict[str, LoggerFactory | None]:
    """``logger.<name>`` -> its factory, for the W&B loggers the ensemble writes to; None
    for the others (the job says where its files are instead)."""
    out: dict[str, LoggerFactory | None] = {}
    for name, lcfg in (cfg.get("logger") or {}).items():
        if lcfg is None:
            continue
        wandb = "wandb" in str(lcfg.get("_target_", "")).lower()
        # not recursive: the W&B run config holds `_target_`s that must stay data
        out[str(name)] = instantiate(lcfg, _recursive_=False, _partial_=True) if wandb else None
    return out


def ensemble_spec(cfg: DictConfig) -> EnsembleSpec:
    """Everything an ensemble job reads from its composed configuration, read once."""
    loggers = logger_factories(cfg)
    wandb = any(f is not None for f in loggers.values())
    # W&B's run config: the whole configuration, resolved (a "???" left as written)
    resolved = OmegaConf.to_container(cfg, resolve=True) if wandb else None
    return EnsembleSpec.from_groups(
        cfg,
        config_id=config_hash(cfg),
        run=TrackedRun(**run_identity(cfg, kind="ensemble"), config=resolved),
        loggers=loggers,
    )


def run(cfg: DictConfig) -> float:
    """One ensemble job in its folder (``paths.output_dir``): returns gamma (NaN if the job
    failed inside a multirun, or if this process is a shard whose job another shard
    finishes)."""

    def body(job: JobFolder, guard: SignalGuard) -> Outcome:
        quiet_lightning()  # before a W&B logger's factory imports Lightning
        return run_ensemble(ensemble_spec(cfg), job)

    figure_worker.start()  # a job started alone (a SLURM task): while it evaluates
    shared = int(cfg.ensemble.get("shards", 1)) > 1
    return run_job(cfg, body, what="ensemble", prepare=clear_outputs, shared=shared)
