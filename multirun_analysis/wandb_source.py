"""W&B runs -> the same tables as job folders (:mod:`multirun_analysis.collect`).

- :func:`collect_offline`: every W&B run folder under a root (``wandb/offline-run-*`` or
  synced ``run-*``), read from its ``.wandb`` file by :mod:`multirun_analysis.wandb_files`;
  no network, no login.
- :func:`collect_project`: the runs of a W&B project (optionally one group = one sweep)
  through ``wandb.Api()``; needs network and credentials, and is only used when asked.

Each run carries the resolved Hydra config as its W&B config, so the config-choice
columns are the same as for job folders. The status comes from the job folder's
``status.json`` when the run lies inside one, else from W&B (the exit code offline,
``run.state`` online).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from multirun_analysis.choices import choices_row
from multirun_analysis.collect import Collection, finish
from multirun_analysis.folders import FINISHED, job_status
from multirun_analysis.results import (
    DEFAULT_TOL,
    as_int,
    missing,
    split_shares,
    train_results,
)

#: W&B history key of the optimizer step (Lightning's WandbLogger)
STEP_KEY = "trainer/global_step"
#: W&B's online run states -> job status
_STATES = {"finished": FINISHED, "failed": "failed", "crashed": "failed", "killed": "interrupted"}


def history_to_series(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """W&B history rows -> one row per optimizer step with a ``step`` column (like metrics.csv)."""
    flat = []
    for row in rows:
        step = row.get(STEP_KEY)
        if missing(step):
            continue
        item = {
            k: v
            for k, v in row.items()
            if not k.startswith("_") and k != STEP_KEY and isinstance(v, int | float | bool)
        }
        item["step"] = int(step)
        flat.append(item)
    if not flat:
        return pd.DataFrame()
    return pd.DataFrame(flat).groupby("step", sort=True).first().copy().reset_index()


def _is_ensemble(
    config: Mapping[str, Any], summary: Mapping[str, Any], series: pd.DataFrame
) -> bool:
    """An ensemble.py run: its config has the ``ensemble`` group, its summary a gamma, and
    it logged no per-step statistics (the WandbLogger still adds a global-step row)."""
    has_gamma = any(k.split("/")[-1] == "gamma" for k in summary)
    per_step = any(str(c).startswith("igb/") for c in series.columns)
    return has_gamma and not per_step and ("ensemble" in config or series.empty)


def _ensemble_results(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar summary entries, keyed by their last path part (``ensemble/gamma`` -> gamma)."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        name = key.split("/")[-1]
        if isinstance(value, bool | int | float | str):
            out.setdefault(name, value)
        elif isinstance(value, list | tuple) and len(value) == 2 and name.endswith("_ci"):
            out[f"{name}_lo"], out[f"{name}_hi"] = value
    return out


def run_row(
    name: str,
    location: str,
    config: Mapping[str, Any],
    history: Iterable[Mapping[str, Any]],
    summary: Mapping[str, Any],
    status: str,
    error: str | None,
    group: str | None,
    tol: float,
) -> tuple[dict[str, Any], pd.DataFrame]:
    cfg = OmegaConf.create(dict(config))
    row = choices_row(cfg, [], summary)
    row.update(job=name, sweep=group, job_dir=location, status=status, error=error, overrides="")
    series = history_to_series(history)
    if _is_ensemble(config, summary, series):
        row["kind"] = "ensemble"
        series = pd.DataFrame()
        row.update({k: v for k, v in _ensemble_results(summary).items() if k not in row})
    else:
        row["kind"] = "train"
        shares = split_shares(config.get("split_shares"))
        row.update(train_results(series, as_int(row.get("num_classes")), tol, shares))
    return row, series


def _offline_table(run_dir: Path, history: Iterable[Mapping[str, Any]], name: str) -> pd.DataFrame:
    """The W&B table logged under a key ending in ``name``, read from the run's files."""
    for row in history:
        for key, value in row.items():
            is_table = isinstance(value, Mapping) and value.get("_type") == "table-file"
            if not (is_table and key.rsplit("/", 1)[-1] == name):
                continue
            path = run_dir / "files" / str(value.get("path", ""))
            try:
                data = json.loads(path.read_text())
                return pd.DataFrame(data["data"], columns=data["columns"])
            except (OSError, ValueError, KeyError):
                return pd.DataFrame()
    return pd.DataFrame()


def _offline_status(run: Any) -> tuple[str, str | None]:
    """status.json of the job folder holding the run (``<job>/wandb/<run>``), else W&B's."""
    job_dir = Path(run.path).parent.parent.parent
    if (job_dir / "status.json").is_file():
        st = job_status(job_dir)
        return st["status"], st.get("error")
    if run.exit_code is None:
        return "running", "no exit record: the run is still being written or was cut short"
    if run.exit_code == 0:
        return FINISHED, None
    return "failed", f"W&B exit code {run.exit_code}"


def _add_run(
    rows: list[dict], series_parts: list[Any], run_id: str, location: str, fields: tuple, tol: float
) -> dict:
    """Append a run's row (and its series, if any) read from disk or from the W&B API.

    ``fields``: config, history, summary, status, error, group, as :func:`run_row` takes them.
    """
    config, history, summary, status, error, group = fields
    row, series = run_row(run_id, location, config, history, summary, status, error, group, tol)
    rows.append(row)
    if not series.empty:
        series_parts.append(series.assign(job_dir=location))
    return row


def collect_offline(root: str | Path, tol: float = DEFAULT_TOL) -> Collection:
    """Every W&B run folder under ``root``, read from disk."""
    from multirun_analysis.wandb_files import find_run_dirs, read_run

    rows, series_parts, inits_parts = [], [], []
    for run_dir in find_run_dirs(root):
        try:
            run = read_run(run_dir)
        except ValueError as exc:  # a damaged file is listed, not dropped
            rows.append(
                {"job": run_dir.name, "job_dir": str(run_dir), "status": "unreadable",
                 "error": str(exc), "kind": None, "norm": None}
            )  # fmt: skip
            continue
        status, error = _offline_status(run)
        location = str(run_dir)
        fields = (run.config, run.history, run.summary, status, error, run.group)
        row = _add_run(rows, series_parts, run.run_id or run_dir.name, location, fields, tol)
        row["job_type"] = run.job_type
        if row["kind"] == "ensemble":  # the per-initialization table of ensemble.py
            inits = _offline_table(run_dir, run.history, "inits")
            if not inits.empty:
                inits_parts.append(inits.assign(job_dir=location))
    return finish(str(root), rows, series_parts, inits_parts, tol)


def collect_project(
    path: str, group: str | None = None, tol: float = DEFAULT_TOL, api: Any = None
) -> Collection:
    """Runs of the W&B project ``entity/project`` (only ``group`` when given), online."""
    if api is None:
        import wandb

        api = wandb.Api(timeout=60)
    filters = {"group": group} if group else None
    rows, series_parts = [], []
    for run in api.runs(path, filters=filters):
        status = _STATES.get(run.state, run.state)
        error = None if status == FINISHED else f"W&B state {run.state}"
        location = f"wandb:{path}/{run.id}"
        summary = dict(getattr(run.summary, "_json_dict", run.summary) or {})
        fields = (dict(run.config), run.scan_history(), summary, status, error, run.group)
        row = _add_run(rows, series_parts, run.id, location, fields, tol)
        row["job_type"] = run.job_type
    return finish(
        f"wandb:{path}" + (f" (group {group})" if group else ""), rows, series_parts, [], tol
    )
