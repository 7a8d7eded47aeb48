"""The jobs of a sweep's grid that never got a folder (rows with status ``not_started``).

The grid is re-expanded from the sweep's ``multirun.yaml`` the way Hydra's basic sweeper
expands it (:func:`igb.compat.split_grid`), and matched to the job folders by their
overrides (:func:`igb.jobs.grid.match_grid`), as the end-of-multirun summary does.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from igb.compat import split_grid
from igb.jobs.grid import match_grid
from igb.jobs.identity import norm_label
from multirun_analysis.choices import CHOICES, extra_choice
from multirun_analysis.folders import NOT_STARTED, override_key, override_value, read_yaml


def expected_jobs(sweep_dir: Path) -> list[list[str]]:
    """The override list of every job of the sweep, re-expanded from multirun.yaml.

    ``hydra.sweeper.params`` first, then the command line's overrides (a key given on
    both takes the command line's value). Empty when the sweep has no readable
    multirun.yaml or another sweeper ran it.
    """
    data = read_yaml(sweep_dir / "multirun.yaml")
    if not isinstance(data, dict):
        return []
    hydra = data.get("hydra") or {}
    sweeper = hydra.get("sweeper") or {}
    if "basic_sweeper" not in str(sweeper.get("_target_", "basic_sweeper")):
        return []
    params = sweeper.get("params") or {}
    task = (hydra.get("overrides") or {}).get("task") or []
    try:
        return split_grid(params, [str(t) for t in task])
    except Exception:  # noqa: BLE001 - an unparsable grid only loses the not-started rows
        return []


def missing_jobs(sweep_dir: Path, job_dirs: Iterable[Path]) -> list[list[str]]:
    """Jobs of the expanded grid that have no folder in ``sweep_dir``."""
    return match_grid(expected_jobs(sweep_dir), job_dirs)[1]


GROUP_COLUMNS = {
    "model": "model",
    "norm": "norm_placement",
    "dataset": "dataset",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
}


def not_started_row(sweep_dir: Path, overrides: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in CHOICES}
    values = {override_key(o): override_value(o) for o in overrides}
    for col, key in CHOICES.items():
        if key in values:
            row[col] = coerce(values[key])
    # group choices: the option names of model/dataset/optimizer are their `name`s, and
    # those of norm are the placements
    for group, col in GROUP_COLUMNS.items():
        if group in values and row.get(col) is None:
            row[col] = values[group]
    for key, value in values.items():
        if extra_choice(key) and key not in GROUP_COLUMNS and key not in row:
            row[key] = coerce(value)
    row["norm"] = norm_label(row.get("norm_placement"), row.get("norm_kind"))
    row.update(
        job=None,
        sweep=sweep_dir.name,
        job_dir=None,
        status=NOT_STARTED,
        error="in the grid of multirun.yaml but no job folder exists",
        overrides=" ".join(overrides),
        kind=None,
    )
    return row


def coerce(value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value
