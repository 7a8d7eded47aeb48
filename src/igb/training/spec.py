"""A training or evaluation job as its launch describes it: typed values and factories.

The launch (:mod:`igb.launch.train_job`, :mod:`igb.launch.eval_job`) reads the composed
configuration once: the groups the model and data are built from, as plain values, and
the optimizer, scheduler, trainer, callbacks and loggers as factories (their
``_target_`` classes with the configured arguments). The training modules take these
values and read no config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igb.jobs.ddp import RankCommand
from igb.training.init_filter import InitFilter

#: a factory of one object from its configured arguments and what the job adds to them
Factory = Callable[..., Any]


@dataclass(frozen=True)
class RunSpec:
    """What a training run and an evaluation build alike: data, model, trainer, loggers."""

    #: the seed everything is seeded with before the data are set up (``seed``)
    seed: int
    #: the ``model``, ``norm`` and ``dataset`` groups, resolved
    model: Mapping[str, Any]
    norm: Mapping[str, Any]
    dataset: Mapping[str, Any]
    #: ``trainer(callbacks=..., logger=..., **more)``: the configured Lightning trainer
    trainer: Factory
    #: ``(name, factory)`` of each configured logger, in order; the resumable ones
    #: (:data:`igb.training.run.RESUMABLE_LOGGERS`) are called with ``run=``
    loggers: tuple[tuple[str, Factory], ...]
    #: W&B ``job_type``, run name, tags and group (:func:`igb.jobs.identity.run_identity`)
    identity: Mapping[str, Any]
    #: the whole configuration, resolved: the loggers' run config
    resolved: Mapping[str, Any]
    #: the metric a sweeper optimises (``optimized_metric``)
    optimized_metric: str = "val/acc"


@dataclass(frozen=True, kw_only=True)
class TrainSpec(RunSpec):
    """A training job: :class:`RunSpec` and what fitting adds."""

    #: the job's folder (``paths.output_dir``): its checkpoints live there
    output_dir: Path
    #: the configuration hash the checkpoint records
    config_hash: str
    #: the trainer group, resolved (accelerator, plugins, enable_checkpointing)
    trainer_settings: Mapping[str, Any]
    #: ``optimizer(params)`` and ``scheduler(optimizer)`` (None: no scheduler)
    optimizer: Factory
    scheduler: Factory | None = None
    #: a factory of each configured callback, in order
    callbacks: tuple[Factory, ...] = ()
    #: ``init_from``: the checkpoint (or job folder) whose weights the model starts from
    init_from: str | None = None
    #: ``init_filter``: the search for an initialization of a given step-0 imbalance
    init_filter: InitFilter = field(default_factory=InitFilter)
    #: ``checkpoint_every_s``: seconds between time-based checkpoints (0: none)
    checkpoint_every_s: float = 0.0
    #: how DDP ranks > 0 start as this job, asked when Lightning starts them (None: as
    #: Lightning starts them)
    rank: Callable[[], RankCommand] | None = None


@dataclass(frozen=True, kw_only=True)
class EvalSpec(RunSpec):
    """An evaluation: :class:`RunSpec` (the training job's groups where it has them) and
    the checkpoint it measures."""

    #: the checkpoint file and the job folder that wrote it (None: from elsewhere)
    checkpoint: Path
    job_folder: Path | None
    #: the statistics callback's settings (``callbacks.bias_stats`` without ``_target_``)
    bias_stats: Mapping[str, Any]
