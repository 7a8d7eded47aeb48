"""Gamma across ensembles: against depth, one line per norm kind and placement, with the
infinite-width prediction where the theory covers the model."""

from __future__ import annotations

import textwrap
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
    GAMMA_FLOOR,
    Figure,
    below_floor_handle,
    finish,
    finished_jobs,
    grid_shape,
    mark_below_floor,
    norm_style,
    split_groups,
)


def theory_curve(ax: plt.Axes, sel: pd.DataFrame, norm: str, floor: float) -> None:
    """The predicted gamma of the jobs, where covered: infinite width (summary.json
    ``gamma_theory``, wide pale line) and at the network's width (``gamma_theory_finite``,
    thin line with crosses)."""
    for key, style in (
        ("gamma_theory", {"lw": 4, "alpha": 0.3}),
        ("gamma_theory_finite", {"lw": 1.0, "alpha": 0.8, "marker": "x", "ms": 4}),
    ):
        if key not in sel:
            continue
        theory = pd.to_numeric(sel[key], errors="coerce").groupby(sel["depth"]).mean()
        theory = theory.dropna()
        if not theory.empty:
            # a prediction below the floor (zero for a neutral placement) is left out, not
            # drawn along the floor
            shown = theory.where(theory >= floor)
            ax.plot(theory.index, shown, **{**norm_style(norm), **style})


def _with_depths(groups: list[tuple[str, str, pd.DataFrame]]) -> list[tuple[str, pd.DataFrame]]:
    """The groups with at least two depths (an external model has none: no line to draw)."""
    out = []
    for _, title, g in groups:
        g = g.assign(depth=pd.to_numeric(g["depth"], errors="coerce"))
        g = g[g["depth"].notna() & pd.to_numeric(g["gamma"], errors="coerce").notna()]
        if g["depth"].nunique() >= 2:
            out.append((title, g))
    return out


def _panel_title(title: str, g: pd.DataFrame) -> str:
    """The panel's own choices, always naming the activation."""
    if "activation=" not in title and "activation" in g:
        acts = sorted({str(a) for a in g["activation"].dropna()})
        if acts:
            title = ", ".join(filter(None, [f"activation={'/'.join(acts)}", title]))
    return textwrap.fill(title, 38)


def fig_gamma_vs_depth(col: Collection, out: Path) -> list[Figure]:
    jobs = finished_jobs(col, "ensemble")
    if jobs.empty or "gamma" not in jobs or "depth" not in jobs:
        return []
    groups = _with_depths(split_groups(jobs, col.varying, {"depth"}))
    if not groups:
        return []
    nrow, ncol = grid_shape(len(groups), 3)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(4.0 * ncol + 1.6, 3.6 * nrow), squeeze=False, sharey=True
    )
    for ax in axes.flat[len(groups) :]:
        ax.set_axis_off()
    floor, below = GAMMA_FLOOR, False
    for ax, (title, g) in zip(axes.flat, groups):
        for norm in sorted(g["norm"].unique(), key=norm_sort_key):
            sel = g[g["norm"] == norm]
            agg = sel.groupby("depth").agg(
                gamma=("gamma", "mean"),
                lo=("gamma_ci_lo", "mean") if "gamma_ci_lo" in sel else ("gamma", "mean"),
                hi=("gamma_ci_hi", "mean") if "gamma_ci_hi" in sel else ("gamma", "mean"),
            )
            # a gamma below the floor is not drawn at the floor: a triangle there says "less"
            y = agg["gamma"].where(agg["gamma"] >= floor)
            yerr = np.vstack(
                [(y - agg["lo"].clip(lower=floor)).clip(lower=0), (agg["hi"] - y).clip(lower=0)]
            )
            ax.errorbar(
                agg.index, y, yerr=yerr, marker="o", ms=4, capsize=4, elinewidth=1.4,
                capthick=1.4, label=norm, **norm_style(norm),
            )  # fmt: skip
            below = mark_below_floor(
                ax, agg.index.to_numpy(), agg["gamma"].to_numpy(), floor,
                norm_style(norm)["color"],
            ) or below  # fmt: skip
            theory_curve(ax, sel, norm, floor)
        ax.axhline(1.0, color="0.3", lw=0.8)
        ax.axhline(NEUTRAL_TOL, color="0.3", lw=0.8, ls=":")
        ax.set_yscale("log")
        if below:  # the triangles sit on the axis' edge, pointing off it
            ax.set_ylim(bottom=floor)
        ax.set_xlabel("depth")
        ax.set_title(_panel_title(title, g), fontsize=9)
        ax.grid(alpha=0.3, which="major")
    for row in axes:
        row[0].set_ylabel("γ (IGB strength)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if below:
        handles.append(below_floor_handle())
        labels.append(f"γ < {floor:g}")
    fig.legend(handles, labels, fontsize=7.5, loc="center right", frameon=False)
    return finish(
        fig,
        "γ vs depth",
        out / "gamma_vs_depth.png",
        "IGB strength γ (bootstrap 95% interval) against depth for each norm kind "
        "(colour) and placement (solid: post, dashed: pre, dotted: none), with the "
        "infinite-width prediction (wide pale lines) and the prediction at the network's "
        "width (crosses) where the theory covers the model; "
        f"above γ=1 (solid line) deeply prejudiced, below {NEUTRAL_TOL:g} (dotted line) "
        f"neutral"
        + (
            f"; open triangles at the axis' floor: γ below {floor:g} (off the axis)."
            if below
            else "."
        ),
        right=0.86,
    )
