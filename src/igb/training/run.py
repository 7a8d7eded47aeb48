"""run(cfg): instantiate data, model, module, loggers and callbacks from config; fit; test.

Returns the value a Hydra sweeper optimises: the final ``optimized_metric`` (validation
accuracy by default; test accuracy when the statistics callback measured no validation).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from igb.compat import safe_checkpoint_globals
from igb.data.instantiate import instantiate_datamodule
from igb.data.resumable import make_resumable
from igb.data.shares import SHARES_FILE, shares_record
from igb.jobs import ddp
from igb.jobs import summary as run_summary
from igb.jobs.checkpoint import (
    ResumeCallback,
    check_checkpoint,
    mark_wandb_preempting,
    trainer_plugins,
)
from igb.jobs.files import atomic_write_json
from igb.jobs.identity import config_hash, run_identity
from igb.jobs.integrity import last_checkpoint
from igb.jobs.runner import Outcome, run_job
from igb.jobs.signals import JobInterrupted, SignalGuard
from igb.jobs.status import DIVERGED, FINISHED, JobFolder, is_rank_zero
from igb.logging.loggers import finish_loggers, log_final_checkpoint
from igb.logging.quiet import quiet_lightning
from igb.logging.tracked_run import TrackedRun
from igb.nn import build_model
from igb.training.datamodule import LightningData, as_lightning
from igb.training.init_filter import InitFilter, filter_init
from igb.training.module import IGBModule
from igb.training.weights import load_network, read_checkpoint, resolve_checkpoint

log = logging.getLogger(__name__)


def instantiate_group(cfg: DictConfig | None, **kwargs: Any) -> list[Any]:
    """Every entry of a config group; ``kwargs[name]``: what entry ``name`` is called with
    besides its config (handed over as they are, not merged into the config)."""
    if not cfg:
        return []
    objs = (
        # not recursive: the W&B run config holds `_target_`s that must stay data
        instantiate(c, _recursive_=False, _partial_=True)(**kwargs[name])
        if name in kwargs
        else instantiate(c, _recursive_=False)
        for name, c in cfg.items()
        if c is not None
    )
    return [o for o in objs if o is not None]


def build(
    cfg: DictConfig,
    job: JobFolder,
    guard: SignalGuard | None = None,
    extra_callbacks: Sequence[L.Callback] = (),
) -> tuple[L.Trainer, IGBModule, LightningData, list[Any]]:
    """The job's trainer, module, datamodule and loggers, exactly as :func:`fit` runs them
    (``bench/bench_train.py`` times this, so the benchmark is the default run)."""
    dm = prepared_data(cfg)
    make_resumable(dm)  # a mid-epoch resume continues the epoch's batch order
    shares = record_split_shares(dm, job)
    model, filtered = _initial_model(cfg, dm, job)
    module = IGBModule(
        model,
        instantiate(cfg.optimizer),
        dm.num_classes,
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") is not None else None,
    )

    identity = run_identity(cfg, kind="train")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    # the original ids of every class, and class names, for the W&B run config
    resolved["dataset"].update(
        class_ids=dm.selection.describe()["class_ids"], class_names=dm.class_names
    )
    resolved["split_shares"] = shares  # the splits' class shares, in the W&B run config
    if filtered:
        resolved["init_filter"] = filtered  # seeds tried and kept, in the W&B run config
    loggers = instantiate_group(cfg.get("logger"), **logger_kwargs(job, identity, resolved))
    mark_logger_runs(job, loggers)
    callbacks = [*instantiate_group(cfg.get("callbacks")), *extra_callbacks]
    # last, so that it acts on a stop signal after the other callbacks' batch-end work
    every_s = float(cfg.get("checkpoint_every_s", 0) or 0)
    ckpt = last_checkpoint(cfg.paths.output_dir)
    callbacks.append(ResumeCallback(ckpt, guard, job, every_s, config_hash=config_hash(cfg)))
    ddp.install(rank_command)  # DDP ranks > 0 start as this job (its overrides, its folder)
    extra = trainer_plugins(cfg.trainer)
    if cfg.trainer.get("enable_checkpointing") is None:
        # last.ckpt is igb's; without a configured ModelCheckpoint, Lightning would add its
        # own, writing a second checkpoint every epoch
        extra["enable_checkpointing"] = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, **extra
    )
    return trainer, module, dm, loggers


def prepared_data(cfg: DictConfig) -> LightningData:
    """The job's data, set up for fitting, after seeding (as every run of a job starts)."""
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = as_lightning(instantiate_datamodule(cfg.dataset))
    dm.check_available()
    dm.prepare_data()
    dm.setup("fit")
    return dm


#: the loggers (keys of ``cfg.logger``) whose run id status.json keeps as ``<name>_id``, so
#: that a resumed job continues its run; they take the job's identity (name, tags, group)
RESUMABLE_LOGGERS = ("wandb", "mlflow")


def logger_kwargs(job: JobFolder, identity: dict[str, Any], resolved: Any) -> dict[str, Any]:
    """What the resumable loggers are built with: the job's identity, its resolved
    config, and the run id status.json kept (a resumed job continues its run)."""
    record = job.read()
    return {
        name: {"run": TrackedRun(**identity, config=resolved, run_id=record.get(f"{name}_id"))}
        for name in RESUMABLE_LOGGERS
    }


def mark_logger_runs(job: JobFolder, loggers: Sequence[Any]) -> None:
    """Record the W&B and MLflow run ids in status.json (the resume reads them back)."""
    for lg in loggers:
        kind = type(lg).__name__
        if kind == "WandbLogger" and getattr(lg, "version", None):
            job.mark("running", wandb_id=lg.version)
        elif kind == "FileStoreMLFlowLogger":
            job.mark("running", mlflow_id=lg.run_id)


def record_split_shares(dm: LightningData, job: JobFolder) -> dict[str, Any]:
    """The class counts and shares of every split, written once to the job folder's
    ``split_shares.json`` (rank 0; atomically) and returned for the run config. The
    analysis measures the predicted fractions against them (a split need not be
    balanced)."""
    record = shares_record(dm.class_counts(), dm.class_names)
    if is_rank_zero():
        atomic_write_json(job.path / SHARES_FILE, record)
    return record


def _initial_model(
    cfg: DictConfig, dm: LightningData, job: JobFolder
) -> tuple[Any, dict[str, Any] | None]:
    """The model from ``cfg.seed``, from the checkpoint ``init_from`` names, or, with
    ``init_filter.mode=high|low``, the first draw whose step-0 imbalance on the first
    ``init_filter.samples`` train points passes (:mod:`igb.training.init_filter`); the
    search is recorded in status.json."""

    def build_seeded(seed: int) -> Any:
        return build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=seed)

    if cfg.get("init_from"):  # warm start: the weights of another job's checkpoint
        model = build_seeded(cfg.seed)
        ckpt, _ = resolve_checkpoint(cfg.init_from, "init_from")
        load_network(model, read_checkpoint(ckpt, "init_from"), "init_from", ckpt)
        log.info("initialized from %s", ckpt)
        return model, None
    settings = InitFilter.from_config(cfg.get("init_filter"))
    if not settings.active:
        return build_seeded(cfg.seed), None
    x = dm.split_tensors("train")[0][: settings.samples]
    accel = str(cfg.trainer.get("accelerator", "cpu"))
    device = "cuda" if accel in ("gpu", "cuda", "auto") and torch.cuda.is_available() else "cpu"
    model, record = filter_init(build_seeded, x, dm.num_classes, settings, cfg.seed, device)
    job.mark("running", init_filter=record)
    return model, record


def fit(cfg: DictConfig, job: JobFolder, guard: SignalGuard | None = None) -> Outcome:
    trainer, module, dm, loggers = build(cfg, job, guard)
    try:
        objective = _fit_and_test(cfg, job, trainer, module, dm, guard)
    except JobInterrupted as exc:
        mark_wandb_preempting(loggers)  # the same W&B run continues when the job resumes
        finish_loggers(loggers, exit_code=exc.code)
        raise
    except BaseException:
        finish_loggers(loggers, exit_code=1)
        raise
    log_final_checkpoint(loggers, last_checkpoint(cfg.paths.output_dir))
    finish_loggers(loggers)
    return objective


def _fit_and_test(
    cfg: DictConfig,
    job: JobFolder,
    trainer: L.Trainer,
    module: IGBModule,
    dm: LightningData,
    guard: SignalGuard | None = None,
) -> Outcome:
    ckpt = last_checkpoint(cfg.paths.output_dir)
    resume = str(ckpt) if ckpt.exists() else None
    if resume:
        log.info("resuming from %s", resume)
    with safe_checkpoint_globals():  # the resume reads last.ckpt with weights_only=True
        _fit(trainer, module, dm, resume, guard)
    if module.diverged:
        log.error("training diverged: %s", module.diverged)
        # the step whose loss was not finite (Lightning counts the skipped update too)
        info = {
            "error": module.diverged,
            "global_step": module.diverged_step,
            "initial": run_summary.initial_row(trainer.callbacks),  # step-0 statistics
        }
        return Outcome(DIVERGED, math.nan, info)
    # trainer.test resets callback_metrics: keep what fit measured (val/acc of the last epoch)
    metrics = _scalars(trainer.callback_metrics)
    trainer.test(module, datamodule=dm, verbose=False)
    metrics.update(_scalars(trainer.callback_metrics))
    objective = select_objective(metrics, cfg)
    info = {
        "metrics": metrics,
        "global_step": trainer.global_step,
        "initial": run_summary.initial_row(trainer.callbacks),  # step-0 statistics
    }
    chance = run_summary.chance_record(metrics, shares_record(dm.class_counts()))
    if chance is not None:  # a run that learned nothing is flagged by its summaries
        info["chance"] = chance
    return Outcome(FINISHED, objective, info)


def _fit(
    trainer: L.Trainer,
    module: IGBModule,
    dm: LightningData,
    resume: str | None,
    guard: SignalGuard | None,
) -> None:
    if guard is None:
        trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=True)
        return
    # from the first training step on, ResumeCallback defers a stop signal to a safe
    # point of training; before it (setup, step-0 statistics) nothing is lost by
    # stopping at once. DDP ranks must stop together: they defer from the start.
    with guard.deferred() if trainer.world_size > 1 else nullcontext():
        trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=True)
    stopper = next(cb for cb in trainer.callbacks if isinstance(cb, ResumeCallback))
    if stopper.stop_requested(trainer):  # it came after the last safe point of fit
        stopper.stop(trainer)


def select_objective(metrics: dict[str, Any], cfg: DictConfig) -> float:
    """The final value of ``optimized_metric`` (``val/acc`` by default; ``test/acc`` when
    the statistics callback measured no validation split): what a sweeper optimises."""
    metric = str(cfg.optimized_metric)
    if metric == "val/acc" and metric not in metrics:
        metric = "test/acc"
    return float(metrics.get(metric, math.nan))


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v.numel() == 1}


def rank_command() -> ddp.RankCommand:
    """What DDP ranks > 0 of the running Hydra job start from, read from Hydra's job config
    when Lightning starts them (it asks only inside a Hydra job)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    hc = HydraConfig.get()
    return ddp.RankCommand(
        overrides=tuple(str(o) for o in hc.overrides.task),
        output_dir=str(hc.runtime.output_dir),
        job_name=str(hc.job.name),
        file_log=OmegaConf.select(hc.job_logging, "handlers.file.filename") is not None,
        cwd=get_original_cwd(),
    )


def run(cfg: DictConfig) -> float:
    """One job (:func:`igb.jobs.runner.run_job`): skip it if its folder already holds a finished
    (or diverged) run of this configuration, else fit and test, resuming from the folder's
    ``checkpoints/last.ckpt`` when there is one."""

    def body(job: JobFolder, guard: SignalGuard) -> Outcome:
        with ddp.job_scope():
            return fit(cfg, job, guard)

    def prepare(job: JobFolder) -> None:
        check_checkpoint(last_checkpoint(cfg.paths.output_dir))

    job = JobFolder(cfg.paths.output_dir)
    before, started = job.read(), time.monotonic()
    objective = run_job(cfg, body, what="run", prepare=prepare)
    after = job.read()
    if after.get("status") == FINISHED:  # also for a skipped job: this launch's metric
        objective = select_objective(after.get("metrics", {}), cfg)
    # the end-of-run summary, for a run this process made (not a skipped, finished one)
    if is_rank_zero() and after != before and after.get("status") in (FINISHED, DIVERGED):
        run_summary.log_job(job.path, after, time.monotonic() - started)
    return objective
