"""Hydra callbacks: at the end of a multirun, say which jobs failed (and exit non-zero)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from igb.job import FINISHED, JobFolder

log = logging.getLogger(__name__)


def collect_statuses(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """job folder name -> its status.json content ({} when the job never started)."""
    out: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name[0] != "."):
        if (folder / ".hydra").is_dir():
            out[folder.name] = JobFolder(folder).read()
    return out


class FailureReport(Callback):
    """Print one line per job that did not finish; exit 1 if any failed or never ran."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        statuses = collect_statuses(sweep_dir)
        bad = {k: v for k, v in statuses.items() if v.get("status") != FINISHED}
        log.info("multirun: %d/%d jobs finished", len(statuses) - len(bad), len(statuses))
        for name, st in bad.items():
            log.error(
                "job %s: %s%s",
                name,
                st.get("status", "no status"),
                f" - {st['error']}" if st.get("error") else "",
            )
        failed = [k for k, v in bad.items() if v.get("status") != "diverged"]
        if failed:
            raise SystemExit(f"{len(failed)} of {len(statuses)} jobs failed: {', '.join(failed)}")
