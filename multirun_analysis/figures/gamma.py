"""Gamma across ensembles: against depth, one line per norm kind and placement, with the
infinite-width prediction where the theory covers the model."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from igb.theory.gaussian import NEUTRAL_TOL  # noqa: E402
from multirun_analysis.choices import norm_sort_key  # noqa: E402
from multirun_analysis.collect import Collection  # noqa: E402
from multirun_analysis.figures.common import (  # noqa: E402
    Figure,
    finish,
    finished_jobs,
    norm_style,
    split_groups,
    title_of,
)


def _theory_curve(ax: plt.Axes, sel: pd.DataFrame, norm: str, floor: float) -> None:
    """The infinite-width gamma of the jobs (summary.json ``gamma_theory``), where covered."""
    if "gamma_theory" not in sel:
        return
    theory = pd.to_numeric(sel["gamma_theory"], errors="coerce").groupby(sel["depth"]).mean()
    theory = theory.dropna()
    if not theory.empty:
        style = {**norm_style(norm), "lw": 4, "alpha": 0.3}
        ax.plot(theory.index, theory.clip(lower=floor), **style)


def fig_gamma_vs_depth(col: Collection, out: Path) -> list[Figure]:
    jobs = finished_jobs(col, "ensemble")
    if jobs.empty or "gamma" not in jobs or "depth" not in jobs:
        return []
    groups = split_groups(jobs, col.varying, {"depth"})
    fig, axes = plt.subplots(
        1, len(groups), figsize=(3.6 * len(groups) + 0.5, 3.4), squeeze=False, sharey=True
    )
    floor = 1e-6
    for ax, (suffix, g) in zip(axes[0], groups):
        for norm in sorted(g["norm"].unique(), key=norm_sort_key):
            sel = g[g["norm"] == norm].copy()
            sel["depth"] = pd.to_numeric(sel["depth"], errors="coerce")
            agg = sel.groupby("depth").agg(
                gamma=("gamma", "mean"),
                lo=("gamma_ci_lo", "mean") if "gamma_ci_lo" in sel else ("gamma", "mean"),
                hi=("gamma_ci_hi", "mean") if "gamma_ci_hi" in sel else ("gamma", "mean"),
            )
            y = agg["gamma"].clip(lower=floor)
            yerr = np.vstack(
                [(y - agg["lo"].clip(lower=floor)).clip(lower=0), (agg["hi"] - y).clip(lower=0)]
            )
            ax.errorbar(
                agg.index, y, yerr=yerr, marker="o", ms=3.5, capsize=2, label=norm,
                **norm_style(norm),
            )  # fmt: skip
            _theory_curve(ax, sel, norm, floor)
        ax.axhline(1.0, color="0.3", lw=0.8)
        ax.axhline(NEUTRAL_TOL, color="0.3", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("depth")
        ax.set_title(title_of(suffix) or "all", fontsize=9)
        ax.grid(alpha=0.3, which="major")
    axes[0][0].set_ylabel("γ (IGB strength)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return finish(
        fig,
        "γ vs depth (solid: post, dashed: pre, dotted: none; wide pale: infinite-width "
        f"theory; lines at γ=1 and the neutral tolerance {NEUTRAL_TOL:g}; γ below {floor:g} "
        f"drawn at {floor:g})",
        out / "gamma_vs_depth.png",
        "IGB strength γ (bootstrap 95% interval) against depth for each norm kind and "
        "placement, with the infinite-width prediction (wide pale lines) where the "
        "theory covers the model; above γ=1 deeply prejudiced, below the dotted line "
        "neutral.",
    )
