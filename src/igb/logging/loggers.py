"""Logger factories used by ``conf/logger``: W&B that never prompts or hangs offline."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger

from igb.compat import drop_unset_wandb_init_key, logger_run
from igb.logging.wandb_mode import resolve_mode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WandbRun:
    """What names one job's W&B run, built by the job (not in ``conf/logger``).

    ``config`` is the resolved job configuration (W&B's run config); ``run_id`` comes from
    the job folder, so a resumed job continues the same W&B run."""

    group: str | None = None
    job_type: str | None = None
    tags: list[str] | None = None
    config: dict[str, Any] | None = None
    run_id: str | None = None


def wandb_logger(
    save_dir: str,
    project: str = "igb",
    entity: str | None = None,
    mode: str = "auto",
    run: WandbRun | None = None,
    **kwargs: Any,
) -> WandbLogger | None:
    """A WandbLogger whose mode is decided without network (see ``resolve_mode``), for the
    job ``run`` names. Returns None when W&B is disabled.
    """
    run = run if run is not None else WandbRun()
    resolved, message = resolve_mode(mode, save_dir=str(Path(save_dir) / "wandb"))
    if message:
        log.info(message)
    if resolved == "disabled":
        return None
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    logger = WandbLogger(
        save_dir=save_dir,
        project=project,
        entity=entity,
        id=run.run_id or secrets.token_hex(4),
        resume="allow",
        group=run.group,
        job_type=run.job_type,
        tags=run.tags,
        config=run.config,
        mode=resolved,
        settings=wandb.Settings(console="off", x_disable_stats=True, init_timeout=60),
        **kwargs,
    )
    # Lightning always passes `anonymous` (None by default) and wandb 0.31 warns about
    # any value of it ("has no effect"): drop the key unless the user set it
    drop_unset_wandb_init_key(logger, "anonymous")
    return logger


def finish_loggers(loggers: list[Any], exit_code: int = 0) -> None:
    """Finish every W&B run a job's loggers opened.

    Flushes the run to its files (complete on disk when this returns) and closes it, so the
    next job of a multirun in the same process starts its own run instead of Lightning
    reusing this one (``wandb.run`` is process-global).
    """
    finished = False
    for lg in loggers:
        if isinstance(lg, WandbLogger) and logger_run(lg) is not None:
            lg.experiment.finish(exit_code=exit_code)
            finished = True
    if finished:
        import wandb

        # wandb 0.31's finish() can return before wandb-core has written the last records
        # (the exit record included) to run-*.wandb; tearing the service down waits for
        # that (a few ms; the next run of this process starts a fresh service)
        if wandb.run is None:
            wandb.teardown()
