"""The LightningModule: cross-entropy, the optimizer and schedule from config, nothing else.

Evaluation of the train/val sets (accuracy, loss, per-class and bias statistics) is
done by the statistics callback, so that step 0, log-spaced steps and epoch ends are
all measured the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import get_class
from torch import nn

from igb.errors import ConfigError

#: optimizer-config keys that configure the schedule rather than the optimizer class.
_SCHEDULE_KEYS = ("_target_", "name", "schedule", "warmup_steps", "step_size", "step_gamma")
SCHEDULES = ("constant", "cosine", "step")


class IGBModule(L.LightningModule):
    def __init__(self, model: nn.Module, optimizer: Mapping[str, Any], num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.optimizer_cfg = dict(optimizer)
        self.num_classes = num_classes
        #: set when the loss became non-finite; training then stops cleanly
        self.diverged: str | None = None
        #: this epoch's (sum of loss * n, correct, n) over optimizer steps
        self._running: torch.Tensor | None = None
        schedule = self.optimizer_cfg.get("schedule", "constant")
        if schedule not in SCHEDULES:
            raise ConfigError(
                "optimizer.schedule",
                f"unknown schedule {schedule!r}; allowed: {', '.join(SCHEDULES)}",
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        if not torch.isfinite(loss):
            # stop cleanly: no optimizer step with a NaN gradient, the run records why
            self.diverged = (
                f"loss is {loss.item()} at step {self.global_step} (epoch {self.current_epoch})"
            )
            self.trainer.should_stop = True
            return None
        with torch.no_grad():  # epoch sums, logged once per epoch (self.log per step is slow)
            n = y.shape[0]
            correct = (logits.argmax(dim=1) == y).sum()
            if self._running is None:
                self._running = torch.zeros(3, dtype=loss.dtype, device=loss.device)
            self._running += torch.stack(
                [loss.detach() * n, correct.to(loss.dtype), loss.new_tensor(n)]
            )
        return loss

    def on_train_epoch_end(self) -> None:
        total, self._running = self._running, None
        if total is not None and total[2] > 0:
            self.log("train/loss_running", total[0] / total[2], sync_dist=True)
            self.log("train/acc_running", total[1] / total[2], sync_dist=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        n = y.shape[0]
        self.log("test/loss", F.cross_entropy(logits, y), batch_size=n, sync_dist=True)
        acc = (logits.argmax(dim=1) == y).float().mean()
        self.log("test/acc", acc, batch_size=n, sync_dist=True)

    def configure_optimizers(self):
        cfg = self.optimizer_cfg
        kwargs = {k: v for k, v in cfg.items() if k not in _SCHEDULE_KEYS}
        optimizer = get_class(cfg["_target_"])(self.parameters(), **kwargs)
        schedule = cfg.get("schedule", "constant")
        warmup = int(cfg.get("warmup_steps", 0) or 0)
        if schedule == "constant" and warmup == 0:
            return optimizer
        total = max(int(self.trainer.estimated_stepping_batches), 1)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if schedule == "cosine":
                progress = (step - warmup) / max(total - warmup, 1)
                return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
            if schedule == "step":
                size = int(cfg.get("step_size", max(total // 3, 1)))
                return float(cfg.get("step_gamma", 0.1)) ** ((step - warmup) // size)
            return 1.0

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
