"""The statistics callback measuring a trained model once (``python eval.py``).

A training run's last measurement and an evaluation of its checkpoint are the same
measurement: the same evaluation sets, batches, BatchNorm mode and, restored from the
checkpoint's callback state, the same step-0 class ranking and step-0 weights (for
``train/weight_overlap``). The row is logged at the checkpoint's step and epoch, so it
lines up with the training run's final row.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import lightning as L

from igb.callbacks.bias_stats import BiasStatsCallback, BiasStatsSpec


class CheckpointStatsCallback(BiasStatsCallback):
    """Measure ``splits`` when the test loop starts, the test split (per class) when it
    ends; ``step``/``epoch``: the checkpoint's, for the logged rows.

    ``state``: the training run's statistics-callback state (step-0 ranking, step-0
    weights), or None for a model trained elsewhere (ranked by this measurement)."""

    def __init__(
        self,
        spec: BiasStatsSpec,
        step: int = 0,
        epoch: int = 0,
        state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(dataclasses.replace(spec, log_steps=0))  # one measurement, no schedule
        self.step, self.epoch = int(step), int(epoch)
        if state:
            self.load_state_dict(state)
        if self.w0 is None:  # no step-0 weights to compare with: no overlap to log
            self.weight_overlap = False

    def logged_step(self, trainer: L.Trainer) -> int:
        return self.step

    def logged_epoch(self, trainer: L.Trainer) -> int:
        return self.epoch

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start(trainer, pl_module)
        self._measure_and_log(trainer, pl_module, self.splits)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.test_at_end:
            self.log_test(trainer, pl_module)
        self.log_class_table(trainer)
