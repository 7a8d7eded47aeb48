"""run(cfg): instantiate data, model, module, loggers and callbacks from config; fit; test.

Returns the value a Hydra sweeper would optimise (final validation accuracy when the
statistics callback measured it, else test accuracy).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from igb import ddp, run_summary
from igb.data.base import InMemoryDataModule
from igb.interrupt import JobInterrupted, SignalGuard, signal_name
from igb.job import INTERRUPTED, JobFolder, cluster_env, is_rank_zero
from igb.logging.loggers import finish_loggers
from igb.module import IGBModule
from igb.nn import build_model
from igb.resume import (
    ResumeCallback,
    last_checkpoint,
    make_resumable,
    mark_wandb_preempting,
    trainer_plugins,
)

log = logging.getLogger(__name__)

#: Lightning chatter that says nothing about this run (our loaders shard themselves,
#: validation is measured by the statistics callback, srun is only on PATH).
_QUIET = (
    r".*`srun` command is available.*",
    r".*val_dataloader` but have no `validation_step.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)


def _quiet_lightning() -> None:
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    # the "try litlogger" tip and accelerator inventory are INFO lines of this logger
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


#: config keys that describe a datamodule but are not constructor arguments
_DATASET_META_KEYS = ("_target_", "name")


def instantiate_datamodule(dataset_cfg: DictConfig | dict[str, Any]) -> InMemoryDataModule:
    cfg = (
        OmegaConf.to_container(dataset_cfg, resolve=True)
        if isinstance(dataset_cfg, DictConfig)
        else dict(dataset_cfg)
    )
    kwargs = {k: v for k, v in cfg.items() if k not in _DATASET_META_KEYS}
    return instantiate({"_target_": cfg["_target_"]}, **kwargs)


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """Names a run by its choices: W&B job_type ``model-kind-placement``, tags, sweep group."""
    placement = cfg.norm.placement
    # issue 15: none and native (the architecture's own norms) are their own labels
    norm = placement if placement in ("none", "native") else f"{cfg.norm.kind}-{placement}"
    job_type = f"{cfg.model.name}-{norm}"
    tags = [
        f"model:{cfg.model.name}",
        f"norm:{placement}",
        f"norm_kind:{cfg.norm.kind if placement != 'none' else 'none'}",
        f"act:{cfg.model.activation}",
        f"dataset:{cfg.dataset.name}",
        f"optimizer:{cfg.optimizer.name}",
        *[str(t) for t in cfg.get("tags", [])],
    ]
    group = None
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        group = Path(HydraConfig.get().sweep.dir).name
        exp = HydraConfig.get().runtime.choices.get("experiment")
        if exp and exp != "null":
            group = f"{exp}-{group}"
    return {"job_type": job_type, "tags": tags, "group": group}


def _instantiate_group(cfg: DictConfig | None, **kwargs: Any) -> list[Any]:
    if not cfg:
        return []
    objs = (
        # not recursive: the W&B run config holds `_target_`s that must stay data
        instantiate(c, _recursive_=False, **kwargs.get(name, {}))
        for name, c in cfg.items()
        if c is not None
    )
    return [o for o in objs if o is not None]


def build(
    cfg: DictConfig,
    job: JobFolder,
    guard: SignalGuard | None = None,
    extra_callbacks: Sequence[L.Callback] = (),
) -> tuple[L.Trainer, IGBModule, InMemoryDataModule, list[Any]]:
    """The job's trainer, module, datamodule and loggers, exactly as :func:`fit` runs them
    (``bench/bench_train.py`` times this, so the benchmark is the default run)."""
    _quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = instantiate_datamodule(cfg.dataset)
    dm.check_available()
    dm.prepare_data()
    dm.setup("fit")
    make_resumable(dm)  # a mid-epoch resume continues the epoch's batch order
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    module = IGBModule(model, OmegaConf.to_container(cfg.optimizer, resolve=True), dm.num_classes)

    identity = run_identity(cfg)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    # the original ids of every class, and class names, for the W&B run config
    resolved["dataset"].update(
        class_ids=dm.selection.describe()["class_ids"], class_names=dm.class_names
    )
    logger_kwargs = {
        "wandb": {**identity, "run_config": resolved, "run_id": job.read().get("wandb_id")}
    }
    loggers = _instantiate_group(cfg.get("logger"), **logger_kwargs)
    for lg in loggers:
        run_id = getattr(lg, "version", None)
        if type(lg).__name__ == "WandbLogger" and run_id:
            job.mark("running", wandb_id=run_id)
    callbacks = [*_instantiate_group(cfg.get("callbacks")), *extra_callbacks]
    # last, so that it acts on a stop signal after the other callbacks' batch-end work
    every_s = float(cfg.get("checkpoint_every_s", 0) or 0)
    callbacks.append(ResumeCallback(last_checkpoint(cfg.paths.output_dir), guard, job, every_s))
    ddp.install()  # DDP ranks > 0 start as this job (its overrides, its folder)
    extra = trainer_plugins(cfg.trainer)
    if cfg.trainer.get("enable_checkpointing") is None:
        # last.ckpt is igb's; without a configured ModelCheckpoint, Lightning would add its
        # own, writing a second checkpoint every epoch
        extra["enable_checkpointing"] = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, **extra
    )
    return trainer, module, dm, loggers


def fit(cfg: DictConfig, job: JobFolder, guard: SignalGuard | None = None) -> float:
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
    finish_loggers(loggers)
    return objective


def _fit_and_test(
    cfg: DictConfig,
    job: JobFolder,
    trainer: L.Trainer,
    module: IGBModule,
    dm: InMemoryDataModule,
    guard: SignalGuard | None = None,
) -> float:
    ckpt = last_checkpoint(cfg.paths.output_dir)
    resume = str(ckpt) if ckpt.exists() else None
    if resume:
        log.info("resuming from %s", resume)
    if guard is None:
        trainer.fit(module, datamodule=dm, ckpt_path=resume)
    else:
        with guard.deferred():  # a stop signal is acted on at a safe point of training
            trainer.fit(module, datamodule=dm, ckpt_path=resume)
        stopper = next(cb for cb in trainer.callbacks if isinstance(cb, ResumeCallback))
        if stopper.stop_requested(trainer):  # it came after the last safe point of fit
            stopper.stop(trainer)
    if module.diverged:
        log.error("training diverged: %s", module.diverged)
        job.mark(
            "diverged",
            error=module.diverged,
            global_step=trainer.global_step,
            initial=run_summary.initial_row(trainer.callbacks),  # [issue 12]
        )
        return math.nan
    # trainer.test resets callback_metrics: keep what fit measured (val/acc of the last epoch)
    metrics = _scalars(trainer.callback_metrics)
    test = trainer.test(module, datamodule=dm, verbose=False)
    metrics.update(_scalars(trainer.callback_metrics))
    objective = metrics.get("val/acc", test[0].get("test/acc", math.nan) if test else math.nan)
    initial = run_summary.initial_row(trainer.callbacks)  # [issue 12] step-0 statistics
    job.mark(
        "finished",
        objective=objective,
        metrics=metrics,
        global_step=trainer.global_step,
        initial=initial,
    )
    return objective


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v.numel() == 1}


def run(cfg: DictConfig) -> float:
    """One job: skip it if its folder already holds a finished (or diverged) run, else fit
    and test, resuming from the folder's ``checkpoints/last.ckpt`` when there is one."""
    out = Path(cfg.paths.output_dir)
    job = JobFolder(out)
    if cfg.get("skip_finished", True) and job.is_done():
        log.info("%s already holds a %s run; skipping (skip_finished=false runs it again, "
                 "resuming from its last checkpoint)", out, job.status)  # fmt: skip
        return float(job.read().get("objective", math.nan))
    if is_rank_zero():
        OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    job.start(pid=os.getpid(), **cluster_env())
    started = time.monotonic()
    with SignalGuard() as guard, ddp.job_scope():
        try:
            objective = fit(cfg, job, guard)
            if is_rank_zero():  # [issue 12] the end-of-run summary (console and job log)
                run_summary.log_job(out, job.read(), time.monotonic() - started)
            return objective
        except JobInterrupted as exc:
            if not is_rank_zero():
                # rank 0 records and reports; a non-zero exit here would make Lightning's
                # process observer kill rank 0 before it has
                raise SystemExit(0) from exc
            log.warning("%s; the job's folder resumes it when the same command runs again", exc)
            job.mark(
                INTERRUPTED,
                signal=signal_name(exc.signum),
                global_step=exc.step,
                checkpoint=exc.checkpoint,
                error=str(exc),
            )
            guard.chain(exc.signum)  # under submitit: requeue this job, exit
            raise
        except Exception as exc:
            job.mark_failed(exc)
            if not _in_multirun():
                raise
            # one failing job must not take the grid down: record it, let the others run;
            # igb.hydra_callbacks.FailureReport lists failures and exits non-zero at the end
            log.exception("job failed; recorded in %s", job.status_file)
            return math.nan
        except BaseException as exc:  # KeyboardInterrupt, SystemExit
            job.mark_failed(exc, status=INTERRUPTED)
            if guard.received is not None:  # e.g. Lightning's own SIGTERMException
                raise JobInterrupted(guard.received) from exc
            raise


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
