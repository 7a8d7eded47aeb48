"""``train/grad_norm`` and ``train/step_size`` at the measurement steps, from the
gradient the training step computes anyway (no extra backward pass).

The authors record both at every measurement: the L2 norm of the full gradient and the
step size, that norm times the learning rate. Here the value logged at step ``s`` is the
gradient of the training batch taken at the parameters of step ``s`` (the ones whose bias
is measured at ``s``), read in ``on_before_optimizer_step``: so step 0 is the gradient at
initialization, and the last measurement of a run (no batch follows it) has none. The
norm is taken before any gradient clipping. Measurement steps are those of the
statistics callback: step 0, every epoch end and ``log_steps`` log-spaced steps.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from igb.callbacks.schedule import log_spaced_steps


class GradNormCallback(L.Callback):
    """Logs ``train/grad_norm`` and ``train/step_size`` (``grad_norm * lr`` of the first
    parameter group) at step 0, at every epoch end and at ``log_steps`` log-spaced steps."""

    def __init__(self, log_steps: int = 0) -> None:
        super().__init__()
        if log_steps < 0:
            raise ValueError(f"log_steps={log_steps} must be >= 0")
        self.log_steps = int(log_steps)
        self._schedule: set[int] = set()
        self._epoch_start = False
        #: the last row logged (for tests)
        self.latest: dict[str, float] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = trainer.estimated_stepping_batches
        total = int(total) if math.isfinite(total) else 0
        self._schedule = set(log_spaced_steps(self.log_steps, total))

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # the first batch of an epoch starts from the parameters of the previous epoch end
        self._epoch_start = batch_idx == 0

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        step = trainer.global_step
        if not (self._epoch_start or step in self._schedule):
            return
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if not grads:
            return
        norm = float(torch.nn.utils.get_total_norm(grads, norm_type=2.0))
        lr = float(optimizer.param_groups[0]["lr"])
        self.latest = {"train/grad_norm": norm, "train/step_size": norm * lr}
        if trainer.is_global_zero:  # DDP: the gradients are already all-reduced
            row = {**self.latest, "epoch": trainer.current_epoch}
            for lg in trainer.loggers:
                lg.log_metrics(row, step=step)
