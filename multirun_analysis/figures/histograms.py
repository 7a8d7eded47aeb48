"""Histograms of f over initializations (ensembles) and over seeds (step 0 of training
runs), with the Gaussian model's law for the measured gamma
(:func:`igb.ensemble.plot.theory_curve`, the one the ensemble's own histogram draws)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from igb.ensemble.plot import theory_curve  # noqa: E402
from multirun_analysis.choices import norm_sort_key  # noqa: E402
from multirun_analysis.collect import Collection  # noqa: E402
from multirun_analysis.figures.common import (  # noqa: E402
    Figure,
    config_order,
    finish,
    finished_jobs,
    grid_shape,
    int_or_none,
    num_classes_of,
    numeric,
    save,
    sorted_values,
    split_groups,
)

#: fewer values than this per panel are drawn one by one (strip), not as a histogram
STRIP_BELOW = 20


def n_bins(n_values: int) -> int:
    """Histogram bins for ``n_values`` values: Rice's rule 2 n^(1/3), between 5 and 30
    (24 initializations -> 6 bins, 1000 -> 20)."""
    return int(min(30, max(5, math.ceil(2 * n_values ** (1 / 3)))))


def bin_edges(values: np.ndarray, lo: float, strip: bool) -> tuple[np.ndarray, bool]:
    """The histogram's bin edges and whether they zoom in: :func:`n_bins` bins over
    ``[lo, 1]``, or, when the values span fewer than 3 of those bins (a neutral
    placement's f_max within 0.001 of 1/C), as many bins over the values' own range, so
    that a narrow law is resolved and not drawn as one bar."""
    n = 30 if strip else n_bins(len(values))
    full = np.linspace(lo, 1.0, n + 1)
    if strip or len(values) < 2:
        return full, False
    span = float(np.max(values) - np.min(values))
    if span >= 3 * (1.0 - lo) / n:
        return full, False
    pad = max(span * 0.15, 1e-6)
    return np.linspace(float(np.min(values)) - pad, float(np.max(values)) + pad, n + 1), True


def _law(
    label: str, gamma: float, num_classes: int, n_points: int | None, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The Gaussian model's law at ``gamma`` on ``edges`` (cached: panels with nearly equal
    gamma share one draw)."""
    key = float(f"{gamma:.3g}")
    return _law_cached(label, key, num_classes, n_points, tuple(edges.tolist()))


@functools.lru_cache(maxsize=512)
def _law_cached(
    label: str, gamma: float, num_classes: int, n_points: int | None, edges: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, bool]:
    x, dens, _, is_hist = theory_curve(label, gamma, num_classes, n_points, np.asarray(edges))
    return x, dens, is_hist


def hist_panel(
    ax: plt.Axes,
    values: np.ndarray,
    num_classes: int,
    gamma: float,
    n_points: int | None = None,
    predicted: float = math.nan,
    predicted_finite: float = math.nan,
) -> str:
    """f_0 (C=2) or f_max over initializations or seeds, with the Gaussian model's law at
    the measured ``gamma`` (red), at the infinite-width ``predicted`` gamma (green, dashed)
    and at the network's width ``predicted_finite`` (purple, dotted) where known, and a
    line at 1/C. Returns what was drawn: ``"histogram"``, or
    ``"strip"`` when there are fewer than :data:`STRIP_BELOW` values (each value drawn,
    with the mean and its 95% interval; the laws then scaled to the panel's height).

    The law uses ``n_points`` evaluation points per initialization when known (a
    neutral network's finite-sample spread is predicted too), else infinite data.
    """
    values = np.asarray(values, dtype=float)
    binary = num_classes == 2
    label = "f_0" if binary else "f_max"
    lo = 0.0 if binary else 1.0 / max(num_classes, 1)
    strip = len(values) < STRIP_BELOW
    edges, zoomed = bin_edges(values, lo, strip)
    laws = []
    for g, style in (
        (gamma, {"color": "tab:red"}),
        (predicted, {"color": "tab:green", "ls": "--"}),
        (predicted_finite, {"color": "tab:purple", "ls": ":"}),
    ):
        if np.isfinite(g) and g > 0:
            x, dens, is_hist = _law(label, g, num_classes, n_points, edges)
            laws.append(
                (x, dens, {**style, "lw": 1.3, **({"drawstyle": "steps-mid"} if is_hist else {})})
            )
    if strip:
        top = max([float(np.nanmax(d)) for _, d, _ in laws if len(d)] or [1.0]) or 1.0
        for x, dens, style in laws:
            ax.plot(x, dens / top, alpha=0.6, **style)
        jitter = np.random.default_rng(0).uniform(-0.06, 0.06, len(values))
        ax.scatter(values, 0.5 + jitter, s=14, color="0.25", zorder=3)
        if len(values):
            m = float(values.mean())
            half = (
                1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
            )
            ax.errorbar([m], [0.3], xerr=[[half], [half]], fmt="D", ms=4, color="black", capsize=3)
        ax.set_ylim(0, 1.15)
        ax.set_yticks([])
    else:
        heights, _, _ = ax.hist(values, bins=edges, density=True, color="0.65", edgecolor="0.4")
        for x, dens, style in laws:
            ax.plot(x, dens, **style)
        top = max(float(np.max(heights)) if len(heights) else 1.0, 1.0)
        ax.set_ylim(0, top * 1.35)
        ax.set_ylabel("density", fontsize=7)
    if not binary and num_classes:
        ax.axvline(lo, color="0.3", lw=0.8, ls=":")
    if zoomed:  # the values' own range; the panel says so
        ax.set_xlim(edges[0], edges[-1])
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.locator_params(axis="x", nbins=3)
        ax.text(0.03, 0.93, "zoomed x", transform=ax.transAxes, fontsize=6.5, va="top",
                color="0.3")  # fmt: skip
    else:
        ax.set_xlim(lo - (0.02 if not binary else 0.0), 1.0)
    ax.tick_params(labelsize=7)
    return "strip" if strip else "histogram"


def fig_ensemble_histograms(col: Collection, out: Path) -> list[Figure]:
    jobs = finished_jobs(col, "ensemble")
    if jobs.empty or col.inits.empty:
        return []
    figures = []
    for suffix, where, group in split_groups(jobs, col.varying, {"depth"}):
        figures += _ensemble_hist_figure(col, group, out, suffix, where)
    return figures


def _ensemble_hist_figure(
    col: Collection, jobs: pd.DataFrame, out: Path, suffix: str, where: str
) -> list[Figure]:
    norms = sorted(jobs["norm"].unique(), key=norm_sort_key)
    depths = sorted_values(jobs["depth"]) if "depth" in jobs else []
    depths = depths or [None]
    C = num_classes_of(jobs)
    var = "f_0" if C == 2 else "f_max"
    fig, axes = plt.subplots(
        len(norms),
        len(depths),
        figsize=(max(1.9 * len(depths) + 0.8, 5.5), 1.35 * len(norms) + 1.0),
        squeeze=False,
    )
    for i, norm in enumerate(norms):
        for j, depth in enumerate(depths):
            ax = axes[i][j]
            sel = jobs[(jobs["norm"] == norm) & ((jobs["depth"] == depth) if depth else True)]
            values = col.inits.loc[col.inits["job_dir"].isin(sel["job_dir"]), var]
            values = pd.to_numeric(values, errors="coerce").dropna().to_numpy()
            if not len(values):
                ax.set_axis_off()
                continue
            gamma = float(pd.to_numeric(sel.get("gamma"), errors="coerce").mean())
            n_points = int_or_none(sel.get("n_points"))
            regime = sel["regime"].iloc[0] if "regime" in sel else ""
            predicted = numeric(sel, "gamma_theory")
            predicted = float(predicted.mean()) if predicted is not None else math.nan
            finite = numeric(sel, "gamma_theory_finite")
            finite = float(finite.mean()) if finite is not None else math.nan
            hist_panel(ax, values, C, gamma, n_points, predicted, finite)
            theory_line = f"\nγ∞={predicted:.2g}" if np.isfinite(predicted) else ""
            theory_line += f"\nγn={finite:.2g}" if np.isfinite(finite) else ""
            inside = _agreement(sel)
            theory_line += f" ({inside})" if inside else ""
            ax.text(
                0.97,
                0.93,
                f"γ={gamma:.2g}{theory_line}\n{str(regime).replace('_', ' ')}",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=6.5,
                bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.0},
            )
            if j == 0:  # the row's norm, left of the density axis
                ax.annotate(norm, (0, 0.5), xycoords="axes fraction", xytext=(-34, 0),
                            textcoords="offset points", ha="right", va="center",
                            fontsize=8)  # fmt: skip
            elif ax.get_ylabel():
                ax.set_ylabel("")
            if i == 0 and depth is not None:
                ax.set_title(f"depth {depth}", fontsize=8)
            ax.set_xlabel(var, fontsize=7)
    n_inits = int(pd.to_numeric(jobs.get("n_inits"), errors="coerce").max() or 0)
    title = f"{var} over {n_inits} initializations per panel"
    title += f", C={C}" if C else ""
    title += f" — {where}" if where else ""
    fig.suptitle(
        title + "\n(grey: measured; red: Gaussian model at the measured γ; green dashed: at "
        "the infinite-width γ∞; γn: predicted at the network's width; dotted: 1/C)",
        fontsize=8,
    )
    fig.tight_layout()
    name = f"f_histograms{'_' + suffix if suffix else ''}.png"
    path = save(fig, out / name)
    where = f" ({where})" if where else ""
    caption = (
        f"Histograms of {var} over initializations for each norm placement"
        f"{' and depth' if depths != [None] else ''}{where}; "
        "the red curve is the Gaussian-model law for the measured γ, the green dashed one "
        "the law at the infinite-width γ where the theory covers the model; fewer than "
        f"{STRIP_BELOW} values are drawn one by one with their mean and 95% interval; "
        "a panel marked 'zoomed x' shows a law too narrow for the full range on its own."
    )
    return [Figure(path, caption)]


def fig_step0_f_max(col: Collection, out: Path) -> list[Figure]:
    """Step-0 f_max (f_0 when binary) of training runs over seeds, per configuration."""
    jobs = finished_jobs(col, "train")
    if jobs.empty or col.series.empty:
        return []
    C = num_classes_of(jobs)
    var = "f/0" if C == 2 else "f_max"
    key = f"igb/train/{var}"
    if key not in col.series:
        return []
    step0 = col.series[col.series["step"] == 0][["job_dir", key]].dropna()
    configs = config_order(jobs)
    nrow, ncol = grid_shape(len(configs), 4)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 1.9 * nrow + 0.5), squeeze=False)
    for ax in axes.flat[len(configs) :]:
        ax.set_axis_off()
    for ax, config in zip(axes.flat, configs):
        sel = jobs[jobs["config"] == config]
        values = step0.loc[step0["job_dir"].isin(sel["job_dir"]), key].to_numpy()
        gamma = float(pd.to_numeric(sel["train_bias_degree_step0"], errors="coerce").mean())
        hist_panel(ax, values, C, gamma)
        ax.set_title(f"{config}\nγ≈mean g={gamma:.2g}, {len(values)} seeds", fontsize=7.5)
        ax.set_xlabel(var.replace("f/0", "f_0"), fontsize=8)
    return finish(
        fig,
        "step-0 train " + var.replace("f/0", "f_0") + " over seeds",
        out / "f_max_step0.png",
        "Step-0 prediction fraction over seeds for each configuration (train split), "
        "with the Gaussian-model law for γ estimated as the mean single-initialization "
        "bias degree g.",
    )


def _agreement(sel: pd.DataFrame) -> str:
    """``in CI`` / ``off CI`` for the prediction held against the measurement (at the
    network's width where known; :func:`igb.theory.compare.agrees`), '' where unknown."""
    if "theory_in_ci" not in sel:
        return ""
    inside = [v for v in sel["theory_in_ci"] if v is not None and not pd.isna(v)]
    if not inside:
        return ""
    return "in CI" if all(inside) else f"off CI {len(inside) - sum(inside)}/{len(inside)}"
