"""Hydra callbacks: at the end of a multirun, summarise it (igb.jobs.summary: one line per
job, the command to run next) and say which jobs failed (exit 1).

The report covers the jobs of this launch only (its grid, matched to folders by their
``.hydra/overrides.yaml``), not every folder the sweep folder holds."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from igb.compat import split_grid
from igb.jobs import summary as run_summary
from igb.jobs.grid import job_overrides, match_grid
from igb.jobs.identity import group_name
from igb.jobs.integrity import folder_damage
from igb.jobs.runner import STOP_MARKER
from igb.jobs.status import (
    DAMAGED,
    ELSEWHERE,
    FINISHED,
    LAUNCH_ENV,
    RUNNING,
    STATUS_FILE,
    TWIN,
    JobFolder,
    job_order,
)
from igb.launch.shards import one_job_per_shard_set
from igb.launch.stop_grid import install_stop_handlers

log = logging.getLogger(__name__)


def collect_statuses(
    sweep_dir: Path, grid: list[list[str]] | None = None
) -> dict[str, dict[str, Any]]:
    """job folder name -> its status (:meth:`JobFolder.current`; {} when the job never
    started). With ``grid``, only the folders of those jobs, and ``<not started: ...>``
    entries for jobs of the grid without a folder."""
    folders = [
        p
        for p in sorted(sweep_dir.iterdir(), key=job_order)
        if p.is_dir() and p.name[0] != "." and (p / ".hydra").is_dir()
    ]
    missing: list[list[str]] = []
    if grid is not None:  # folders of earlier launches into this sweep folder are left out
        folders, missing = match_grid(grid, folders)
    out: dict[str, dict[str, Any]] = {f.name: folder_status(f) for f in folders}
    for job in missing:
        out[f"<not started: {' '.join(job)}>"] = {"overrides": job}
    return out


def folder_status(folder: Path) -> dict[str, Any]:
    """A job folder's status as the grid's report gives it: ``damaged`` (with the one line
    of :func:`igb.jobs.integrity.folder_damage`) when its records do not hold what its
    status says, ``ran_here`` when this launch ran it (:data:`LAUNCH_ENV`)."""
    status = JobFolder(folder).current()
    if status.get("status") not in (ELSEWHERE, RUNNING):
        broken = folder_damage(folder, crc=False)
        if broken:
            status = {**status, "status": DAMAGED, "error": broken}
    launch = os.environ.get(LAUNCH_ENV)
    status["ran_here"] = launch is not None and status.get("launch") == launch
    return status


def status_pointer(folder: Path) -> str:
    """Where to read more about a job of the report: its status file, or why there is none."""
    if (folder / STATUS_FILE).is_file():
        return f"see {folder / STATUS_FILE}"
    if folder.is_dir():
        return f"{folder} holds no {STATUS_FILE} (the job never started)"
    return "no folder (the job never started)"


class FailureReport(Callback):
    """Summarise the grid; exit 1 if any job failed, diverged, was interrupted or never
    ran (a job being run by another launch reports there and does not count here).

    Reached only when every job returned: ``igb.training.run.run`` records a job's exception in
    its folder and returns NaN in a multirun, because Hydra's sweeper stops at the first
    failed job, before ``on_multirun_end``."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """With parallel local workers, a stop signal to the launcher stops them too and
        still reports (:mod:`igb.launch.stop_grid`)."""
        sweep_dir = Path(config.hydra.sweep.dir)
        (sweep_dir / STOP_MARKER).unlink(missing_ok=True)  # an earlier launch's stop
        # every job this launch runs records it (local workers and SLURM jobs inherit it)
        os.environ[LAUNCH_ENV] = f"{socket.gethostname()}:{os.getpid()}:{time.time():.6f}"
        launcher = str(OmegaConf.select(config, "hydra.launcher._target_") or "").lower()
        if "joblib" not in launcher:
            return
        grid = launched_jobs(config)  # parsed once: jobs_running is polled while stopping

        def jobs_running() -> bool:
            if not sweep_dir.is_dir():
                return False
            statuses = collect_statuses(sweep_dir, grid)
            return any(st.get("status") == RUNNING for st in statuses.values())

        install_stop_handlers(sweep_dir, jobs_running, lambda: self.on_multirun_end(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        statuses = collect_statuses(sweep_dir, launched_jobs(config))
        bad = {k: v for k, v in statuses.items() if v.get("status") not in (FINISHED, TWIN)}
        elsewhere = {k: v for k, v in bad.items() if v.get("status") == ELSEWHERE}
        overrides = {
            name: st.get("overrides") or job_overrides(sweep_dir / name)
            for name, st in statuses.items()
        }
        shared = set.intersection(*map(set, overrides.values())) if overrides else set()
        own = {  # what tells a job apart from the others
            name: " ".join(o for o in overrides[name] if o not in shared) or "-"
            for name in statuses
        }
        for line in run_summary.multirun_lines(sweep_dir, statuses, own):
            log.info(line)
        group = wandb_group(config)
        if group:
            log.info("multirun: W&B group %s (its runs in W&B, and the dashboard's --group)", group)
        if elsewhere:
            log.info("multirun: %d jobs being run by another process", len(elsewhere))
        for name, st in elsewhere.items():
            holder = st["holder"]
            log.warning(
                "job %s (%s): being run by pid %s on %s (another launch); it reports there",
                name, own[name], holder.get("pid", "?"), holder.get("host", "?"),
            )  # fmt: skip
        for name, st in bad.items():
            if name in elsewhere:
                continue
            log.error(
                "job %s (%s): %s%s; %s",
                name,
                own[name],
                st.get("status", "no status"),
                f" - {st['error']}" if st.get("error") else "",
                status_pointer(sweep_dir / name),
            )
        failed = [k for k in run_summary.unsuccessful(statuses) if k not in elsewhere]
        if failed:
            raise SystemExit(run_summary.failure_message(sweep_dir, statuses, failed, own))


def wandb_group(config: DictConfig) -> str | None:
    """The W&B group of this multirun's runs when they log to W&B (None otherwise)."""
    loggers = OmegaConf.select(config, "logger") or {}
    targets = [str(OmegaConf.select(lg, "_target_") or "") for lg in loggers.values() if lg]
    if not any("wandb" in t.lower() for t in targets):
        return None
    experiment = OmegaConf.select(config, "hydra.runtime.choices.experiment")
    return group_name(config.hydra.sweep.dir, experiment)


def launched_jobs(config: DictConfig) -> list[list[str]] | None:
    """The override lists of this launch's jobs (None: not a basic-sweeper grid)."""
    sweeper = OmegaConf.select(config, "hydra.sweeper")
    if sweeper is None or "basic_sweeper" not in str(sweeper.get("_target_", "")).lower():
        return None
    params = sweeper.get("params") or {}
    if OmegaConf.is_config(params):
        params = OmegaConf.to_container(params, resolve=False)
    try:
        jobs = split_grid(params, list(OmegaConf.select(config, "hydra.overrides.task") or []))
        return one_job_per_shard_set(jobs)
    except Exception:  # noqa: BLE001 - an unreadable grid: report every folder
        return None
