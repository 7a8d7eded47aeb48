"""Training dynamics over seeds: f_max, entropy and the weight overlap over steps, the
favoured class's accuracy against the others', and the time to neutrality."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from multirun_analysis.collect import Collection  # noqa: E402
from multirun_analysis.figures.common import (  # noqa: E402
    Figure,
    config_order,
    config_styles,
    finish,
    finished_jobs,
    grid_shape,
    num_classes_of,
)
from multirun_analysis.results import rank_columns, reference_text  # noqa: E402


def _rows(col: Collection, jobs: pd.DataFrame) -> pd.DataFrame:
    """The series rows of ``jobs``."""
    return col.series[col.series["job_dir"].isin(jobs["job_dir"])]


def _seed_stats(rows: pd.DataFrame, value: Callable[[pd.DataFrame], pd.Series]) -> pd.DataFrame:
    """Per (config, step): mean, std and count over seeds of ``value(rows)`` (series rows,
    :func:`_rows`)."""
    s = rows[["config", "step"]].assign(value=value(rows)).dropna(subset=["value"])
    return (
        s.groupby(["config", "step"])["value"]
        .agg(mean="mean", std=lambda v: v.std(ddof=0), n="count")
        .reset_index()
    )


def _band(ax: plt.Axes, stats: pd.DataFrame, label: str, **style: Any) -> None:
    x = stats["step"].to_numpy() + 1
    m, sd = stats["mean"].to_numpy(), stats["std"].fillna(0).to_numpy()
    (line,) = ax.plot(x, m, label=label, lw=1.4, **style)
    ax.fill_between(x, m - sd, m + sd, color=line.get_color(), alpha=0.18, lw=0)


#: the overlap of the unit-norm parameter vector with its step-0 value (igb.callbacks.overlap)
OVERLAP = "train/weight_overlap"


def fig_dynamics_f_max(col: Collection, out: Path, split: str = "val") -> list[Figure]:
    """f_max, and where the runs logged them the prediction entropy and the weight
    overlap, over log-scaled steps: one panel each, one band per configuration."""
    jobs = finished_jobs(col, "train")
    key = f"igb/{split}/f_max"
    if jobs.empty or col.series.empty or key not in col.series:
        return []
    C = num_classes_of(jobs)
    styles = config_styles(jobs)
    panels = [(key, f"f_max ({split})", (0, 1.02))]
    ent_key = f"igb/{split}/entropy"
    if ent_key in col.series:
        panels.append((ent_key, f"prediction entropy / log C ({split})", (0, 1.02)))
    if OVERLAP in col.series and col.series[OVERLAP].notna().any():
        panels.append((OVERLAP, "weight overlap w0 · wt (unit vectors)", None))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    rows = _rows(col, jobs)
    for ax, (metric, ylabel, ylim) in zip(axes[0], panels):
        stats = _seed_stats(rows, lambda s, m=metric: s[m])
        for config in config_order(jobs):
            _band(ax, stats[stats["config"] == config], config, **styles[config])
        ax.set_xscale("log")
        ax.set_xlabel("optimizer step + 1")
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    if C:
        axes[0][0].axhline(1 / C, color="0.3", lw=0.8)
        axes[0][0].axhline(1 / C + col.tol, color="0.3", lw=0.8, ls=":")
    if len(panels) > 1:
        axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        axes[0][0].legend(fontsize=7)
    names = [
        {key: "f_max", ent_key: "prediction entropy"}.get(k, "weight overlap") for k, *_ in panels
    ]
    what = " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
    n_seeds = int(jobs.groupby("config").size().max())
    overlap_caption = (
        " Weight overlap: the cosine between the trainable parameters, flattened into one "
        "vector, and their values at step 0 (1 at step 0, falling as training moves them)."
        if panels[-1][0] == OVERLAP
        else ""
    )
    return finish(
        fig,
        f"{what} over training, mean ± 1 sd over up to {n_seeds} seeds "
        f"(lines: 1/C and 1/C + {col.tol:g})",
        out / "dynamics_f_max.png",
        f"{what} ({split} split for f_max and entropy) against "
        "optimizer step (log scale, step 0 plotted at 1), mean and one standard deviation "
        f"over seeds.{overlap_caption}",
    )


def fig_dynamics_acc_rank(col: Collection, out: Path, split: str = "val") -> list[Figure]:
    jobs = finished_jobs(col, "train")
    if jobs.empty or col.series.empty:
        return []
    ranks = rank_columns(col.series, split)
    if len(ranks) < 2:
        return []
    rows = _rows(col, jobs)
    fav = _seed_stats(rows, lambda s: s[ranks[0]])
    rest = _seed_stats(rows, lambda s: s[ranks[1:]].mean(axis=1, skipna=True))
    overall = _seed_stats(rows, lambda s: s[f"{split}/acc"]) if f"{split}/acc" in rows else None
    configs = config_order(jobs)
    nrow, ncol = grid_shape(len(configs), 4)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(3.0 * ncol, 2.5 * nrow + 0.6), squeeze=False, sharey=True
    )
    for ax in axes.flat[len(configs) :]:
        ax.set_axis_off()
    for ax, config in zip(axes.flat, configs):
        _band(ax, fav[fav["config"] == config], "favoured class (rank 1)", color="tab:red")
        _band(ax, rest[rest["config"] == config], "mean of the other classes", color="tab:blue")
        if overall is not None:
            o = overall[overall["config"] == config]
            ax.plot(o["step"] + 1, o["mean"], color="0.4", lw=0.8, ls="--", label="all classes")
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(config, fontsize=8.5)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[: len(configs)]:  # every row (the last may be short)
        ax.set_xlabel("optimizer step + 1", fontsize=8)
    for row in axes:
        row[0].set_ylabel(f"{split} accuracy", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7.5, frameon=False)
    return finish(
        fig,
        "per-class accuracy ranked by step-0 train f_c: favoured class vs the rest "
        "(mean ± 1 sd over seeds)",
        out / "dynamics_acc_rank.png",
        f"Accuracy on the {split} split of the class favoured at initialization (rank 1 "
        "of the step-0 train fractions) against the mean accuracy of the other classes, "
        "over log-scaled steps; mean and one standard deviation over seeds.",
        bottom=0.06,
    )


def fig_time_to_neutrality(col: Collection, out: Path, split: str = "val") -> list[Figure]:
    jobs = finished_jobs(col, "train")
    key = f"{split}_time_to_neutral"
    if jobs.empty or key not in jobs:
        return []
    configs = config_order(jobs)
    styles = config_styles(jobs)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(configs) + 1.4))
    rng = np.random.default_rng(0)
    x_max = float(pd.to_numeric(jobs["final_step"], errors="coerce").max()) + 1
    for i, config in enumerate(configs):
        g = jobs[jobs["config"] == config]
        t = pd.to_numeric(g[key], errors="coerce")
        color = styles[config].get("color", "black")
        jitter = rng.uniform(-0.15, 0.15, len(g))
        hit = t.notna().to_numpy()
        ax.scatter(t[hit] + 1, i + jitter[hit], color=color, s=18, zorder=3)
        never = pd.to_numeric(g["final_step"], errors="coerce")[~hit] + 1
        ax.scatter(never, i + jitter[~hit], marker=">", color="tab:red", s=22, zorder=3)
        if hit.any():
            ax.plot([t[hit].median() + 1] * 2, [i - 0.3, i + 0.3], color="black", lw=1.5)
    ax.set_yticks(range(len(configs)), configs, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(0.8, x_max * 1.5)
    ax.invert_yaxis()
    ax.set_xlabel(
        f"optimizer step + 1 from which max_c (f_c − share_c) on {split} stays ≤ {col.tol:g}"
    )
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(
        "time to neutrality per seed (bar: median; red ▶: not reached by the last step)",
        fontsize=9,
    )
    return finish(
        fig,
        None,
        out / "time_to_neutrality.png",
        f"Time to neutrality: the first measured step from which no class is predicted "
        f"more than {col.tol:g} above its share of the {split} split (max_c (f_c − "
        f"share_c) ≤ {col.tol:g}), per seed; red triangles mark runs still above it at "
        f"their last measurement (plotted at their last step); shares: "
        f"{reference_text(jobs, split)}.",
    )
