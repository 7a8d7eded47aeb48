"""A training job from its composed configuration: the typed values below the launch.

:func:`train_spec` reads the job's groups as plain values and instantiates its optimizer,
scheduler, trainer, callbacks and loggers as factories, once, into an
:class:`igb.training.spec.TrainSpec`; :func:`run` runs that job in its folder on the job
runner (:func:`igb.training.run.run`). Nothing under :mod:`igb.training` reads the
configuration or Hydra itself.
"""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_original_cwd, instantiate
from omegaconf import DictConfig, OmegaConf

from igb.jobs import ddp
from igb.jobs.runner import JobSpec, exit_if_diverged
from igb.launch.job_spec import job_name, job_spec
from igb.plain import plain
from igb.training.init_filter import InitFilter
from igb.training.run import run as run_training
from igb.training.spec import Factory, TrainSpec


def factories(group: DictConfig | None) -> tuple[tuple[str, Factory], ...]:
    """``(name, factory)`` of every entry of a config group (callbacks, loggers), in order.

    Not recursive: the W&B run config holds ``_target_``s that must stay data."""
    if not group:
        return ()
    return tuple(
        (str(name), instantiate(c, _recursive_=False, _partial_=True))
        for name, c in group.items()
        if c is not None
    )


def run_parts(cfg: DictConfig, kind: str) -> dict[str, Any]:
    """What a training run and an evaluation read alike (:class:`igb.training.spec.RunSpec`)."""
    return {
        "seed": cfg.seed,
        "model": plain(cfg.model),
        "norm": plain(cfg.norm),
        "dataset": plain(cfg.dataset),
        "trainer": instantiate(cfg.trainer, _partial_=True),
        "loggers": factories(cfg.get("logger")),
        "identity": job_name(cfg, kind=kind),
        "resolved": OmegaConf.to_container(cfg, resolve=True),
        "optimized_metric": str(cfg.optimized_metric),
    }


def rank_command() -> ddp.RankCommand:
    """What DDP ranks > 0 of the running Hydra job start from, read from Hydra's job config
    when Lightning starts them (it asks only inside a Hydra job)."""
    hc = HydraConfig.get()
    return ddp.RankCommand(
        overrides=tuple(str(o) for o in hc.overrides.task),
        output_dir=str(hc.runtime.output_dir),
        job_name=str(hc.job.name),
        file_log=OmegaConf.select(hc.job_logging, "handlers.file.filename") is not None,
        cwd=get_original_cwd(),
    )


def train_spec(cfg: DictConfig, job: JobSpec | None = None) -> TrainSpec:
    """Everything a training job reads from its composed configuration, read once."""
    job = job_spec(cfg) if job is None else job
    scheduler = cfg.get("scheduler")
    return TrainSpec(
        **run_parts(cfg, "train"),
        output_dir=job.output_dir,
        config_hash=job.identity.config_hash,
        trainer_settings=plain(cfg.trainer),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(scheduler) if scheduler is not None else None,
        callbacks=tuple(f for _, f in factories(cfg.get("callbacks"))),
        init_from=cfg.get("init_from") or None,
        init_filter=InitFilter.from_config(cfg.get("init_filter")),
        checkpoint_every_s=float(cfg.get("checkpoint_every_s", 0) or 0),
        rank=rank_command,
    )


def run(cfg: DictConfig, job: JobSpec | None = None) -> float:
    """One training job in its folder (``paths.output_dir``): its objective
    (:func:`igb.training.run.run`)."""
    job = job_spec(cfg) if job is None else job
    return run_training(job, lambda: train_spec(cfg, job), str(cfg.optimized_metric))


def main(cfg: DictConfig) -> float:
    """``train.py``: :func:`run`, then exit 1 when the single run diverged, as a grid
    holding a diverged job does."""
    job = job_spec(cfg)
    objective = run(cfg, job)
    exit_if_diverged(job)
    return objective
