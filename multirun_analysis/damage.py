"""Damage checks: a job that says ``finished`` but whose files do not hold the finished run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from multirun_analysis.folders import select


def _writes_csv(cfg: DictConfig) -> bool:
    loggers = select(cfg, "logger")
    return isinstance(loggers, Mapping) and any(
        "csv" in str((lg or {}).get("_target_", "")).lower() for lg in loggers.values()
    )


def damage(
    cfg: DictConfig,
    status: Mapping[str, Any],
    kind: str,
    series: pd.DataFrame,
    summary: Mapping[str, Any],
    inits: pd.DataFrame | None,
) -> str | None:
    """Why the files of a ``finished`` job do not hold its finished run (None: they do).

    ``series``, ``summary`` and ``inits``: the job's metrics.csv, summary.json and
    inits.csv as read for its tables (:func:`multirun_analysis.collect.read_job`; ``{}``
    and None where missing or unreadable). A training job that writes ``metrics.csv``
    must have one that reaches the step its status records (a truncated or emptied file
    ends earlier) and holds the test row; an ensemble must have ``summary.json`` and
    ``n_inits`` rows in ``inits.csv``."""
    if kind == "ensemble":
        if not summary:
            return "summary.json is missing or unreadable"
        rows = None if inits is None else len(inits)
        if rows != summary.get("n_inits"):
            return f"inits.csv holds {rows} initializations, summary.json {summary.get('n_inits')}"
        return None
    if not _writes_csv(cfg):
        return None
    if series.empty:
        return "metrics.csv is missing, empty or unreadable"
    last, final = int(series["step"].max()), status.get("global_step")
    if isinstance(final, int) and last < final:
        return f"metrics.csv ends at step {last}, the job finished at step {final}"
    if "test/acc" not in series or series["test/acc"].isna().all():
        return "metrics.csv has no test/acc row (cut short)"
    return None
