"""run(job, spec): build data, model, module, loggers and callbacks from a job's spec; fit; test.

The launch (:mod:`igb.launch.train_job`) builds the :class:`igb.training.spec.TrainSpec`.
Returns the value a Hydra sweeper optimises: the final ``optimized_metric`` (validation
accuracy by default; test accuracy when the statistics callback measured no validation).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

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
from igb.jobs.integrity import last_checkpoint
from igb.jobs.runner import JobSpec, Outcome, run_job
from igb.jobs.signals import JobInterrupted, SignalGuard
from igb.jobs.status import DIVERGED, FINISHED, JobFolder, is_rank_zero
from igb.logging.loggers import finish_loggers, log_final_checkpoint
from igb.logging.quiet import quiet_lightning
from igb.logging.tracked_run import TrackedRun
from igb.nn import build_model
from igb.training.datamodule import LightningData, as_lightning
from igb.training.init_filter import filter_init
from igb.training.module import IGBModule
from igb.training.spec import Factory, RunSpec, TrainSpec
from igb.training.weights import load_network, read_checkpoint, resolve_checkpoint

log = logging.getLogger(__name__)


def make_loggers(factories: Sequence[tuple[str, Factory]], **kwargs: dict[str, Any]) -> list[Any]:
    """The configured loggers; ``kwargs[name]``: what logger ``name`` is called with (handed
    over as they are, not merged into its configuration)."""
    objs = (factory(**kwargs.get(name, {})) for name, factory in factories)
    return [o for o in objs if o is not None]


def build(
    spec: TrainSpec,
    job: JobFolder,
    guard: SignalGuard | None = None,
    extra_callbacks: Sequence[L.Callback] = (),
) -> tuple[L.Trainer, IGBModule, LightningData, list[Any]]:
    """The job's trainer, module, datamodule and loggers, exactly as :func:`fit` runs them
    (``bench/bench_train.py`` times this, so the benchmark is the default run)."""
    dm = prepared_data(spec)
    make_resumable(dm)  # a mid-epoch resume continues the epoch's batch order
    shares = record_split_shares(dm, job)
    model, filtered = _initial_model(spec, dm, job)
    module = IGBModule(model, spec.optimizer, dm.num_classes, scheduler=spec.scheduler)

    resolved = copy.deepcopy(dict(spec.resolved))
    # the original ids of every class, and class names, for the W&B run config
    resolved["dataset"].update(
        class_ids=dm.selection.describe()["class_ids"], class_names=dm.class_names
    )
    resolved["split_shares"] = shares  # the splits' class shares, in the W&B run config
    if filtered:
        resolved["init_filter"] = filtered  # seeds tried and kept, in the W&B run config
    loggers = make_loggers(spec.loggers, **logger_kwargs(job, spec.identity, resolved))
    mark_logger_runs(job, loggers)
    made = (factory() for factory in spec.callbacks)
    callbacks = [*(c for c in made if c is not None), *extra_callbacks]
    # last, so that it acts on a stop signal after the other callbacks' batch-end work
    ckpt = last_checkpoint(spec.output_dir)
    callbacks.append(
        ResumeCallback(ckpt, guard, job, spec.checkpoint_every_s, config_hash=spec.config_hash)
    )
    if spec.rank is not None:  # DDP ranks > 0 start as this job (its overrides, its folder)
        ddp.install(spec.rank)
    extra = trainer_plugins(spec.trainer_settings)
    if spec.trainer_settings.get("enable_checkpointing") is None:
        # last.ckpt is igb's; without a configured ModelCheckpoint, Lightning would add its
        # own, writing a second checkpoint every epoch
        extra["enable_checkpointing"] = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    trainer: L.Trainer = spec.trainer(callbacks=callbacks, logger=loggers or False, **extra)
    return trainer, module, dm, loggers


def prepared_data(spec: RunSpec) -> LightningData:
    """The job's data, set up for fitting, after seeding (as every run of a job starts)."""
    quiet_lightning()
    L.seed_everything(spec.seed, workers=True, verbose=False)
    dm = as_lightning(instantiate_datamodule(spec.dataset))
    dm.check_available()
    dm.prepare_data()
    dm.setup("fit")
    return dm


#: the loggers (keys of ``cfg.logger``) whose run id status.json keeps as ``<name>_id``, so
#: that a resumed job continues its run; they take the job's identity (name, tags, group)
RESUMABLE_LOGGERS = ("wandb", "mlflow")


def logger_kwargs(job: JobFolder, identity: Mapping[str, Any], resolved: Any) -> dict[str, Any]:
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
    spec: TrainSpec, dm: LightningData, job: JobFolder
) -> tuple[Any, dict[str, Any] | None]:
    """The model from ``seed``, from the checkpoint ``init_from`` names, or, with
    ``init_filter.mode=high|low``, the first draw whose step-0 imbalance on the first
    ``init_filter.samples`` train points passes (:mod:`igb.training.init_filter`); the
    search is recorded in status.json."""

    def build_seeded(seed: int) -> Any:
        return build_model(spec.model, spec.norm, dm.input_shape, dm.num_classes, seed=seed)

    if spec.init_from:  # warm start: the weights of another job's checkpoint
        model = build_seeded(spec.seed)
        ckpt, _ = resolve_checkpoint(spec.init_from, "init_from")
        load_network(model, read_checkpoint(ckpt, "init_from"), "init_from", ckpt)
        log.info("initialized from %s", ckpt)
        return model, None
    settings = spec.init_filter
    if not settings.active:
        return build_seeded(spec.seed), None
    x = dm.split_tensors("train")[0][: settings.samples]
    accel = str(spec.trainer_settings.get("accelerator", "cpu"))
    device = "cuda" if accel in ("gpu", "cuda", "auto") and torch.cuda.is_available() else "cpu"
    model, record = filter_init(build_seeded, x, dm.num_classes, settings, spec.seed, device)
    job.mark("running", init_filter=record)
    return model, record


def fit(spec: TrainSpec, job: JobFolder, guard: SignalGuard | None = None) -> Outcome:
    """Build the job (:func:`build`), fit and test it, finish its loggers."""
    trainer, module, dm, loggers = build(spec, job, guard)
    try:
        objective = _fit_and_test(spec, trainer, module, dm, guard)
    except JobInterrupted as exc:
        mark_wandb_preempting(loggers)  # the same W&B run continues when the job resumes
        finish_loggers(loggers, exit_code=exc.code)
        raise
    except BaseException:
        finish_loggers(loggers, exit_code=1)
        raise
    log_final_checkpoint(loggers, last_checkpoint(spec.output_dir))
    finish_loggers(loggers)
    return objective


def _fit_and_test(
    spec: TrainSpec,
    trainer: L.Trainer,
    module: IGBModule,
    dm: LightningData,
    guard: SignalGuard | None = None,
) -> Outcome:
    ckpt = last_checkpoint(spec.output_dir)
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
    objective = select_objective(metrics, spec.optimized_metric)
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


def select_objective(metrics: dict[str, Any], metric: str) -> float:
    """The final value of ``metric`` (``optimized_metric``: ``val/acc`` by default;
    ``test/acc`` when the statistics callback measured no validation split): what a
    sweeper optimises."""
    if metric == "val/acc" and metric not in metrics:
        metric = "test/acc"
    return float(metrics.get(metric, math.nan))


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v.numel() == 1}


def run(job: JobSpec, spec: Callable[[], TrainSpec], optimized_metric: str) -> float:
    """One job (:func:`igb.jobs.runner.run_job`): skip it if its folder already holds a
    finished (or diverged) run of this configuration, else fit and test, resuming from the
    folder's ``checkpoints/last.ckpt`` when there is one. ``spec`` is built in the job's
    body, so that a job whose spec does not build is recorded as failed, as any other."""

    def body(folder: JobFolder, guard: SignalGuard) -> Outcome:
        with ddp.job_scope():
            return fit(spec(), folder, guard)

    def prepare(folder: JobFolder) -> None:
        check_checkpoint(last_checkpoint(job.output_dir))

    folder = JobFolder(job.output_dir)
    before, started = folder.read(), time.monotonic()
    objective = run_job(job, body, what="run", prepare=prepare)
    after = folder.read()
    if after.get("status") == FINISHED:  # also for a skipped job: this launch's metric
        objective = select_objective(after.get("metrics", {}), optimized_metric)
    # the end-of-run summary, for a run this process made (not a skipped, finished one)
    if is_rank_zero() and after != before and after.get("status") in (FINISHED, DIVERGED):
        run_summary.log_job(folder.path, after, time.monotonic() - started)
    return objective
