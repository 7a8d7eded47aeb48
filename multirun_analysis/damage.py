"""Damage checks: a job that says ``finished`` but whose files do not hold the finished run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from multirun_analysis.folders import read_json, select


def _writes_csv(cfg: DictConfig) -> bool:
    loggers = select(cfg, "logger")
    return isinstance(loggers, Mapping) and any(
        "csv" in str((lg or {}).get("_target_", "")).lower() for lg in loggers.values()
    )


def damage(
    job_dir: Path, cfg: DictConfig, status: Mapping[str, Any], kind: str, series: pd.DataFrame
) -> str | None:
    """Why the files of a ``finished`` job do not hold its finished run (None: they do).

    A training job that writes ``metrics.csv`` must have one that reaches the step its
    status records (a truncated or emptied file ends earlier) and holds the test row; an
    ensemble must have ``summary.json`` and ``n_inits`` rows in ``inits.csv``."""
    if kind == "ensemble":
        summary = read_json(job_dir / "summary.json")
        if not summary:
            return "summary.json is missing or unreadable"
        rows = csv_rows(job_dir / "inits.csv")
        if rows != summary.get("n_inits"):
            return f"inits.csv holds {rows} initializations, summary.json {summary.get('n_inits')}"
        return None
    if not _writes_csv(cfg):
        return None
    path = job_dir / "metrics.csv"
    if series.empty:
        return f"{path.name} is missing, empty or unreadable"
    last, final = int(series["step"].max()), status.get("global_step")
    if isinstance(final, int) and last < final:
        return f"{path.name} ends at step {last}, the job finished at step {final}"
    if "test/acc" not in series or series["test/acc"].isna().all():
        return f"{path.name} has no test/acc row (cut short)"
    return None


def csv_rows(path: Path) -> int | None:
    try:
        return len(pd.read_csv(path))
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return None
