"""The training progress bar, and a rich progress line for measurement passes that
coexists with it.

:class:`ProgressBar` is Lightning's ``RichProgressBar`` updated at most ``refresh_rate``
times a second: Lightning's updates it after every batch (task update, metrics dict)
and redraws it from a thread at ``refresh_rate`` Hz (100 by default), which on a 5 ms
CPU step costs a few percent of the step.

rich allows one live display per console. Only passes of at least ``min_batches``
batches get a display (short ones end before it would show anything, and adding a task
costs about 0.5 ms): while a ``RichProgressBar`` is live, the pass becomes a task of
that bar's own ``progress`` (removed when the pass ends); otherwise a transient display
of its own is opened on a terminal, so log files stay quiet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from igb.compat import progress_stopped


class ProgressBar(RichProgressBar):
    """``RichProgressBar`` whose per-batch update runs at most ``refresh_rate`` times a
    second (and at an epoch's last batch); the bar shows the same counts, later by at
    most ``1 / refresh_rate`` s."""

    def __init__(self, refresh_rate: int = 10, **kwargs: Any) -> None:
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self._next_update = 0.0

    def on_train_batch_end(
        self, trainer: L.Trainer, model: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        last = batch_idx + 1 >= trainer.num_training_batches
        if now < self._next_update and not last and self.train_progress_bar_id is not None:
            return
        self._next_update = now + 1.0 / max(self.refresh_rate, 1)
        super().on_train_batch_end(trainer, model, outputs, batch, batch_idx)


def _noop() -> None:
    return None


def _live_rich_bar(trainer: L.Trainer):
    for cb in trainer.callbacks:
        if isinstance(cb, RichProgressBar) and cb.is_enabled:
            progress = getattr(cb, "progress", None)
            if progress is not None and not progress_stopped(cb):
                return progress
    return None


@contextmanager
def measurement_progress(
    trainer: L.Trainer, description: str, total: int, min_batches: int
) -> Iterator[Callable[[], None]]:
    """Yields ``advance()``, to be called once per measured batch."""
    if not trainer.is_global_zero or total < max(min_batches, 1):
        yield _noop  # a short pass is over before a display would show anything
        return
    progress = _live_rich_bar(trainer)
    if progress is not None:
        task = progress.add_task(description, total=total)
        try:
            yield lambda: progress.advance(task)
        finally:
            progress.remove_task(task)
        return
    from rich.console import Console
    from rich.errors import LiveError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield _noop
        return
    own = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    try:
        own.start()
    except LiveError:  # another live display holds the console
        yield _noop
        return
    task = own.add_task(description, total=total)
    try:
        yield lambda: own.advance(task)
    finally:
        own.stop()
