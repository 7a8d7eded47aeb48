"""Job folders of a multirun -> tidy tables.

A job folder is any folder holding ``.hydra/`` (what Hydra writes for every job it
starts). From each one this reads the resolved config (``config.yaml``, else
``.hydra/config.yaml``), the job's overrides, its ``status.json``, and its results:
``metrics.csv`` for a training job, ``summary.json`` + ``inits.csv`` for an ensemble job.

Three tables come out (:class:`Collection`):

- ``jobs``: one row per job, finished or not, with one column per config choice
  (:data:`CHOICES`, plus every other key the grid overrides), the status and error,
  and per-job results (step-0 bias, final accuracy, time to neutrality, gamma, regime);
- ``series``: one row per (job, logged step), every metric of ``metrics.csv`` as a column;
- ``inits``: one row per (ensemble job, initialization), the columns of ``inits.csv``.

Jobs of the grid that never started (no folder at all) are listed too: the grid is
re-expanded from the sweep's ``multirun.yaml`` the way Hydra's basic sweeper expands it,
and every job it names without a folder gets a row with status ``not_started``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from igb.jobs.identity import norm_label
from igb.jobs.integrity import folder_damage
from igb.jobs.status import JobFolder
from igb.theory.gaussian import regime

#: column name -> config key. The first columns of the jobs table.
CHOICES: dict[str, str] = {
    "experiment": "task_name",
    "model": "model.name",
    "norm_placement": "norm.placement",
    "norm_kind": "norm.kind",
    "activation": "model.activation",
    "depth": "model.depth",
    "width": "model.width",
    "init": "model.init",
    "dataset": "dataset.name",
    "num_classes": "dataset.num_classes",
    "optimizer": "optimizer.name",
    "lr": "optimizer.lr",
    "batch_size": "dataset.batch_size",
    "epochs": "trainer.max_epochs",
    "n_inits": "ensemble.n_inits",
    "seed": "seed",
}

#: override keys that select a column of CHOICES (or only steer where things go)
_NOT_A_CHOICE = {"hydra.sweep.dir", "hydra.run.dir", "experiment", "paths.log_dir"}

#: status of a job whose folder exists but holds no status.json and no result
UNKNOWN = "unknown"
NOT_STARTED = "not_started"
FINISHED = "finished"
#: a job that says ``finished`` but whose data do not hold the finished run
DAMAGED = "damaged"

#: default tolerance of the time-to-neutrality criterion ``f_max <= 1/C + tol``
DEFAULT_TOL = 0.1


#: norm kinds and placements in the order the paper discusses them
KIND_ORDER = (
    "none",
    "batch",
    "layer",
    "rms",
    "group",
    "instance",
    "center",
    "center_init",
    "native",
)
PLACEMENT_ORDER = ("none", "pre", "post")


def norm_sort_key(label: Any) -> tuple:
    """Sort key of a norm label: none, batch-pre, batch-post, layer-pre, ..."""
    kind, _, placement = str(label).partition("-")
    k = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    p = PLACEMENT_ORDER.index(placement) if placement in PLACEMENT_ORDER else 0
    return (k, kind, p, placement)


def config_order(jobs: pd.DataFrame) -> list[str]:
    """Configurations of ``jobs``: by model, then norm order, then the numbers in the name."""
    firsts = jobs.drop_duplicates("config").to_dict("records")

    def key(r: Mapping[str, Any]) -> tuple:
        def part(v: Any) -> tuple:
            x = _num(v)
            return (0, x, "") if math.isfinite(x) else (1, 0.0, str(v))

        rest = tuple(part(r.get(c)) for c in ("activation", "depth", "width"))
        return (str(r.get("model")), norm_sort_key(r.get("norm", "")), rest, str(r["config"]))

    return [r["config"] for r in sorted(firsts, key=key)]


def _isnan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


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
        return self.jobs[self.jobs["status"] != FINISHED]

    def save(self, out: Path) -> list[Path]:
        """jobs/series/inits as CSV and parquet under ``out``; returns the paths written."""
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in ("jobs", "series", "inits"):
            df: pd.DataFrame = getattr(self, name)
            if name != "jobs" and df.empty:
                continue
            csv, parquet = out / f"{name}.csv", out / f"{name}.parquet"
            df.to_csv(csv, index=False)
            _to_parquet(df, parquet)
            written += [csv, parquet]
        return written


def _to_parquet(df: pd.DataFrame, path: Path) -> None:
    # object columns mixing types (e.g. a swept key that is sometimes a list) as strings
    clean = df.copy()
    for col in clean.columns:
        if clean[col].dtype == object:
            values = clean[col].dropna()
            if not values.map(type).eq(str).all():
                clean[col] = clean[col].map(lambda v: v if v is None or _isnan(v) else str(v))
    clean.to_parquet(path, index=False)


# ---------------------------------------------------------------------------- reading


def find_job_dirs(root: Path) -> list[Path]:
    """Every folder under ``root`` (itself included) that Hydra made for one job."""
    root = Path(root)
    found = [p.parent for p in root.rglob(".hydra") if p.is_dir()]
    if (root / ".hydra").is_dir() and root not in found:
        found.append(root)
    return sorted(set(found), key=_job_sort_key)


def _job_sort_key(p: Path) -> tuple:
    return (str(p.parent), int(p.name) if p.name.isdigit() else math.inf, p.name)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def load_config(job_dir: Path) -> DictConfig:
    """The job's config: resolved ``config.yaml`` when present, else Hydra's own copy.

    Hydra's copy is unresolved; values are then read with :func:`select`, which resolves
    what it can (nested interpolations such as the experiments' norm variants) and
    leaves runtime-only ones (``${hydra:...}``) as None.
    """
    for path in (job_dir / "config.yaml", job_dir / ".hydra" / "config.yaml"):
        data = _read_yaml(path)
        if isinstance(data, dict):
            return OmegaConf.create(data)
    summary = _read_json(job_dir / "summary.json")
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
    data = _read_yaml(job_dir / ".hydra" / "overrides.yaml")
    return [str(o) for o in data] if isinstance(data, list) else []


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _override_value(override: str) -> str:
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
        summary = _read_json(job_dir / "summary.json")
        if not summary:
            return "summary.json is missing or unreadable"
        rows = _csv_rows(job_dir / "inits.csv")
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


def _csv_rows(path: Path) -> int | None:
    try:
        return len(pd.read_csv(path))
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return None


def read_metrics(job_dir: Path) -> pd.DataFrame:
    """metrics.csv with one row per step (CSVLogger writes several rows for one step)."""
    path = job_dir / "metrics.csv"
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return pd.DataFrame()
    if "step" not in df:
        return pd.DataFrame()
    return df.groupby("step", sort=True).first().copy().reset_index()


# ---------------------------------------------------------------------------- per job


def step_value(series: pd.DataFrame, key: str, step: int = 0) -> float:
    if key not in series:
        return math.nan
    rows = series.loc[series["step"] == step, key].dropna()
    return float(rows.iloc[0]) if len(rows) else math.nan


def last_value(series: pd.DataFrame, key: str) -> float:
    if key not in series:
        return math.nan
    rows = series[key].dropna()
    return float(rows.iloc[-1]) if len(rows) else math.nan


def time_to_neutrality(
    series: pd.DataFrame, num_classes: int, split: str = "val", tol: float = DEFAULT_TOL
) -> float:
    """First logged step from which on ``igb/{split}/f_max <= 1/C + tol`` at every later
    measurement (NaN: f_max is still above that at the last one).

    "Stays within" rather than "first touches": a prejudiced start often swings through
    the tolerance band while the favoured class changes, and only settles later. Step 0
    counts, so a neutral initialization has time 0.
    """
    key = f"igb/{split}/f_max"
    if key not in series or not num_classes:
        return math.nan
    s = series[["step", key]].dropna()
    if s.empty:
        return math.nan
    above = (s[key] > 1.0 / num_classes + tol).to_numpy()
    if above[-1]:
        return math.nan
    last_above = np.flatnonzero(above)
    first_in = last_above[-1] + 1 if len(last_above) else 0
    return float(s["step"].iloc[first_in])


def train_results(series: pd.DataFrame, num_classes: int, tol: float) -> dict[str, Any]:
    """Per-job numbers of a training run (NaN where the run did not log them)."""
    out: dict[str, Any] = {}
    for split in ("train", "val"):
        out[f"{split}_f_max_step0"] = step_value(series, f"igb/{split}/f_max")
        out[f"{split}_entropy_step0"] = step_value(series, f"igb/{split}/entropy")
        out[f"{split}_bias_degree_step0"] = step_value(series, f"igb/{split}/bias_degree")
        out[f"{split}_f_max_final"] = last_value(series, f"igb/{split}/f_max")
        out[f"{split}_acc_final"] = last_value(series, f"{split}/acc")
        out[f"{split}_time_to_neutral"] = time_to_neutrality(series, num_classes, split, tol)
    out["test_acc"] = last_value(series, "test/acc")
    out["final_step"] = float(series["step"].max()) if "step" in series and len(series) else 0
    return out


def ensemble_results(job_dir: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """summary.json numbers (flattened) and inits.csv of an ensemble job."""
    summary = _read_json(job_dir / "summary.json")
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if key in ("config", "choices", "versions", "seeds"):
            continue
        if isinstance(value, bool | int | float | str) or value is None:
            out[key] = value
        elif isinstance(value, list | tuple) and len(value) == 2 and key.endswith("_ci"):
            out[f"{key}_lo"], out[f"{key}_hi"] = _num(value[0]), _num(value[1])
        elif isinstance(value, Mapping):
            for k, v in value.items():
                if isinstance(v, bool | int | float | str):
                    out[f"{key}_{k}"] = v
    inits = pd.DataFrame()
    path = job_dir / "inits.csv"
    if path.is_file() and path.stat().st_size:
        try:
            inits = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            inits = pd.DataFrame()
    return out, inits


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def choices_row(cfg: DictConfig, overrides: Iterable[str], summary: Mapping[str, Any]) -> dict:
    """One value per config choice (CHOICES, then every other overridden key)."""
    row: dict[str, Any] = {}
    choices = summary.get("choices") if isinstance(summary.get("choices"), Mapping) else {}
    for col, key in CHOICES.items():
        value = select(cfg, key)
        if value is None and col in choices:
            value = choices[col]
        row[col] = value
    classes = select(cfg, "dataset.classes")
    if classes:  # dataset.num_classes is the source's; the task has one class per entry
        row["num_classes"] = len(classes)
    if row["num_classes"] is None and summary.get("n_classes") is not None:
        row["num_classes"] = summary["n_classes"]
    placement = row["norm_placement"]
    row["norm"] = norm_label(placement, row["norm_kind"])
    if placement in (None, "none"):
        row["norm_kind"] = "none"
        row["norm_placement"] = "none"
    mapped = set(CHOICES.values())
    for ov in overrides:
        key = override_key(ov)
        if key in mapped or key in _NOT_A_CHOICE or key in row or key.startswith("hydra"):
            continue
        value = select(cfg, key)
        if isinstance(value, Mapping) or "/" in key:
            continue  # a config-group choice (norm=post, model=cnn): the columns above hold it
        row[key] = value if value is not None else _override_value(ov)
    return row


def read_job(job_dir: Path, tol: float = DEFAULT_TOL) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(jobs row, series rows, inits rows) of one job folder."""
    cfg = load_config(job_dir)
    overrides = read_overrides(job_dir)
    status = job_status(job_dir)
    summary = _read_json(job_dir / "summary.json")
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
    inits = pd.DataFrame()
    if summary or (job_dir / "inits.csv").is_file():
        row["kind"] = "ensemble"
        results, inits = ensemble_results(job_dir)
        row.update({k: v for k, v in results.items() if k not in row})
    else:
        row["kind"] = "train"
        row.update(train_results(series, _int(row.get("num_classes")), tol))
    broken = folder_damage(job_dir)  # records damaged or naming another configuration
    if broken:
        row.update(status=DAMAGED, error=broken)
    why = damage(job_dir, cfg, status, row["kind"], series) if row["status"] == FINISHED else None
    if why:  # kept in the tables with the reason; the figures and summary use finished jobs
        row.update(status=DAMAGED, error=f"finished, but {why}")
    return row, series, inits


def _int(x: Any) -> int:
    try:
        return int(x)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------------------- the grid


def expected_jobs(sweep_dir: Path) -> list[list[str]]:
    """The override list of every job of the sweep, re-expanded from multirun.yaml.

    Mirrors Hydra's basic sweeper: ``hydra.sweeper.params`` first, then the command
    line's overrides (a key given on both takes the command line's value). Empty when
    the sweep has no readable multirun.yaml or another sweeper ran it.
    """
    data = _read_yaml(sweep_dir / "multirun.yaml")
    if not isinstance(data, dict):
        return []
    hydra = data.get("hydra") or {}
    sweeper = hydra.get("sweeper") or {}
    if "basic_sweeper" not in str(sweeper.get("_target_", "basic_sweeper")):
        return []
    params = sweeper.get("params") or {}
    task = (hydra.get("overrides") or {}).get("task") or []
    grid = [f"{k}={v}" for k, v in params.items()] + [str(t) for t in task]
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from igb.compat import BasicSweeper

        parsed = OverridesParser.create().parse_overrides(grid)
        return BasicSweeper.split_arguments(parsed, None)[0]
    except Exception:  # noqa: BLE001 - an unparsable grid only loses the not-started rows
        return []


def _norm_override(o: str) -> str:
    return o.replace(" ", "").replace("'", "").replace('"', "")


def missing_jobs(sweep_dir: Path, job_dirs: Iterable[Path]) -> list[list[str]]:
    """Jobs of the expanded grid that have no folder in ``sweep_dir``."""
    have = [frozenset(map(_norm_override, read_overrides(d))) for d in job_dirs]
    out = []
    for job in expected_jobs(sweep_dir):
        key = frozenset(map(_norm_override, job))
        if key in have:
            have.remove(key)
        else:
            out.append(job)
    return out


# ---------------------------------------------------------------------------- all of it


def config_label(row: Mapping[str, Any], varying: Iterable[str]) -> str:
    """A short name of a configuration from the choices that vary (seed excluded)."""
    parts = []
    cols = [c for c in varying if c not in ("seed", "norm_placement", "norm_kind", "norm_variant")]
    # model first, then the norm, then the rest in column order: "cnn batch-post depth=5"
    cols.sort(key=lambda c: {"model": 0, "norm": 1}.get(c, 2))
    for col in cols:
        value = row.get(col)
        if col in ("model", "norm", "activation", "dataset", "optimizer"):
            parts.append(str(value))
        elif col == "depth":
            parts.append(f"depth={value}")
        else:
            parts.append(f"{col.rsplit('.', 1)[-1]}={value}")
    return " ".join(parts) or str(row.get("norm", "run"))


def _varying(jobs: pd.DataFrame, candidates: Iterable[str]) -> list[str]:
    out = []
    for col in candidates:
        if col in jobs and jobs[col].map(lambda v: repr(v)).nunique(dropna=False) > 1:
            out.append(col)
    return out


def choice_columns(jobs: pd.DataFrame) -> list[str]:
    """Config-choice columns of the jobs table, in a stable order."""
    extra = [c for c in jobs.columns if "." in c or c == "norm_variant"]
    return [*CHOICES, "norm", *extra]


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
    varying = _varying(jobs, [c for c in choice_cols if c != "experiment"])
    # norm is the one label of placement x kind: show it whenever either varies
    if {"norm_placement", "norm_kind"} & set(varying) and "norm" not in varying:
        varying.append("norm")
    label_cols = [c for c in varying if c != "seed"]
    jobs["config"] = [config_label(r, label_cols) for r in jobs.to_dict("records")]
    front = [
        c for c in ["job", "sweep", "kind", "status", "config", *choice_cols] if c in jobs.columns
    ]
    jobs = jobs[front + [c for c in jobs.columns if c not in front]]
    series = _concat(series_parts, jobs, "step")
    inits = _concat(inits_parts, jobs, None)
    return Collection(source, jobs, series, inits, varying, tol)


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
            rows.append(_not_started_row(sweep_dir, overrides))
    return finish(str(root), rows, series_parts, inits_parts, tol)


_GROUP_COLUMNS = {
    "model": "model",
    "norm": "norm_placement",
    "dataset": "dataset",
    "optimizer": "optimizer",
}


def _not_started_row(sweep_dir: Path, overrides: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in CHOICES}
    values = {override_key(o): _override_value(o) for o in overrides}
    for col, key in CHOICES.items():
        if key in values:
            row[col] = _coerce(values[key])
    # group choices: the option names of model/dataset/optimizer are their `name`s, and
    # those of norm are the placements
    for group, col in _GROUP_COLUMNS.items():
        if group in values and row.get(col) is None:
            row[col] = values[group]
    for key, value in values.items():
        if key in CHOICES.values() or key in _NOT_A_CHOICE or key in _GROUP_COLUMNS:
            continue
        if key not in row and "/" not in key and not key.startswith("hydra"):
            row[key] = _coerce(value)
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


def _coerce(value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def summarize(col: Collection) -> pd.DataFrame:
    """One row per configuration (seeds pooled): the report's summary table."""
    jobs = col.jobs[col.jobs["status"] == FINISHED]
    if jobs.empty:
        return pd.DataFrame()
    rows = []
    groups = dict(list(jobs.groupby("config", sort=False)))
    for config in config_order(jobs):
        g = groups[config]
        first = g.iloc[0]
        row: dict[str, Any] = {"configuration": config, "jobs": len(g)}
        if first.get("kind") == "ensemble":
            row["n_inits"] = int(g["n_inits"].sum()) if "n_inits" in g else None
            row["gamma"] = _mean(g, "gamma")
            if "gamma_ci_lo" in g:
                row["gamma 95% CI"] = (
                    f"[{_mean(g, 'gamma_ci_lo'):.3g}, {_mean(g, 'gamma_ci_hi'):.3g}]"
                )
            row["regime"] = _mode(g, "regime")
            if "f_max_mean" in g:
                row["mean f_max"] = _mean(g, "f_max_mean")
            if "wall_time_s" in g:
                row["wall time (s)"] = _mean(g, "wall_time_s")
        else:
            gamma_est = _mean(g, "train_bias_degree_step0")
            row["f_max step 0"] = _pm(g, "train_f_max_step0")
            row["g step 0 (mean)"] = gamma_est
            row["regime"] = _regime(gamma_est)
            row["final val acc"] = _pm(g, "val_acc_final")
            t = g["val_time_to_neutral"] if "val_time_to_neutral" in g else pd.Series(dtype=float)
            reached = t.dropna()
            row["time to neutrality (steps)"] = (
                f"{reached.median():.0f} ({len(reached)}/{len(g)} reached)"
                if len(reached)
                else f"never (0/{len(g)})"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _mean(g: pd.DataFrame, key: str) -> float:
    return float(pd.to_numeric(g[key], errors="coerce").mean()) if key in g else math.nan


def _pm(g: pd.DataFrame, key: str) -> str:
    if key not in g:
        return "n/a"
    v = pd.to_numeric(g[key], errors="coerce").dropna()
    if v.empty:
        return "n/a"
    return f"{v.mean():.3f} ± {v.std(ddof=0):.3f}" if len(v) > 1 else f"{v.iloc[0]:.3f}"


def _mode(g: pd.DataFrame, key: str) -> Any:
    if key not in g:
        return None
    m = g[key].dropna().mode()
    return m.iloc[0] if len(m) else None


def _regime(gamma: float) -> str:
    return regime(gamma) if np.isfinite(gamma) and gamma >= 0 else "n/a"
