"""Per-job results: step-0 bias, final accuracy and time to neutrality of a training
run; the flattened summary.json and inits.csv of an ensemble."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from igb.data.shares import SHARES_FILE
from igb.theory.gaussian import regime_of_interval
from multirun_analysis.folders import read_csv, read_json

#: default tolerance of the time-to-neutrality criterion ``max_c (f_c - share_c) <= tol``
DEFAULT_TOL = 0.1

#: what a time to neutrality was measured against (``{split}_neutral_reference``)
SPLIT_SHARES, UNIFORM = "split shares", "1/C"


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


def split_shares(record: Any) -> dict[str, list[float]]:
    """``{split: class shares}`` of a run's ``split_shares.json`` record (also its W&B
    config entry ``split_shares``); ``{}`` for a run without one (older runs)."""
    splits = record.get("splits") if isinstance(record, Mapping) else None
    if not isinstance(splits, Mapping):
        return {}
    out = {}
    for split, entry in splits.items():
        shares = entry.get("shares") if isinstance(entry, Mapping) else None
        if isinstance(shares, list | tuple) and shares:
            out[str(split)] = [float(v) for v in shares]
    return out


def read_split_shares(job_dir: Path) -> dict[str, list[float]]:
    """:func:`split_shares` of the run in ``job_dir`` (its ``split_shares.json``)."""
    return split_shares(read_json(Path(job_dir) / SHARES_FILE))


def neutrality_excess(
    series: pd.DataFrame, num_classes: int, split: str, shares: Sequence[float] | None = None
) -> tuple[pd.DataFrame, str]:
    """(``step``, ``excess``) rows and the reference used: how far the most over-predicted
    class is predicted above its share of the split, ``max_c (f_c - share_c)``.

    Against the split's own shares (:data:`SPLIT_SHARES`) when the run recorded them and
    logged every ``igb/{split}/f/{c}``; otherwise against ``1/C`` (:data:`UNIFORM`), where
    the excess is ``f_max - 1/C``. Why the largest excess over the shares, not ``f_max``
    against the largest share: prejudice is one class predicted more often than it
    occurs, and on an unbalanced split a rare class can be over-predicted while
    ``f_max`` is still below the largest share. Under-prediction is not counted apart:
    fractions and shares both sum to 1, so a class predicted too rarely leaves others
    predicted too often. On a balanced split the
    two references agree (``max_c f_c - 1/C``), so old and new runs compare.
    """
    cols = [f"igb/{split}/f/{c}" for c in range(len(shares or []))]
    if shares and (not num_classes or len(shares) == num_classes) and set(cols) <= set(series):
        rows = series[["step", *cols]].dropna()
        excess = (rows[cols].to_numpy(float) - np.asarray(shares, float)).max(axis=1)
        return pd.DataFrame({"step": rows["step"].to_numpy(), "excess": excess}), SPLIT_SHARES
    key = f"igb/{split}/f_max"
    if key not in series or not num_classes:
        return pd.DataFrame(columns=["step", "excess"]), UNIFORM
    rows = series[["step", key]].dropna()
    return (
        pd.DataFrame({"step": rows["step"].to_numpy(), "excess": rows[key] - 1.0 / num_classes}),
        UNIFORM,
    )


def time_to_neutrality(
    series: pd.DataFrame,
    num_classes: int,
    split: str = "val",
    tol: float = DEFAULT_TOL,
    shares: Sequence[float] | None = None,
) -> tuple[float, str]:
    """(first logged step from which on :func:`neutrality_excess` is ``<= tol`` at every
    later measurement, the reference it used); NaN: still above at the last one.

    "Stays within" rather than "first touches": a prejudiced start often swings through
    the tolerance band while the favoured class changes, and only settles later. Step 0
    counts, so a neutral initialization has time 0.
    """
    rows, reference = neutrality_excess(series, num_classes, split, shares)
    if rows.empty:
        return math.nan, reference
    above = (rows["excess"] > tol).to_numpy()
    if above[-1]:
        return math.nan, reference
    last_above = np.flatnonzero(above)
    first_in = last_above[-1] + 1 if len(last_above) else 0
    return float(rows["step"].iloc[first_in]), reference


def reference_text(jobs: pd.DataFrame, split: str) -> str:
    """Which shares the training runs' time to neutrality used, for a caption or report:
    the splits' own, or 1/C for runs that did not record them."""
    train = jobs[jobs["kind"] == "train"] if "kind" in jobs else jobs
    key = f"{split}_neutral_reference"
    refs = train[key].fillna(UNIFORM) if key in train else pd.Series(UNIFORM, index=train.index)
    n = int((refs == UNIFORM).sum())
    if not n:
        return "each run's recorded class shares of the split"
    if n == len(refs):
        return "1/C (the runs did not record their splits' class shares)"
    return f"each run's recorded class shares; 1/C for the {n} of {len(refs)} runs without them"


#: the share of its final accuracy a class group must reach (:func:`class_group_times`)
SHARE = 0.9


def indexed_columns(series: pd.DataFrame, prefix: str) -> list[str]:
    """``{prefix}0, {prefix}1, ...``: the columns of ``series`` named ``prefix`` and a
    number, in the numbers' order (``igb/val/f/``: one per class)."""
    found = [c for c in series.columns if c.startswith(prefix) and c[len(prefix) :].isdigit()]
    return sorted(found, key=lambda c: int(c[len(prefix) :]))


def rank_columns(series: pd.DataFrame, split: str) -> list[str]:
    """``{split}/acc_rank/{k}`` columns in rank order (rank 1: the class favoured at step 0)."""
    return indexed_columns(series, f"{split}/acc_rank/")


def time_to_share(steps: np.ndarray, values: np.ndarray, share: float = SHARE) -> float:
    """First step at which ``values`` reaches ``share`` of its last value (NaN: no values,
    or a last value of 0 or less: nothing to reach)."""
    ok = np.isfinite(values)
    steps, values = np.asarray(steps)[ok], np.asarray(values)[ok]
    if not len(values) or values[-1] <= 0:
        return math.nan
    return float(steps[np.argmax(values >= share * values[-1])])


def class_group_times(series: pd.DataFrame, split: str, share: float = SHARE) -> dict[str, float]:
    """Does the initial bias slow the other classes? The step at which the class favoured
    at step 0 (rank 1), and the mean accuracy of the other classes, reach ``share`` of
    their final accuracy: ``{split}_t_favoured``, ``{split}_t_others`` and their
    difference ``{split}_t_others_minus_favoured`` (NaN without per-rank accuracies)."""
    ranks = rank_columns(series, split)
    out = {f"{split}_t_{g}": math.nan for g in ("favoured", "others", "others_minus_favoured")}
    if len(ranks) < 2:
        return out
    rows = series.dropna(subset=ranks, how="all")
    steps = rows["step"].to_numpy()
    fav = time_to_share(steps, rows[ranks[0]].to_numpy(float), share)
    others = time_to_share(steps, rows[ranks[1:]].mean(axis=1).to_numpy(float), share)
    out.update({f"{split}_t_favoured": fav, f"{split}_t_others": others})
    out[f"{split}_t_others_minus_favoured"] = others - fav
    return out


def mean_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student's t interval of the mean (NaN bounds for one value)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan, math.nan
    m = float(values.mean())
    if len(values) < 2:
        return m, math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return m, m - half, m + half


def train_results(
    series: pd.DataFrame,
    num_classes: int,
    tol: float,
    shares: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Per-job numbers of a training run (NaN where the run did not log them);
    ``shares``: :func:`split_shares` of the run's record ({} for a run without one)."""
    out: dict[str, Any] = {}
    shares = shares or {}
    for split in ("train", "val"):
        out[f"{split}_f_max_step0"] = step_value(series, f"igb/{split}/f_max")
        out[f"{split}_entropy_step0"] = step_value(series, f"igb/{split}/entropy")
        out[f"{split}_bias_degree_step0"] = step_value(series, f"igb/{split}/bias_degree")
        out[f"{split}_f_max_final"] = last_value(series, f"igb/{split}/f_max")
        out[f"{split}_acc_final"] = last_value(series, f"{split}/acc")
        t, reference = time_to_neutrality(series, num_classes, split, tol, shares.get(split))
        out[f"{split}_time_to_neutral"] = t
        out[f"{split}_neutral_reference"] = reference
        out.update(class_group_times(series, split))
    out["test_acc"] = last_value(series, "test/acc")
    out["final_step"] = float(series["step"].max()) if "step" in series and len(series) else 0
    return out


def ensemble_results(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of an ensemble's summary.json, flattened to one value per column."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if key in ("config", "choices", "versions", "seeds"):
            continue
        if isinstance(value, bool | int | float | str) or value is None:
            out[key] = value
        elif isinstance(value, list | tuple) and len(value) == 2 and key.endswith("_ci"):
            out[f"{key}_lo"], out[f"{key}_hi"] = num(value[0]), num(value[1])
        elif isinstance(value, Mapping):
            for k, v in value.items():
                if isinstance(v, bool | int | float | str):
                    out[f"{key}_{k}"] = v
    return out


def read_inits(job_dir: Path) -> pd.DataFrame | None:
    """An ensemble's inits.csv (one row per initialization); None when it is missing or
    empty (:class:`multirun_analysis.folders.RecordError` when it is damaged)."""
    return read_csv(job_dir / "inits.csv")


def missing(v: Any) -> bool:
    """Whether ``v`` is no value: None, or a float NaN (pandas' empty cell)."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def as_int(x: Any) -> int:
    try:
        return int(x)
    except (TypeError, ValueError):
        return 0


def interval_regimes(jobs: pd.DataFrame) -> pd.DataFrame:
    """The regime of every job with a gamma interval, read from the interval
    (:func:`igb.theory.gaussian.regime_of_interval`), also for files written before
    summary.json did so."""
    if "gamma_ci_lo" not in jobs or "gamma_ci_hi" not in jobs:
        return jobs
    lo = pd.to_numeric(jobs["gamma_ci_lo"], errors="coerce")
    hi = pd.to_numeric(jobs["gamma_ci_hi"], errors="coerce")
    ok = lo.notna() & hi.notna()
    if not ok.any():
        return jobs
    jobs = jobs.copy()
    jobs.loc[ok, "regime"] = [regime_of_interval(a, b) for a, b in zip(lo[ok], hi[ok])]
    return jobs


def theory_columns(jobs: pd.DataFrame) -> pd.DataFrame:
    """Measured gamma against the prediction, where the theory covers a job: at the
    network's width where the finite-width walk gives one, else at infinite width
    (:func:`igb.theory.compare.predicted`). ``gamma_predicted`` and ``gamma_predicted_at``
    (``finite`` / ``infinite``), ``gamma_ratio`` = measured / predicted (1 where both are
    zero) and ``theory_in_ci``, whether the prediction lies in the measured interval (a
    measured 1e-14 against a predicted 0 agrees; None where there is no prediction)."""
    from igb.theory import compare

    if "gamma_theory" not in jobs or "gamma" not in jobs:
        return jobs
    jobs = jobs.copy()
    rows = jobs.to_dict("records")
    picked = [compare.predicted(r) for r in rows]
    jobs["gamma_predicted"] = [p for p, _ in picked]
    jobs["gamma_predicted_at"] = [w if p is not None else None for p, w in picked]
    jobs["gamma_ratio"] = [compare.ratio(r.get("gamma"), p) for r, (p, _) in zip(rows, picked)]
    if "gamma_ci_lo" in jobs and "gamma_ci_hi" in jobs:
        jobs["theory_in_ci"] = [
            compare.agrees(p, r.get("gamma_ci_lo"), r.get("gamma_ci_hi"))
            for r, (p, _) in zip(rows, picked)
        ]
    return jobs
