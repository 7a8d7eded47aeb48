"""Resuming a job in its own folder: where the checkpoint is, and what makes a resume exact.

A job (re)started in a folder that holds ``checkpoints/last.ckpt`` resumes from it
(:func:`igb.training.run.run`). This module makes that resume continue the interrupted run
rather than approximate it:

- :class:`ResumeCallback` acts on a stop signal recorded by :class:`igb.jobs.signals.SignalGuard`
  at the next safe point of training, saves ``last.ckpt`` there and stops the job
  (:class:`igb.jobs.signals.JobInterrupted`). Safe points: the end of a training batch that is
  not the last of its epoch; the end of an epoch (checkpoint there, after the statistics
  callback's epoch-end row, as ModelCheckpoint does; stop at the next epoch's start, once
  Lightning has logged the epoch's running means); the end of training (before testing).
  Under DDP the ranks agree on stopping (any rank's signal stops all, at the same batch).
- Every checkpoint flushes the loggers, and on resume :class:`ResumeCallback` tells the
  CSV logger to keep the rows up to the checkpoint step and drop those past it (logged by
  the killed attempt after its last checkpoint, and logged again by this one); a fit that
  starts from scratch starts a fresh ``metrics.csv``.
- :mod:`igb.data.resumable` makes the train loader stateful, so a run resumed mid-epoch
  trains the remaining batches of that epoch in the original order.
- Lightning's own SLURM auto-requeue is switched off (:func:`trainer_plugins`): submitit
  owns requeueing (see docs/scaling.md).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import lightning as L

from igb.compat import logger_run
from igb.errors import JobError
from igb.jobs.files import atomic_write, temporary_path
from igb.jobs.integrity import (
    CHECKPOINT_DIR,
    CHECKPOINT_KEY,
    LAST,
    checkpoint_zip_damage,
)
from igb.jobs.records import METRICS, RECORDS_KEY, metrics_fingerprint
from igb.jobs.signals import JobInterrupted, SignalGuard, signal_name
from igb.jobs.status import JobFolder

log = logging.getLogger(__name__)


class DamagedCheckpoint(JobError):
    """The checkpoint a relaunch would resume from cannot be read."""


def check_checkpoint(path: Path) -> None:
    """Raise :class:`DamagedCheckpoint` (one line naming the file and the way out) when
    ``path`` exists but is not a complete checkpoint (the job runner refuses such a folder
    before this, :func:`igb.jobs.integrity.checkpoint_zip_damage`; this guards a file
    damaged since)."""
    reason = checkpoint_zip_damage(path)
    if reason:
        raise DamagedCheckpoint(
            f"{path} is damaged ({reason}); restart=true moves the job's results aside "
            "and starts it over"
        )


class ResumeCallback(L.Callback):
    """Checkpoint-and-stop on a recorded signal; keep metrics.csv consistent on resume.

    It owns ``last.ckpt``, written atomically: at a stop (signal), at the end of training,
    and at an epoch end once ``every_s`` seconds have passed since the last write (0: at
    every epoch end). A signal always checkpoints the current step; ``every_s`` bounds
    what a hard kill (SIGKILL, a node failure) loses. Saving at every end of a 65 ms epoch
    (the default MLP run) would cost it 15-20% of its time. Add it after the other
    callbacks, so that it acts after their batch-end and epoch-end work.
    """

    def __init__(
        self,
        checkpoint_path: str | os.PathLike[str],
        guard: SignalGuard | None = None,
        job: JobFolder | None = None,
        every_s: float = 0.0,
        config_hash: str | None = None,
    ) -> None:
        super().__init__()
        if not every_s >= 0:
            raise ValueError(f"every_s={every_s} must be >= 0")
        self.checkpoint_path = Path(checkpoint_path)
        self.guard = guard
        self.job = job
        self.every_s = float(every_s)
        #: recorded in every checkpoint (:mod:`igb.jobs.integrity`)
        self.config_hash = config_hash
        self._last_save = time.monotonic()
        #: global step of the checkpoint this fit resumed from (None: started from scratch)
        self.resumed_step: int | None = None
        self._trained = False
        self._saved_step: int | None = None
        self._stop_at_epoch_start = False
        self._deferral: AbstractContextManager[Any] | None = None

    # -- resume bookkeeping ----------------------------------------------------------------
    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.resumed_step = int(checkpoint.get("global_step", 0))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._trained = False
        if self.resumed_step is not None and self.job is not None:
            self.job.mark("running", resumed_from_step=self.resumed_step)
        for lg in trainer.loggers:
            keep = getattr(lg, "keep_rows_until", None)
            if callable(keep):
                keep(self.resumed_step)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # rows logged before a checkpoint are on disk with it: a hard kill loses none of them
        for lg in trainer.loggers:
            lg.save()
        if self.config_hash is None:
            return
        checkpoint[CHECKPOINT_KEY] = self.config_hash
        # the rows a resume from this checkpoint keeps (igb.jobs.records)
        records = {}
        for lg in trainer.loggers:
            path = getattr(lg, "metrics_path", None)  # a DummyLogger (fast_dev_run) answers
            if not isinstance(path, (str, os.PathLike)):  # any name with a function
                continue
            if trainer.is_global_zero and Path(path).is_file():
                records[METRICS] = metrics_fingerprint(
                    Path(path), self.config_hash, trainer.global_step
                )
        checkpoint[RECORDS_KEY] = records

    # -- safe points -----------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after the other callbacks' train start (step-0 statistics): the loops are restored
        if self.resumed_step is not None:
            log.info("resumed at step %d (epoch %d)", self.resumed_step, trainer.current_epoch)
        self._last_save = time.monotonic()
        if self.guard is not None:
            # Lightning installed its own SIGTERM handler at fit start (it would raise its
            # SIGTERMException at a point of its choosing, without a checkpoint): take it back
            self.guard.reinstall()
            # until now a signal stopped the job at once (nothing trained to save); from
            # here it is acted on at the next safe point, with a checkpoint
            self._deferral = self.guard.deferred()
            self._deferral.__enter__()
        if self.stop_requested(trainer):  # nothing trained yet: nothing to save
            self.stop(trainer)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._end_deferral()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._end_deferral()

    def _end_deferral(self) -> None:
        if self._deferral is not None:
            self._deferral.__exit__(None, None, None)
            self._deferral = None

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._trained = True
        if batch_idx + 1 < trainer.num_training_batches and self.stop_requested(trainer):
            self.stop(trainer)
        # after an epoch's last batch, the epoch end comes first (below)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # last.ckpt after the statistics callback's epoch-end row. On a stop signal, stop
        # at the next epoch's start, once the module has logged the epoch's running means.
        self._stop_at_epoch_start = self.stop_requested(trainer)
        save = self._stop_at_epoch_start or self._last_epoch(trainer) or self._due()
        if trainer.world_size > 1:  # every rank must take part in the same saves
            save = trainer.strategy.reduce_boolean_decision(save, all=False)
        if save:
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # training ended elsewhere than at a final epoch end (max_steps, max_time): the
        # final checkpoint is an output of every run
        if self._trained and self._saved_step != trainer.global_step:
            self.save(trainer)

    @staticmethod
    def _last_epoch(trainer: L.Trainer) -> bool:
        max_epochs = trainer.max_epochs
        final = max_epochs is not None and 0 <= max_epochs <= trainer.current_epoch + 1
        return final or trainer.should_stop

    def _due(self) -> bool:
        return time.monotonic() - self._last_save >= self.every_s

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._stop_at_epoch_start:
            self.stop(trainer)

    def stop_requested(self, trainer: L.Trainer) -> bool:
        requested = self.guard is not None and self.guard.received is not None
        if trainer.world_size > 1:  # every rank must stop at the same batch
            requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
        return bool(requested)

    def stop(self, trainer: L.Trainer) -> None:
        """Save ``last.ckpt`` at the current step unless it holds it already (or nothing
        was trained since this fit started), and raise :class:`JobInterrupted`."""
        received = self.guard.received if self.guard is not None else None
        signum = received if received is not None else int(signal.SIGTERM)
        step = trainer.global_step
        if self._trained and self._saved_step != step:
            self.save(trainer)
        # named relative to the job folder: a copied or moved folder still names its own
        saved = Path(CHECKPOINT_DIR) / LAST if self.checkpoint_path.exists() else None
        raise JobInterrupted(signum, step=step, checkpoint=str(saved) if saved else None)

    def save(self, trainer: L.Trainer) -> None:
        """Write the checkpoint atomically (a kill while writing leaves the old one intact)."""

        def write(tmp: Path) -> None:
            trainer.save_checkpoint(tmp, weights_only=False)  # full state; says so

        if trainer.is_global_zero:
            atomic_write(self.checkpoint_path, write)
        else:  # the other ranks take part in the save's collectives; rank 0 writes
            write(temporary_path(self.checkpoint_path))
        trainer.strategy.barrier("igb.jobs.checkpoint.save")
        self._saved_step = trainer.global_step
        self._last_save = time.monotonic()
        received = self.guard.received if self.guard is not None else None
        if received is not None:
            log.warning(
                "%s: saved %s at step %d; relaunch the same command to resume",
                signal_name(received),
                self.checkpoint_path,
                trainer.global_step,
            )


def trainer_plugins(trainer_cfg: Any) -> dict[str, Any]:
    """Trainer kwargs that switch off Lightning's SLURM auto-requeue when running under SLURM.

    submitit owns requeueing (its SIGUSR2 handler, ``hydra.launcher.max_num_timeout``);
    two owners would requeue twice. Nothing is added when the trainer config sets
    ``plugins`` itself or when not under SLURM.
    """
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if trainer_cfg.get("plugins") is not None or not SLURMEnvironment.detect():
        return {}
    return {"plugins": [SLURMEnvironment(auto_requeue=False)]}


def mark_wandb_preempting(loggers: list[Any]) -> None:
    """Tell W&B the run is being preempted (it will be resumed under the same id)."""
    for lg in loggers:
        run = logger_run(lg)
        mark = getattr(run, "mark_preempting", None)
        if callable(mark):
            try:
                mark()
            except Exception as exc:  # noqa: BLE001 - best effort while stopping
                log.debug("wandb mark_preempting failed: %s", exc)
