"""evaluate(job, spec): measure a trained model, as its training run measured it (``eval.py``).

``ckpt_path`` names a job folder or a checkpoint (:mod:`igb.training.weights`). From a
job folder (or a checkpoint inside one), the model, norm, dataset, seed and measurement
settings (``callbacks.bias_stats``) are the job's own, read from its ``config.yaml``,
except the groups this command overrides: the model is rebuilt as it was trained, its
weights loaded, and the statistics callback measures the train subset and val split
(bias statistics, per-class accuracy and loss) at the checkpoint's step, then the test
split, with the checkpoint's step-0 class ranking. A checkpoint from elsewhere (a
fine-tuned torchvision model, say) is measured with the model this command composes.
The rows go to the eval's own folder (``metrics.csv``) and loggers; status.json holds the
final metrics as a training run's does. The launch (:mod:`igb.launch.eval_job`) merges
the job's configuration into the command's and builds the
:class:`igb.training.spec.EvalSpec`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import lightning as L

from igb.callbacks.bias_stats import BiasStatsSpec
from igb.callbacks.checkpoint_stats import CheckpointStatsCallback
from igb.jobs.runner import JobSpec, Outcome, run_job
from igb.jobs.signals import SignalGuard
from igb.jobs.status import FINISHED, JobFolder
from igb.logging.loggers import finish_loggers
from igb.nn import build_model
from igb.training.module import IGBModule
from igb.training.run import (
    logger_kwargs,
    make_loggers,
    mark_logger_runs,
    prepared_data,
    select_objective,
)
from igb.training.spec import EvalSpec
from igb.training.weights import load_network, read_checkpoint

log = logging.getLogger(__name__)

#: the key naming the checkpoint (the errors about it name it)
KEY = "ckpt_path"


def _stats_callback(spec: EvalSpec, data: dict[str, Any]) -> CheckpointStatsCallback:
    state = next(
        (v for k, v in (data.get("callbacks") or {}).items() if "BiasStatsCallback" in str(k)),
        None,
    )
    return CheckpointStatsCallback(
        BiasStatsSpec(**spec.bias_stats), step=int(data.get("global_step", 0)),
        epoch=int(data.get("epoch", 0)), state=state,
    )  # fmt: skip


def measure(spec: EvalSpec, job: JobFolder) -> Outcome:
    """Rebuild, load and measure the model of the checkpoint ``spec`` names."""
    ckpt, folder = spec.checkpoint, spec.job_folder
    dm = prepared_data(spec)
    model = build_model(spec.model, spec.norm, dm.input_shape, dm.num_classes, seed=spec.seed)
    data = read_checkpoint(ckpt, KEY)
    load_network(model, data, KEY, ckpt)
    module = IGBModule(model, optimizer=None, num_classes=dm.num_classes)  # type: ignore[arg-type]
    stats = _stats_callback(spec, data)
    resolved = dict(spec.resolved)
    resolved["checkpoint"] = {"file": str(ckpt), "job": str(folder) if folder else None,
                              "global_step": stats.step, "epoch": stats.epoch}  # fmt: skip
    loggers = make_loggers(spec.loggers, **logger_kwargs(job, spec.identity, resolved))
    mark_logger_runs(job, loggers)
    trainer: L.Trainer = spec.trainer(
        callbacks=[stats], logger=loggers or False, enable_checkpointing=False
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
    return Outcome(FINISHED, select_objective(metrics, spec.optimized_metric), info)


def evaluate(job: JobSpec, spec: Callable[[], EvalSpec]) -> float:
    """One eval job in its own folder (:func:`igb.jobs.runner.run_job`); ``spec`` is built
    in the job's body (a checkpoint that cannot be found is the job's failure)."""

    def body(folder: JobFolder, guard: SignalGuard) -> Outcome:
        return measure(spec(), folder)

    objective = run_job(job, body, what="evaluation")
    return objective if math.isfinite(objective) else math.nan
