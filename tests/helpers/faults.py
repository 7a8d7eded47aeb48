"""Test-only Lightning callbacks that inject faults into a real training run.

Added from the command line (with ``PYTHONPATH=tests``), e.g.::

    python train.py +callbacks.fault._target_=helpers.faults.RaiseAtStep +callbacks.fault.step=2

Each acts at the end of the training batch that brings ``trainer.global_step`` to
``step``, and only in the job whose seed is ``seed`` when one is given (``seed`` is read
from ``PL_GLOBAL_SEED``, which ``igb.training.run.fit`` sets with ``seed_everything``), so one job
of a grid can fail while the others run.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import lightning as L
import torch


class _AtStep(L.Callback):
    def __init__(self, step: int = 2, seed: int | None = None) -> None:
        super().__init__()
        self.step = int(step)
        self.seed = seed

    def _armed(self, trainer: L.Trainer) -> bool:
        if self.seed is not None and os.environ.get("PL_GLOBAL_SEED") != str(self.seed):
            return False
        return trainer.global_step == self.step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        if self._armed(trainer):
            self.fire(trainer, pl_module)

    def fire(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        raise NotImplementedError


class RaiseAtStep(_AtStep):
    """Raise ``RuntimeError(message)``."""

    def __init__(self, step: int = 2, seed: int | None = None, message: str = "injected fault"):
        super().__init__(step, seed)
        self.message = message

    def fire(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        raise RuntimeError(f"{self.message} at step {trainer.global_step}")


class NaNAtStep(_AtStep):
    """Set every parameter to NaN: the next training step's loss is not finite."""

    def fire(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with torch.no_grad():
            for p in pl_module.parameters():
                p.fill_(float("nan"))


class SignalAtStep(_AtStep):
    """Send ``signal`` to this process (rank 0 only), as SLURM or a user would."""

    def __init__(self, step: int = 2, seed: int | None = None, signal: str = "SIGTERM"):
        super().__init__(step, seed)
        self.signal = signal

    def fire(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            os.kill(os.getpid(), getattr(signal, self.signal))


class SleepPerStep(L.Callback):
    """Sleep ``seconds`` after every training batch (a slow job to kill from outside)."""

    def __init__(self, seconds: float = 0.2) -> None:
        super().__init__()
        self.seconds = float(seconds)

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        time.sleep(self.seconds)


class SignalAtFitStart(L.Callback):
    """Send ``signal`` to this process when fit starts, before the step-0 statistics."""

    def __init__(self, signal: str = "SIGTERM") -> None:
        super().__init__()
        self.signal = signal

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        os.kill(os.getpid(), getattr(signal, self.signal))
