"""Gamma of any set of ensembles side by side: one point per run with its interval, on a
log axis over the regimes' bands, labelled by what sets the run apart (the figure for
"whole network vs fresh head vs trained backbone", where depth says nothing)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from multirun_analysis.choices import CHOICES, label_value  # noqa: E402
from multirun_analysis.collect import Collection  # noqa: E402
from multirun_analysis.figures.common import (  # noqa: E402
    GAMMA_FLOOR,
    Figure,
    below_floor_handle,
    config_order,
    finish,
    finished_jobs,
    gamma_log_axis,
    mark_below_floor,
    numeric,
)

#: constant choices named in the title (what every run of the figure shares)
_CONTEXT = ("model", "model_class", "dataset", "num_classes", "n_inits", "vary", "weights")


def run_labels(jobs: pd.DataFrame, varying: list[str]) -> list[str]:
    """One label per job: its configuration, and its seed when seeds differ."""
    seeds = "seed" in varying and jobs["seed"].notna().any()
    return [
        f"{r['config']} seed={label_value(r['seed'])}" if seeds else str(r["config"])
        for r in jobs.to_dict("records")
    ]


def context(jobs: pd.DataFrame) -> str:
    """The choices every job shares, for a title: ``model=custom, dataset=blobs, C=4``."""
    parts = []
    for col in _CONTEXT:
        if col not in jobs:
            continue
        # a count read as float beside other kinds' missing values: 24.0 -> 24
        values = {label_value(int(v) if _whole(v) else v) for v in jobs[col]}
        if len(values) == 1 and None not in values:
            name = {"num_classes": "C", "model_class": "class"}.get(col, col)
            parts.append(f"{name}={values.pop()}")
    return ", ".join(parts)


def _whole(v: Any) -> bool:
    return isinstance(v, float) and v.is_integer()


def titled(title: str, jobs: pd.DataFrame) -> str:
    """``title``, then what every job shares (:func:`context`) after a dash."""
    shared = context(jobs)
    return title + (f" — {shared}" if shared else "")


def fig_gamma_compare(col: Collection, out: Path) -> list[Figure]:
    """Every finished ensemble's gamma (bootstrap interval) on one log axis; drawn when
    there are at least two ensembles to compare."""
    jobs = finished_jobs(col, "ensemble")
    if "gamma" not in jobs:
        return []
    jobs = jobs.assign(gamma=pd.to_numeric(jobs["gamma"], errors="coerce"))
    jobs = jobs[jobs["gamma"].notna()]
    if len(jobs) < 2:
        return []
    order = {c: i for i, c in enumerate(config_order(jobs))}
    sort = jobs["config"].map(order)
    jobs = jobs.assign(_order=sort).sort_values(["_order", "seed"] if "seed" in jobs else "_order")
    labels = run_labels(jobs, [c for c in col.varying if c in CHOICES or "." in c])
    floor = GAMMA_FLOOR
    y = np.arange(len(jobs))
    gamma = jobs["gamma"].clip(lower=floor).to_numpy()
    lo, hi = numeric(jobs, "gamma_ci_lo"), numeric(jobs, "gamma_ci_hi")
    lo = (lo if lo is not None else jobs["gamma"]).fillna(jobs["gamma"]).clip(lower=floor)
    hi = (hi if hi is not None else jobs["gamma"]).fillna(jobs["gamma"]).clip(lower=floor)
    xerr = np.vstack([(gamma - lo).clip(lower=0), (hi - gamma).clip(lower=0)])
    fig_h = 0.42 * len(jobs) + 2.0
    fig, ax = plt.subplots(figsize=(7.5, fig_h))
    theory = numeric(jobs, "gamma_theory")
    has_theory = theory is not None and theory.notna().any()
    finite = numeric(jobs, "gamma_theory_finite")
    has_finite = finite is not None and finite.notna().any()
    shown = [t.dropna().clip(lower=floor) for t, ok in ((theory, has_theory),
                                                        (finite, has_finite)) if ok]  # fmt: skip
    values = np.concatenate([lo, hi, *shown])
    gamma_log_axis(ax, values)
    edge = ax.get_xlim()[0]  # a value left of the axis is a triangle on its edge, not a point
    raw = jobs["gamma"].to_numpy()
    shown = np.where(raw >= edge, gamma, np.nan)
    ax.errorbar(shown, y, xerr=xerr, fmt="o", ms=5, color="black", capsize=4,
                elinewidth=1.4, label="measured γ (95% interval)", zorder=3)  # fmt: skip
    below = mark_below_floor(ax, y, raw, edge, "black", vertical=False, size=110)
    if has_theory:
        style = {"marker": "D", "s": 36, "facecolor": "none", "edgecolor": "tab:green"}
        t = theory.to_numpy(dtype=float)
        ax.scatter(np.where(t >= edge, t, np.nan), y, lw=1.5, label="infinite-width theory",
                   **style)  # fmt: skip
        below = mark_below_floor(ax, y, t, edge, "tab:green", vertical=False, size=30) or below
    if has_finite:
        t = finite.to_numpy(dtype=float)
        ax.scatter(np.where(t >= edge, t, np.nan), y, marker="x", s=44, lw=1.6,
                   color="tab:purple", label="theory at the network's width",
                   zorder=4)  # fmt: skip
        below = mark_below_floor(ax, y, t, edge, "tab:purple", vertical=False, size=30) or below
    ax.set_xlim(left=edge)
    ax.set_yticks(y, [textwrap.fill(t, 45) for t in labels], fontsize=8)
    ax.set_ylim(len(jobs) - 0.5, -0.5)
    ax.set_xlabel("γ (IGB strength, log scale)")
    ax.grid(alpha=0.3, axis="x", which="major")
    handles, names = ax.get_legend_handles_labels()
    if below:
        handles.append(below_floor_handle(vertical=False))
        names.append(f"γ < {edge:g} (left of the axis)")
    # a figure legend under the axes, with just its own height kept for it (no blank band)
    fig.legend(handles, names, fontsize=7.5, loc="lower center", ncol=3, frameon=False)
    return finish(
        fig,
        titled("γ per ensemble", jobs),
        out / "gamma_compare.png",
        "IGB strength γ of every finished ensemble with its bootstrap 95% interval (log "
        "scale), over the regimes' bands (neutral, prejudiced, deeply prejudiced)"
        + (", with the infinite-width prediction (open diamonds) where the theory covers "
           "the model" if has_theory else "")
        + (" and the prediction at the network's width (crosses), the one the measurement "
           "is held against" if has_finite else "")
        + ("; open triangles on the left edge: below the axis" if below else "") + ".",
        bottom=0.32 / fig_h,
    )  # fmt: skip
