"""Job folders of a multirun -> tidy tables.

Every folder holding ``.hydra/`` is one job (:mod:`multirun_analysis.folders` reads it).
Three tables come out (:class:`Collection`):

- ``jobs``: one row per job, finished or not, with one column per config choice
  (:data:`multirun_analysis.choices.CHOICES`, plus every other key the grid overrides),
  the status and error, and per-job results (:mod:`multirun_analysis.results`: step-0
  bias, final accuracy, time to neutrality, gamma, regime);
- ``series``: one row per (job, logged step), every metric of ``metrics.csv`` as a column;
- ``inits``: one row per (ensemble job, initialization), the columns of ``inits.csv``.

A job that says ``finished`` but whose files do not hold the finished run is marked
``damaged`` (:mod:`multirun_analysis.damage`), and so is a job whose records are damaged or
disagree, or an unfinished ensemble with a block of initializations that cannot be read
(:mod:`igb.jobs.integrity`). Jobs of the grid that never started (no
folder at all) get a ``not_started`` row (:mod:`multirun_analysis.grid`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from igb.jobs.files import atomic_write
from igb.jobs.integrity import block_damage, folder_damage
from igb.jobs.status import DAMAGED, TWIN
from multirun_analysis.choices import (
    CHOICES,
    choice_columns,
    choices_row,
    config_label,
    varying_columns,
)
from multirun_analysis.damage import damage
from multirun_analysis.folders import (
    FINISHED,
    RecordError,
    find_job_dirs,
    job_status,
    load_config,
    read_json,
    read_metrics,
    read_overrides,
)
from multirun_analysis.grid import missing_jobs, not_started_row
from multirun_analysis.results import (
    DEFAULT_TOL,
    as_int,
    ensemble_results,
    interval_regimes,
    missing,
    read_inits,
    read_split_shares,
    theory_columns,
    train_results,
)


@dataclass
class Collection:
    """What :func:`collect` returns; ``source`` is the folder (or W&B path) read."""

    source: str
    jobs: pd.DataFrame
    series: pd.DataFrame
    inits: pd.DataFrame
    #: names of the config-choice columns of ``jobs`` that take more than one value
    varying: list[str] = field(default_factory=list)
    tol: float = DEFAULT_TOL

    @property
    def not_finished(self) -> pd.DataFrame:
        """Jobs without a result (a twin's result is the job it repeats: not listed)."""
        return self.jobs[~self.jobs["status"].isin((FINISHED, TWIN))]

    @property
    def twins(self) -> pd.DataFrame:
        """Jobs that repeat another job of their sweep (:mod:`igb.jobs.twins`): counted once."""
        return self.jobs[self.jobs["status"] == TWIN]

    def save(self, out: Path) -> list[Path]:
        """jobs/series/inits as CSV under ``out``, and as parquet where pyarrow is installed
        (``pip install -e ".[parquet]"``); returns the paths written."""
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in ("jobs", "series", "inits"):
            df: pd.DataFrame = getattr(self, name)
            if name != "jobs" and df.empty:
                continue
            csv = out / f"{name}.csv"
            # atomically: a full disk leaves the previous table, never half a file
            atomic_write(csv, lambda tmp, df=df: df.to_csv(tmp, index=False))
            written.append(csv)
            if parquet_available():
                parquet = out / f"{name}.parquet"
                atomic_write(parquet, lambda tmp, df=df: _to_parquet(df, tmp))
                written.append(parquet)
        return written


def parquet_available() -> bool:
    """Whether pandas can write parquet here (pyarrow, the ``parquet`` extra)."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _to_parquet(df: pd.DataFrame, path: Path) -> None:
    # object columns mixing types (e.g. a swept key that is sometimes a list) as strings
    clean = df.copy()
    for col in clean.columns:
        if clean[col].dtype == object:
            values = clean[col].dropna()
            if not values.map(type).eq(str).all():
                clean[col] = clean[col].map(lambda v: v if missing(v) else str(v))
    clean.to_parquet(path, index=False)


def read_job(job_dir: Path, tol: float = DEFAULT_TOL) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(jobs row, series rows, inits rows) of one job folder. A folder whose files cannot be
    read is one ``damaged`` row naming the file and the reason; it never stops the others."""
    # records damaged or naming another config; a block of initializations cut short
    broken = folder_damage(job_dir, crc=False) or block_damage(job_dir)
    try:
        row, series, inits = _read_job(job_dir, tol)
    except Exception as exc:  # noqa: BLE001 - one damaged job never sinks the analysis
        reason = (
            str(exc) if isinstance(exc, RecordError)
            else f"{job_dir} cannot be read ({type(exc).__name__}: {exc})"
        )  # fmt: skip
        row = _damaged_row(job_dir)
        row["error"] = broken or reason
        return row, pd.DataFrame(), pd.DataFrame()
    if broken:  # listed with the reason; its data are nobody's to analyse
        row.update(status=DAMAGED, error=broken)
        return row, pd.DataFrame(), pd.DataFrame()
    return row, series, inits


def _damaged_row(job_dir: Path) -> dict:
    """What can be said of a job whose files cannot be read: where it is, what it was."""
    try:
        overrides = read_overrides(job_dir)
    except Exception:  # noqa: BLE001 - the overrides file may be the damaged one
        overrides = []
    return {"job": job_dir.name, "sweep": job_dir.parent.name, "job_dir": str(job_dir),
            "status": DAMAGED, "overrides": " ".join(overrides)}  # fmt: skip


def _read_job(job_dir: Path, tol: float) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    summary = read_json(job_dir / "summary.json")
    cfg = load_config(job_dir, summary)
    overrides = read_overrides(job_dir)
    status = job_status(job_dir)
    row = choices_row(cfg, overrides, summary)
    row.update(
        job=job_dir.name,
        sweep=job_dir.parent.name,
        job_dir=str(job_dir),
        status=status.get("status"),
        error=status.get("error"),
        overrides=" ".join(overrides),
    )
    series = read_metrics(job_dir)
    inits = None
    if row["status"] == TWIN:  # no results of its own: they are the repeated job's
        row["kind"] = "ensemble" if "ensemble" in cfg else "train"
    elif summary or (job_dir / "inits.csv").is_file():
        row["kind"] = "ensemble"
        inits = read_inits(job_dir)
        row.update({k: v for k, v in ensemble_results(summary).items() if k not in row})
    else:
        row["kind"] = "train"
        shares = read_split_shares(job_dir)
        row.update(train_results(series, as_int(row.get("num_classes")), tol, shares))
    finished = row["status"] == FINISHED
    why = damage(cfg, status, row["kind"], series, summary, inits) if finished else None
    if why:  # kept in the tables with the reason; the figures and summary use finished jobs
        row.update(status=DAMAGED, error=f"finished, but {why}")
    return row, series, inits if inits is not None else pd.DataFrame()


def finish(
    source: str,
    rows: list[dict],
    series_parts: list[pd.DataFrame],
    inits_parts: list[pd.DataFrame],
    tol: float = DEFAULT_TOL,
) -> Collection:
    """Assemble the three tables from per-job pieces (shared with wandb_source)."""
    jobs = pd.DataFrame(rows)
    if jobs.empty:
        jobs = pd.DataFrame(columns=[*CHOICES, "norm", "job", "status", "error", "kind"])
    choice_cols = [c for c in choice_columns(jobs) if c in jobs]
    jobs = theory_columns(interval_regimes(jobs))
    # what varies is read per kind of job: a training run's batch size or epochs say
    # nothing about an ensemble beside it, and would only lengthen its labels
    varying: list[str] = []
    jobs["config"] = None
    for _, part in jobs.groupby(_kinds(jobs), sort=False):
        kind_varying = _varying(part, choice_cols)
        varying += [c for c in kind_varying if c not in varying]
        label_cols = [c for c in kind_varying if c != "seed"]
        jobs.loc[part.index, "config"] = [
            config_label(r, label_cols) for r in part.to_dict("records")
        ]
    front = [
        c for c in ["job", "sweep", "kind", "status", "config", *choice_cols] if c in jobs.columns
    ]
    jobs = jobs[front + [c for c in jobs.columns if c not in front]]
    series = _concat(series_parts, jobs, "step")
    inits = _concat(inits_parts, jobs, None)
    return Collection(source, jobs, series, inits, varying, tol)


def _kinds(jobs: pd.DataFrame) -> pd.Series:
    """Each job's kind; a job that never started takes its sweep's (else "")."""
    if "kind" not in jobs:
        return pd.Series("", index=jobs.index)
    kinds = jobs["kind"]
    if "sweep" in jobs:
        known = jobs.dropna(subset=["kind"]).drop_duplicates("sweep").set_index("sweep")["kind"]
        kinds = kinds.fillna(jobs["sweep"].map(known))
    return kinds.fillna("")


def _varying(jobs: pd.DataFrame, choice_cols: list[str]) -> list[str]:
    """The choice columns that take more than one value over ``jobs``."""
    varying = varying_columns(jobs, [c for c in choice_cols if c != "experiment"])
    # norm is the one label of placement x kind: show it whenever either varies
    if {"norm_placement", "norm_kind"} & set(varying) and "norm" not in varying:
        varying.append("norm")
    return varying


def _concat(parts: list[pd.DataFrame], jobs: pd.DataFrame, sort: str | None) -> pd.DataFrame:
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame()
    df = pd.concat(parts, ignore_index=True)
    keys = ["job_dir", "job", "config", "norm", "seed"]
    meta = jobs[[c for c in keys if c in jobs]].drop_duplicates("job_dir")
    df = df.merge(meta, on="job_dir", how="left", suffixes=("", "_job"))
    front = [c for c in keys if c in df]
    df = df[front + [c for c in df.columns if c not in front]]
    if sort:
        df = df.sort_values(["job_dir", sort], kind="stable").reset_index(drop=True)
    return df


def collect(root: str | Path, tol: float = DEFAULT_TOL) -> Collection:
    """Read every job folder under ``root`` (a multirun folder, or a folder of them)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    job_dirs = find_job_dirs(root)
    rows, series_parts, inits_parts = [], [], []
    for job_dir in job_dirs:
        row, series, inits = read_job(job_dir, tol)
        rows.append(row)
        if not series.empty:
            series_parts.append(series.assign(job_dir=str(job_dir)))
        if not inits.empty:
            inits_parts.append(inits.assign(job_dir=str(job_dir)))
    sweeps = sorted({d.parent for d in job_dirs} | ({root} if not job_dirs else set()))
    for sweep_dir in sweeps:
        in_sweep = [d for d in job_dirs if d.parent == sweep_dir]
        for overrides in missing_jobs(sweep_dir, in_sweep):
            rows.append(not_started_row(sweep_dir, overrides))
    return finish(str(root), rows, series_parts, inits_parts, tol)
