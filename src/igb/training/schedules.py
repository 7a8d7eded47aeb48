"""Learning-rate schedules as torch's own schedulers, built from ``conf/scheduler/``.

Each factory is a ``_partial_: true`` config node (lightning-hydra-template's way): the
config gives the shape (``warmup_steps``, ``step_size``, ``gamma``), the module gives the
optimizer and the run's length in optimizer steps, known only once Lightning has the data.
The length is passed as a function and asked for only by the schedules that depend on it:
computing it (Lightning's ``estimated_stepping_batches``) sets the train loader up before a
resumed checkpoint restores the loader's position in its epoch.
Warmup is torch's ``LinearLR`` from ``1/warmup_steps`` (step ``s`` trains at
``(s + 1) / warmup_steps`` of the rate), then the schedule proper through ``SequentialLR``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    LinearLR,
    LRScheduler,
    SequentialLR,
    StepLR,
)

from igb.errors import ConfigError

#: a configured scheduler: called with the optimizer and a function giving the run's total
#: optimizer steps
SchedulerFactory = Callable[..., LRScheduler | None]
TotalSteps = Callable[[], int]


def _check_warmup(warmup_steps: int) -> int:
    if not isinstance(warmup_steps, int) or isinstance(warmup_steps, bool) or warmup_steps < 0:
        raise ConfigError(
            "scheduler.warmup_steps",
            f"scheduler.warmup_steps={warmup_steps!r} must be an integer >= 0",
        )
    return warmup_steps


def _with_warmup(optimizer: Optimizer, warmup_steps: int, main: LRScheduler) -> LRScheduler:
    if warmup_steps == 0:
        return main
    if warmup_steps == 1:  # one step at the full rate: (0 + 1) / 1; the schedule starts after
        warmup: LRScheduler = ConstantLR(optimizer, 1.0, total_iters=0)
    else:
        warmup = LinearLR(optimizer, 1.0 / warmup_steps, 1.0, total_iters=warmup_steps - 1)
    return SequentialLR(optimizer, [warmup, main], milestones=[warmup_steps])


def constant(
    optimizer: Optimizer, total_steps: TotalSteps, warmup_steps: int = 0
) -> LRScheduler | None:
    """The optimizer's own rate throughout (None: no scheduler at all), after any warmup."""
    if _check_warmup(warmup_steps) <= 1:
        return None
    return _with_warmup(optimizer, warmup_steps, ConstantLR(optimizer, 1.0, total_iters=0))


def cosine(optimizer: Optimizer, total_steps: TotalSteps, warmup_steps: int = 0) -> LRScheduler:
    """Cosine decay to 0 over the steps after warmup."""
    warm = _check_warmup(warmup_steps)
    main = CosineAnnealingLR(optimizer, T_max=max(total_steps() - warm, 1))
    return _with_warmup(optimizer, warm, main)


def step(
    optimizer: Optimizer,
    total_steps: TotalSteps,
    warmup_steps: int = 0,
    step_size: int | None = None,
    gamma: float = 0.1,
) -> LRScheduler:
    """Multiply the rate by ``gamma`` every ``step_size`` steps after warmup (None: a third
    of the run)."""
    warm = _check_warmup(warmup_steps)
    size = max(total_steps() // 3, 1) if step_size is None else int(step_size)
    if size < 1:
        raise ConfigError("scheduler.step_size", f"scheduler.step_size={step_size} must be >= 1")
    return _with_warmup(optimizer, warm, StepLR(optimizer, step_size=size, gamma=gamma))
