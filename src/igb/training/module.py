"""The LightningModule: cross-entropy, the optimizer and scheduler from config, nothing else.

Evaluation of the train/val sets (accuracy, loss, per-class and bias statistics) is
done by the statistics callback, so that step 0, log-spaced steps and epoch ends are
all measured the same way.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from igb.training.schedules import SchedulerFactory

#: ``conf/optimizer/*`` instantiated (``_partial_: true``): called with the parameters
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


#: how a run whose logits were never finite is recorded (its advice is not the rate's)
AT_INIT = "the model's logits are not finite at initialization"


class IGBModule(L.LightningModule):
    """Cross-entropy training of ``model``; the running train loss/accuracy per epoch."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerFactory,
        num_classes: int,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.num_classes = num_classes
        #: set when the loss became non-finite; training then stops cleanly
        self.diverged: str | None = None
        #: the global step whose loss was not finite (None: none was)
        self.diverged_step: int | None = None
        # this epoch's running sums over optimizer steps: loss * n, n, correct (a tensor)
        self._loss_sum = 0.0
        self._count = 0
        self._correct: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        # one host sync per step, which the divergence check needs anyway; the running
        # loss then costs nothing more (a Python float, not a tensor op per step)
        value = loss.item()
        if not math.isfinite(value):
            # stop cleanly: no optimizer step with a NaN gradient, the run records why
            self.diverged_step = self.global_step
            self.diverged = (
                f"loss is {value} at step {self.global_step} (epoch {self.current_epoch})"
            )
            if self.global_step == 0 and not bool(torch.isfinite(logits).all()):
                self.diverged = (  # no optimizer step has run: the learning rate is innocent
                    f"{AT_INIT} (step 0, before any optimizer step): a fault of the model's "
                    "initialization or forward, not of optimizer.lr"
                )
            self.trainer.should_stop = True
            # None on purpose: no optimizer step with a NaN gradient; the run stops and is
            # recorded as diverged. Lightning's "training_step returned None" warning would
            # only repeat that, with advice that does not apply (set here, where it is
            # caused: a filter set at import would not survive a caller's catch_warnings)
            warnings.filterwarnings("ignore", message=r"`training_step` returned `None`")
            return None
        n = y.shape[0]
        self._loss_sum += value * n
        self._count += n
        with torch.no_grad():  # a tensor sum: no second sync per step
            correct = (logits.argmax(dim=1) == y).sum()
        self._correct = correct if self._correct is None else self._correct + correct
        return loss

    def on_train_epoch_end(self) -> None:
        """Log the epoch's running means straight to the loggers, like the statistics
        callback's rows: ``self.log`` costs 1-2 ms an epoch here (its result collection),
        2% of a default MLP epoch. DDP: the mean over ranks of the per-rank means."""
        loss_sum, count, correct = self._loss_sum, self._count, self._correct
        self._loss_sum, self._count, self._correct = 0.0, 0, None
        if count == 0 or correct is None:
            return
        running = torch.stack(
            [correct.new_tensor(loss_sum / count, dtype=torch.float64), correct.double() / count]
        )
        trainer = self.trainer
        if trainer.world_size > 1:
            running = trainer.strategy.reduce(running.to(self.device), reduce_op="mean")
        loss, acc = running.tolist()
        row = {"train/loss_running": loss, "train/acc_running": acc}
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in row.items()})
        if trainer.is_global_zero:
            row["epoch"] = self.current_epoch
            # a diverged epoch's means (of the steps before it) go at the divergence step:
            # Lightning counted the skipped update, and no row may follow that step
            step = self.global_step if self.diverged_step is None else self.diverged_step
            for lg in trainer.loggers:
                lg.log_metrics(row, step=step)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        n = y.shape[0]
        self.log("test/loss", F.cross_entropy(logits, y), batch_size=n, sync_dist=True)
        acc = (logits.argmax(dim=1) == y).float().mean()
        self.log("test/acc", acc, batch_size=n, sync_dist=True)

    def _total_steps(self) -> int:
        return max(int(self.trainer.estimated_stepping_batches), 1)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=self._total_steps)
        if scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
