"""Hydra callbacks: at the end of a multirun, say which jobs failed (and exit non-zero)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from igb.job import DIVERGED, FINISHED, STATUS_FILE, JobFolder

log = logging.getLogger(__name__)


def collect_statuses(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """job folder name -> its status.json content ({} when the job never started)."""
    out: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name[0] != "."):
        if (folder / ".hydra").is_dir():
            out[folder.name] = JobFolder(folder).read()
    return out


class FailureReport(Callback):
    """Print one line per job that did not finish; exit 1 if any failed, was interrupted or
    never ran (a diverged job is an outcome, not a failure).

    Reached only when every job returned: ``igb.train.run`` records a job's exception in
    its folder and returns NaN in a multirun, because Hydra's sweeper stops at the first
    failed job, before ``on_multirun_end``."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        statuses = collect_statuses(sweep_dir)
        bad = {k: v for k, v in statuses.items() if v.get("status") != FINISHED}
        log.info("multirun: %d/%d jobs finished", len(statuses) - len(bad), len(statuses))
        overrides = {name: job_overrides(sweep_dir / name) for name in statuses}
        shared = set.intersection(*map(set, overrides.values())) if overrides else set()
        own = {  # what tells a job apart from the others
            name: " ".join(o for o in overrides[name] if o not in shared) or "-" for name in bad
        }
        for name, st in bad.items():
            log.error(
                "job %s (%s): %s%s; see %s",
                name,
                own[name],
                st.get("status", "no status"),
                f" - {st['error']}" if st.get("error") else "",
                sweep_dir / name / STATUS_FILE,
            )
        failed = [k for k, v in bad.items() if v.get("status") != DIVERGED]
        if failed:
            raise SystemExit(
                f"{len(failed)} of {len(statuses)} jobs did not finish: "
                f"{', '.join(f'{k} ({own[k]})' for k in failed)} "
                f"(in {sweep_dir}; relaunching the same command resumes them and skips "
                "the finished ones)"
            )


def job_overrides(folder: Path) -> list[str]:
    """The job's overrides, from its ``.hydra/overrides.yaml``."""
    try:
        overrides = OmegaConf.load(folder / ".hydra" / "overrides.yaml")
    except (OSError, ValueError):
        return []
    return [str(o) for o in overrides] if isinstance(overrides, ListConfig) else []
