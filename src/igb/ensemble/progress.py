"""A progress bar over initializations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

ProgressFn = Callable[[int], None]


@contextmanager
def progress_bar(total: int, enabled: bool = True) -> Iterator[ProgressFn]:
    """A rich progress bar over initializations; yields ``advance(n)`` (thread-safe)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]initializations"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task("inits", total=total)
        yield lambda n: bar.advance(task, n)
