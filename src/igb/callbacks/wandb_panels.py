"""W&B-only panels of the statistics callback: step axis, step-0 charts, final class table.

Everything here is a no-op unless a Lightning ``WandbLogger`` is among the trainer's
loggers; the CSV logger gets the same numbers as plain columns from the callback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.loggers import WandbLogger

STEP = "trainer/global_step"


def wandb_runs(trainer: L.Trainer) -> list[Any]:
    """The W&B runs of the trainer's WandbLoggers (global rank 0 only, else none)."""
    if not trainer.is_global_zero:
        return []
    return [lg.experiment for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def define_step_axis(run: Any, splits: Sequence[str]) -> None:
    """Put the statistics and per-class series on the optimizer-step axis."""
    run.define_metric(STEP)
    run.define_metric("epoch", step_metric=STEP)
    run.define_metric("igb/*", step_metric=STEP)
    for split in splits:
        run.define_metric(f"{split}/*", step_metric=STEP)
    run.define_metric("val/acc", step_metric=STEP, summary="max,last")


def log_initial_charts(
    run: Any, split: str, f: Sequence[float], n: int, class_names: Sequence[str], step: int
) -> None:
    """Step-0 bar chart of f (labels = class names) and histogram of predicted classes."""
    import wandb

    c = len(f)
    table = wandb.Table(
        columns=["class", "name", "f"],
        data=[[i, class_names[i], float(f[i])] for i in range(c)],
    )
    counts = np.rint(np.asarray(f, dtype=np.float64) * n).astype(np.int64)
    edges = np.arange(c + 1, dtype=np.float64) - 0.5
    run.log(
        {
            f"igb/{split}/f_bar": wandb.plot.bar(
                table, "name", "f", title=f"prediction fractions f_c at step {step} ({split})"
            ),
            f"igb/{split}/predicted_class": wandb.Histogram(np_histogram=(counts, edges)),
            STEP: step,
        }
    )


def log_class_table(
    run: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int
) -> None:
    """The end-of-training per-class table (class, name, step-0 rank, final accuracies)."""
    import wandb

    table = wandb.Table(columns=list(columns), data=[list(r) for r in rows])
    run.log({"igb/class_table": table, STEP: step})
