"""Reading one job folder: its config, overrides, status and metrics.csv.

A job folder is any folder holding ``.hydra/`` (what Hydra writes for every job it
starts). The resolved config is ``config.yaml``, else Hydra's ``.hydra/config.yaml``,
else the ``config`` of an ensemble's ``summary.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from igb.jobs.grid import job_overrides
from igb.jobs.status import JobFolder, job_order

#: status of a job whose folder exists but holds no status.json and no result
UNKNOWN = "unknown"

NOT_STARTED = "not_started"

FINISHED = "finished"


def find_job_dirs(root: Path) -> list[Path]:
    """Every folder under ``root`` (itself included) that Hydra made for one job."""
    root = Path(root)
    found = [p.parent for p in root.rglob(".hydra") if p.is_dir()]
    if (root / ".hydra").is_dir() and root not in found:
        found.append(root)
    return sorted(set(found), key=job_order)


class RecordError(Exception):
    """A job's file that cannot be read; the message names it. The analysis lists the job
    ``damaged`` with it and goes on with the others."""


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn any failure to read ``path`` into a :class:`RecordError` naming it."""
    try:
        yield
    except RecordError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file raises
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RecordError(f"{path} is unreadable ({type(exc).__name__}: {reason})") from exc


def read_yaml(path: Path) -> Any:
    """A YAML file (None when it is absent; :class:`RecordError` when it is damaged)."""
    if not path.is_file():
        return None
    with reading(path):
        return yaml.safe_load(path.read_text())


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object ({} when it is absent; :class:`RecordError` when it is damaged)."""
    if not path.is_file():
        return {}
    with reading(path):
        data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise RecordError(f"{path} is damaged (not a JSON object but {type(data).__name__})")
    return data


def read_csv(path: Path) -> pd.DataFrame | None:
    """A CSV table (None when it is absent or empty; :class:`RecordError` when it is
    damaged, a last row cut mid-line included: a job killed while writing it)."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with reading(path):
        with path.open("rb") as fh:
            fh.seek(-1, 2)
            if fh.read(1) != b"\n":
                raise RecordError(f"{path} is damaged (its last row is cut mid-line)")
        return pd.read_csv(path)


def load_config(job_dir: Path, summary: dict[str, Any]) -> DictConfig:
    """The job's config: resolved ``config.yaml`` when present, else Hydra's own copy,
    else the ``config`` of ``summary`` (the job's summary.json, as :func:`read_json` reads it).

    Hydra's copy is unresolved; values are then read with :func:`select`, which resolves
    what it can (nested interpolations such as the experiments' norm variants) and
    leaves runtime-only ones (``${hydra:...}``) as None.
    """
    for path in (job_dir / "config.yaml", job_dir / ".hydra" / "config.yaml"):
        data = read_yaml(path)
        if isinstance(data, dict):
            return OmegaConf.create(data)
    cfg = summary.get("config") if isinstance(summary.get("config"), dict) else {}
    return OmegaConf.create(cfg)


def select(cfg: DictConfig, key: str) -> Any:
    try:
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
    except Exception:  # noqa: BLE001 - a foreign resolver (hydra:) is not registered here
        return None
    if isinstance(value, DictConfig) or OmegaConf.is_list(value):
        return OmegaConf.to_container(value, resolve=False)
    return value


def read_overrides(job_dir: Path) -> list[str]:
    return job_overrides(job_dir)


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def override_value(override: str) -> str:
    return override.split("=", 1)[1] if "=" in override else ""


def job_status(job_dir: Path) -> dict[str, Any]:
    """``status``, ``error`` and the rest of status.json; ensembles may have only summary.json.

    A ``running`` job whose process is gone reads ``interrupted``, one that another live
    process runs ``running elsewhere`` (:meth:`igb.jobs.status.JobFolder.current`)."""
    status = JobFolder(job_dir).current()
    if not status.get("status"):
        if (job_dir / "summary.json").is_file():
            status["status"] = FINISHED
        else:
            status["status"] = UNKNOWN
            status.setdefault("error", "no status.json: the job never recorded a state")
    return status


def read_metrics(job_dir: Path) -> pd.DataFrame:
    """metrics.csv with one row per step (CSVLogger writes several rows for one step)."""
    path = job_dir / "metrics.csv"
    df = read_csv(path)
    if df is None:
        return pd.DataFrame()
    if "step" not in df:
        raise RecordError(f"{path} is damaged (no 'step' column)")
    with reading(path):
        return df.groupby("step", sort=True).first().copy().reset_index()
