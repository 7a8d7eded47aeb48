"""Hydra callbacks: at the end of a multirun, say which jobs failed (and exit non-zero).

The report covers the jobs of this launch only (its grid, matched to folders by their
``.hydra/overrides.yaml``), not every folder the sweep folder holds."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from igb.job import DIVERGED, ELSEWHERE, FINISHED, STATUS_FILE, JobFolder

log = logging.getLogger(__name__)


def _normalised(overrides: list[str]) -> tuple[str, ...]:
    return tuple(sorted(o.replace(" ", "") for o in overrides))


def collect_statuses(
    sweep_dir: Path, grid: list[list[str]] | None = None
) -> dict[str, dict[str, Any]]:
    """job folder name -> its status (:meth:`JobFolder.current`; {} when the job never
    started). With ``grid``, only the folders of those jobs, and ``<not started: ...>``
    entries for jobs of the grid without a folder."""
    out: dict[str, dict[str, Any]] = {}
    wanted = [_normalised(job) for job in grid] if grid is not None else None
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name[0] != "."):
        if not (folder / ".hydra").is_dir():
            continue
        if wanted is not None:
            key = _normalised(job_overrides(folder))
            if key not in wanted:
                continue  # a folder of an earlier launch into this sweep folder
            wanted.remove(key)
        out[folder.name] = JobFolder(folder).current()
    for job in wanted or []:
        out[f"<not started: {' '.join(job)}>"] = {"overrides": job}
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
        statuses = collect_statuses(sweep_dir, launched_jobs(config))
        bad = {k: v for k, v in statuses.items() if v.get("status") != FINISHED}
        elsewhere = {k: v for k, v in bad.items() if v.get("status") == ELSEWHERE}
        log.info(
            "multirun: %d/%d jobs finished%s",
            len(statuses) - len(bad),
            len(statuses),
            f", {len(elsewhere)} being run by another process" if elsewhere else "",
        )
        overrides = {
            name: st.get("overrides") or job_overrides(sweep_dir / name)
            for name, st in statuses.items()
        }
        shared = set.intersection(*map(set, overrides.values())) if overrides else set()
        own = {  # what tells a job apart from the others
            name: " ".join(o for o in overrides[name] if o not in shared) or "-" for name in bad
        }
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
                "job %s (%s): %s%s; see %s",
                name,
                own[name],
                st.get("status", "no status"),
                f" - {st['error']}" if st.get("error") else "",
                sweep_dir / name / STATUS_FILE,
            )
        failed = [k for k, v in bad.items() if v.get("status") not in (DIVERGED, ELSEWHERE)]
        if failed:
            raise SystemExit(
                f"{len(failed)} of {len(statuses)} jobs did not finish: "
                f"{', '.join(f'{k} ({own[k]})' for k in failed)} "
                f"(in {sweep_dir}; relaunching the same command resumes them and skips "
                "the finished ones)"
            )


def launched_jobs(config: DictConfig) -> list[list[str]] | None:
    """The override lists of this launch's jobs (None: not a basic-sweeper grid)."""
    from igb.cli import split_grid

    sweeper = OmegaConf.select(config, "hydra.sweeper")
    if sweeper is None or "basic_sweeper" not in str(sweeper.get("_target_", "")).lower():
        return None
    params = sweeper.get("params") or {}
    if OmegaConf.is_config(params):
        params = OmegaConf.to_container(params, resolve=False)
    try:
        return split_grid(params, list(OmegaConf.select(config, "hydra.overrides.task") or []))
    except Exception:  # noqa: BLE001 - an unreadable grid: report every folder
        return None


def job_overrides(folder: Path) -> list[str]:
    """The job's overrides, from its ``.hydra/overrides.yaml``."""
    try:
        overrides = OmegaConf.load(folder / ".hydra" / "overrides.yaml")
    except (OSError, ValueError):
        return []
    return [str(o) for o in overrides] if isinstance(overrides, ListConfig) else []
