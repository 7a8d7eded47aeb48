"""The report's summary table: one row per configuration, seeds pooled."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from igb.theory.gaussian import regime, regime_of_interval
from multirun_analysis.choices import config_order
from multirun_analysis.collect import Collection
from multirun_analysis.folders import FINISHED
from multirun_analysis.results import SHARE, mean_interval


def summarize(col: Collection) -> pd.DataFrame:
    """One row per configuration (seeds pooled): the report's summary table."""
    jobs = col.jobs[col.jobs["status"] == FINISHED]
    if jobs.empty:
        return pd.DataFrame()
    rows = []
    # per kind: a training run and an ensemble may share a configuration's name
    groups = [
        (config, part[part["config"] == config])
        for _, part in jobs.groupby(jobs["kind"].fillna(""), sort=True)
        for config in config_order(part)
    ]
    for config, g in groups:
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
            if len(g) > 1 and "gamma_ci_lo" in g:  # pooled: the regime of the pooled interval
                row["regime"] = _regime_ci(_mean(g, "gamma_ci_lo"), _mean(g, "gamma_ci_hi"))
            if "gamma_theory" in g and g["gamma_theory"].notna().any():
                row["γ theory"] = _mean(g, "gamma_theory")
                if "gamma_theory_finite" in g and g["gamma_theory_finite"].notna().any():
                    row["γ theory (width)"] = _mean(g, "gamma_theory_finite")
                row["measured / theory"] = _mean(g, "gamma_ratio")
                inside = g["theory_in_ci"].dropna() if "theory_in_ci" in g else []
                row["theory in CI"] = f"{int(sum(inside))}/{len(inside)}" if len(inside) else ""
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
            if "val_t_others_minus_favoured" in g:
                m, lo, hi = mean_interval(
                    pd.to_numeric(g["val_t_others_minus_favoured"], errors="coerce")
                )
                ci = f" [{lo:.0f}, {hi:.0f}]" if np.isfinite(lo) else ""
                row[f"others − favoured to {SHARE:.0%} acc (steps)"] = (
                    f"{m:+.0f}{ci}" if np.isfinite(m) else "n/a"
                )
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


def _regime_ci(lo: float, hi: float) -> str:
    return regime_of_interval(lo, hi) if np.isfinite(lo) and np.isfinite(hi) else "n/a"
