"""Hydra callbacks: at the end of a multirun, summarise it and say which jobs failed (exit 1)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from igb import run_summary
from igb.job import FINISHED, STATUS_FILE, JobFolder

log = logging.getLogger(__name__)


def collect_statuses(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """job folder name -> its status.json content ({} when the job never started)."""
    out: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name[0] != "."):
        if (folder / ".hydra").is_dir():
            out[folder.name] = JobFolder(folder).read()
    return out


class FailureReport(Callback):
    """Summarise the grid (igb.run_summary); exit 1 if any job failed, diverged, was
    interrupted or never ran.

    Reached only when every job returned: ``igb.train.run`` records a job's exception in
    its folder and returns NaN in a multirun, because Hydra's sweeper stops at the first
    failed job, before ``on_multirun_end``."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        statuses = collect_statuses(sweep_dir)
        bad = {k: v for k, v in statuses.items() if v.get("status") != FINISHED}
        overrides = {name: job_overrides(sweep_dir / name) for name in statuses}
        shared = set.intersection(*map(set, overrides.values())) if overrides else set()
        own_all = {  # what tells a job apart from the others
            name: " ".join(o for o in overrides[name] if o not in shared) or "-"
            for name in statuses
        }
        own = {name: own_all[name] for name in bad}
        # [issue 12] end-of-multirun summary; diverged jobs count as failed
        for line in run_summary.multirun_lines(sweep_dir, statuses, own_all):
            log.info(line)
        for name, st in bad.items():
            log.error(
                "job %s (%s): %s%s; see %s",
                name,
                own[name],
                st.get("status", "no status"),
                f" - {st['error']}" if st.get("error") else "",
                sweep_dir / name / STATUS_FILE,
            )
        failed = run_summary.unsuccessful(statuses)
        if failed:
            raise SystemExit(run_summary.failure_message(sweep_dir, statuses, failed, own))


def job_overrides(folder: Path) -> list[str]:
    """The job's overrides, from its ``.hydra/overrides.yaml``."""
    try:
        overrides = OmegaConf.load(folder / ".hydra" / "overrides.yaml")
    except (OSError, ValueError):
        return []
    return [str(o) for o in overrides] if isinstance(overrides, ListConfig) else []
