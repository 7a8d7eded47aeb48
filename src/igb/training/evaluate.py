"""evaluate(cfg): measure a trained model, as its training run measured it (``eval.py``).

``ckpt_path`` names a job folder or a checkpoint (:mod:`igb.training.weights`). From a
job folder (or a checkpoint inside one), the model, norm, dataset, seed and measurement
settings (``callbacks.bias_stats``) are the job's own, read from its ``config.yaml``,
except the groups this command overrides: the model is rebuilt as it was trained, its
weights loaded, and the statistics callback measures the train subset and val split
(bias statistics, per-class accuracy and loss) at the checkpoint's step, then the test
split, with the checkpoint's step-0 class ranking. A checkpoint from elsewhere (a
fine-tuned torchvision model, say) is measured with the model this command composes.
The rows go to the eval's own folder (``metrics.csv``) and loggers; status.json holds the
final metrics as a training run's does.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from igb.callbacks.bias_stats import BiasStatsSpec
from igb.callbacks.checkpoint_stats import CheckpointStatsCallback
from igb.jobs.identity import load_saved_config, run_identity
from igb.jobs.runner import Outcome, run_job
from igb.jobs.signals import SignalGuard
from igb.jobs.status import FINISHED, JobFolder
from igb.logging.loggers import finish_loggers
from igb.nn import build_model
from igb.training.module import IGBModule
from igb.training.run import (
    instantiate_group,
    logger_kwargs,
    mark_logger_runs,
    prepared_data,
    select_objective,
)
from igb.training.weights import load_network, read_checkpoint, resolve_checkpoint

log = logging.getLogger(__name__)

#: what the training job decides about the model and its measurement (unless overridden)
FROM_JOB = ("model", "norm", "dataset", "seed", "callbacks.bias_stats")
KEY = "ckpt_path"


def overridden(key: str) -> bool:
    """Whether this command's overrides set ``key`` or anything under it."""
    if not HydraConfig.initialized():
        return False
    task = [str(o).lstrip("+~") for o in HydraConfig.get().overrides.task]
    return any(o.split("=", 1)[0] == key or o.startswith(f"{key}.") for o in task)


def with_job_config(cfg: DictConfig, folder: Path | None) -> DictConfig:
    """``cfg`` with the training job's :data:`FROM_JOB` entries (those not overridden)."""
    saved = load_saved_config(folder) if folder is not None else None
    if not saved:
        return cfg
    merged = cfg.copy()
    job = OmegaConf.create(saved)
    with open_dict(merged):
        for key in FROM_JOB:
            value = OmegaConf.select(job, key)
            if value is not None and not overridden(key):
                OmegaConf.update(merged, key, value, merge=False, force_add=True)
    return merged


def _stats_callback(cfg: DictConfig, data: dict[str, Any]) -> CheckpointStatsCallback:
    settings = OmegaConf.to_container(cfg.callbacks.bias_stats, resolve=True)
    settings.pop("_target_", None)
    state = next(
        (v for k, v in (data.get("callbacks") or {}).items() if "BiasStatsCallback" in str(k)),
        None,
    )
    return CheckpointStatsCallback(
        BiasStatsSpec(**settings), step=int(data.get("global_step", 0)),
        epoch=int(data.get("epoch", 0)), state=state,
    )  # fmt: skip


def measure(cfg: DictConfig, job: JobFolder) -> Outcome:
    """Rebuild, load and measure the model ``cfg.ckpt_path`` names."""
    ckpt, folder = resolve_checkpoint(cfg[KEY], KEY)
    cfg = with_job_config(cfg, folder)
    dm = prepared_data(cfg)
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    data = read_checkpoint(ckpt, KEY)
    load_network(model, data, KEY, ckpt)
    module = IGBModule(model, optimizer=None, num_classes=dm.num_classes)  # type: ignore[arg-type]
    stats = _stats_callback(cfg, data)
    identity = run_identity(cfg, kind="eval")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved["checkpoint"] = {"file": str(ckpt), "job": str(folder) if folder else None,
                              "global_step": stats.step, "epoch": stats.epoch}  # fmt: skip
    loggers = instantiate_group(cfg.get("logger"), **logger_kwargs(job, identity, resolved))
    mark_logger_runs(job, loggers)
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=[stats], logger=loggers or False, enable_checkpointing=False
    )
    loops = (data.get("loops") or {}).get("fit_loop")
    if loops:  # the module's test/acc and test/loss are logged at the checkpoint's step
        trainer.fit_loop.load_state_dict(loops)
    try:
        trainer.test(module, datamodule=dm, verbose=False)
    except BaseException:
        finish_loggers(loggers, exit_code=1)
        raise
    finish_loggers(loggers)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    info = {"metrics": metrics, "global_step": stats.step, "checkpoint": str(ckpt)}
    return Outcome(FINISHED, select_objective(metrics, cfg), info)


def evaluate(cfg: DictConfig) -> float:
    """One eval job in its own folder (:func:`igb.jobs.runner.run_job`)."""

    def body(job: JobFolder, guard: SignalGuard) -> Outcome:
        return measure(cfg, job)

    objective = run_job(cfg, body, what="evaluation")
    return objective if math.isfinite(objective) else math.nan
