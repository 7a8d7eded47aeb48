"""A grid's jobs and the folders that ran them: one matching.

A grid's jobs are Hydra's basic sweeper's expansion (:func:`igb.compat.split_grid`: the
sweep syntax needs Hydra's own parser). A job's folder holds its overrides in
``.hydra/overrides.yaml``; :func:`match_grid` pairs grid jobs with folders by those
overrides (spaces and quotes ignored, order ignored), for the end-of-multirun summary and
the analysis, which lists the jobs of a grid that never got a folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml


def job_overrides(folder: Path) -> list[str]:
    """The job's overrides, from its ``.hydra/overrides.yaml`` ([] when unreadable)."""
    try:
        overrides = yaml.safe_load((Path(folder) / ".hydra" / "overrides.yaml").read_bytes())
    except Exception:  # noqa: BLE001 - binary garbage, a YAML error: the job has no overrides
        return []
    return [str(o) for o in overrides] if isinstance(overrides, list) else []


def grid_key(overrides: Iterable[str]) -> tuple[str, ...]:
    """What identifies a job among a grid's: its overrides, sorted, without spaces and
    quotes (``a='x y'`` on the command line is ``a=x y`` in overrides.yaml)."""
    return tuple(
        sorted(
            str(o).replace(" ", "").replace("'", "").replace('"', "")
            for o in overrides
            if not str(o).startswith("ensemble.shard=")  # shards of one job share its folder
        )
    )


def match_grid(
    grid: Sequence[Sequence[str]], folders: Iterable[Path]
) -> tuple[list[Path], list[list[str]]]:
    """(the folders that ran a job of ``grid``, in the order given; the jobs of ``grid``
    without a folder, in grid order). A job given twice needs two folders."""
    wanted = [grid_key(job) for job in grid]
    matched = []
    for folder in folders:
        key = grid_key(job_overrides(folder))
        if key in wanted:
            wanted[wanted.index(key)] = None  # type: ignore[call-overload]
            matched.append(folder)
    missing = [list(job) for job, key in zip(grid, wanted) if key is not None]
    return matched, missing
