"""Logger factories used by ``conf/logger``: W&B that never prompts or hangs offline."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger

from igb.compat import drop_unset_wandb_init_key, logger_run
from igb.logging.tracked_run import TrackedRun
from igb.logging.wandb_mode import resolve_mode

log = logging.getLogger(__name__)


def wandb_logger(
    save_dir: str,
    project: str = "igb",
    entity: str | None = None,
    mode: str = "auto",
    system_metrics: bool | str = "auto",
    log_model: bool | str = False,
    run: TrackedRun | None = None,
    **kwargs: Any,
) -> WandbLogger | None:
    """A WandbLogger whose mode is decided without network (see ``resolve_mode``).

    The arguments but ``run`` are ``logger.wandb.*`` (conf/logger/wandb.yaml); ``run`` is
    the job's name, tags, group, resolved config and the run id its folder kept, so a
    resumed job continues the same W&B run. ``system_metrics``: W&B's CPU/memory/GPU
    charts; ``auto`` turns them on where a CUDA GPU is visible. ``log_model``:
    Lightning's (``true``/``all``); igb's own ``last.ckpt`` is logged by
    :func:`log_final_checkpoint`. Returns None when W&B is disabled.
    """
    resolved, message = resolve_mode(mode, save_dir=str(Path(save_dir) / "wandb"))
    if message:
        log.info(message)
    if resolved == "disabled":
        return None
    run = run or TrackedRun()
    if run.name is not None:
        kwargs["name"] = run.name
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
        tags=None if run.tags is None else list(run.tags),
        config=None if run.config is None else dict(run.config),
        mode=resolved,
        settings=wandb.Settings(
            console="off", x_disable_stats=not stats_on(system_metrics), init_timeout=60
        ),
        log_model=log_model,
        **kwargs,
    )
    # Lightning always passes `anonymous` (None by default) and wandb 0.31 warns about
    # any value of it ("has no effect"): drop the key unless the user set it
    drop_unset_wandb_init_key(logger, "anonymous")
    logger.igb_log_model = log_model  # read by log_final_checkpoint
    return logger


def stats_on(system_metrics: bool | str) -> bool:
    """Whether W&B samples system metrics: ``auto`` = a CUDA GPU is visible."""
    if system_metrics == "auto":
        import torch

        return torch.cuda.is_available()
    if not isinstance(system_metrics, bool):
        raise ValueError(
            f"logger.wandb.system_metrics={system_metrics!r}; allowed: auto, true, false"
        )
    return system_metrics


def log_final_checkpoint(loggers: list[Any], checkpoint: Path) -> None:
    """``logger.wandb.log_model=true|all``: the job's final ``last.ckpt`` as a W&B model
    artifact ``model-<run id>`` (aliases ``latest``, ``final``). Lightning logs only the
    checkpoints of a ModelCheckpoint callback, and igb writes last.ckpt itself."""
    if not checkpoint.is_file():
        return
    for lg in loggers:
        if getattr(lg, "igb_log_model", False) and logger_run(lg) is not None:
            import wandb

            run = lg.experiment
            artifact = wandb.Artifact(f"model-{run.id}", type="model")
            artifact.add_file(str(checkpoint), name="last.ckpt")
            run.log_artifact(artifact, aliases=["latest", "final"])


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
