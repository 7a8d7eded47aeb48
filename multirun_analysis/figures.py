"""The paper's figures from a :class:`~multirun_analysis.collect.Collection`, as PNG files.

Each ``fig_*`` function draws one kind of figure when the collection holds the data
it needs and returns ``[Figure(path, caption)]`` (or ``[]``):

- ``fig_ensemble_histograms``: f_0 (binary) / f_max histograms over initializations,
  one panel per norm placement (x depth), with the Gaussian-model curve for the
  measured gamma (:mod:`igb.theory.gaussian`);
- ``fig_gamma_vs_depth``: gamma against depth, one line per norm kind and placement;
- ``fig_step0_f_max``: the same histogram for the step-0 f_max of training runs (seeds);
- ``fig_dynamics_f_max``: f_max and prediction entropy over log-scaled steps,
  mean and spread (one standard deviation) over seeds;
- ``fig_dynamics_acc_rank``: accuracy of the class favoured at step 0 (rank 1) against
  the mean accuracy of the other classes over log-scaled steps;
- ``fig_time_to_neutrality``: steps until f_max <= 1/C + tol, per configuration and seed.

Matplotlib runs on the Agg backend; nothing is shown on screen.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from igb.theory.gaussian import NEUTRAL_TOL, f0_density, f_max_density  # noqa: E402
from multirun_analysis.collect import (  # noqa: E402
    FINISHED,
    Collection,
    config_order,
    norm_sort_key,
)

DPI = 90
KIND_COLOR = {
    "none": "black",
    "batch": "tab:blue",
    "layer": "tab:orange",
    "rms": "tab:green",
    "group": "tab:purple",
    "instance": "tab:brown",
}
PLACEMENT_STYLE = {"none": ":", "pre": "--", "post": "-"}
#: choice columns never used to split figures (the norm is on the panels, seeds pooled)
_POOLED = {"seed", "norm", "norm_placement", "norm_kind", "norm_variant", "n_inits"}


@dataclass(frozen=True)
class Figure:
    path: Path
    caption: str


# ---------------------------------------------------------------------------- helpers


def norm_style(label: str) -> dict[str, Any]:
    kind, _, placement = str(label).partition("-")
    return {
        "color": KIND_COLOR.get(kind, "grey"),
        "linestyle": PLACEMENT_STYLE.get(placement or "none", "-"),
    }


def _sorted_values(values: Iterable[Any]) -> list[Any]:
    vals = list(dict.fromkeys(v for v in values if v is not None and not _nan(v)))
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_") or "all"


def _split_groups(
    jobs: pd.DataFrame, varying: Sequence[str], exclude: Iterable[str]
) -> list[tuple[str, pd.DataFrame]]:
    """Split jobs by the varying choices not shown inside one figure -> (suffix, jobs)."""
    keys = [c for c in varying if c not in set(exclude) | _POOLED and c in jobs]
    if not keys:
        return [("", jobs)]
    out = []
    for values, g in jobs.groupby(keys, sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        suffix = "_".join(f"{k.rsplit('.', 1)[-1]}-{v}" for k, v in zip(keys, values))
        out.append((suffix, g))
    return out


def _title(suffix: str) -> str:
    """``activation-relu_width-64`` (a file-name suffix) -> ``activation=relu, width=64``."""
    return ", ".join(part.replace("-", "=", 1) for part in suffix.split("_") if part)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _finish(
    fig: plt.Figure, title: str | None, path: Path, caption: str, bottom: float = 0.0
) -> list[Figure]:
    """The end of every figure: its title, the layout (``bottom``: room kept for a figure
    legend), the file, and the figure's record with its caption."""
    if title is not None:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return [Figure(_save(fig, path), caption)]


def _config_order(jobs: pd.DataFrame) -> list[str]:
    return config_order(jobs)


def _finished(col: Collection, kind: str) -> pd.DataFrame:
    jobs = col.jobs
    return jobs[(jobs["status"] == FINISHED) & (jobs["kind"] == kind)]


def _int_or_none(col: pd.Series | None) -> int | None:
    vals = pd.to_numeric(col, errors="coerce").dropna() if col is not None else []
    return int(vals.iloc[0]) if len(vals) else None


def _num_classes(jobs: pd.DataFrame) -> int:
    vals = pd.to_numeric(jobs.get("num_classes"), errors="coerce").dropna()
    return int(vals.iloc[0]) if len(vals) else 0


# ---------------------------------------------------------------------------- histograms


def _hist_panel(
    ax: plt.Axes, values: np.ndarray, num_classes: int, gamma: float, n_points: int | None = None
) -> None:
    """Histogram of f_0 (C=2) or f_max, with the Gaussian-model density for ``gamma``.

    For C > 2 the model is sampled with ``n_points`` evaluation points per initialization
    when known (so a neutral network's finite-sample spread is predicted too), else in
    the infinite-data limit; for C = 2 the closed-form density (infinite data) is drawn.
    """
    binary = num_classes == 2
    lo = 0.0 if binary else 1.0 / max(num_classes, 1)
    edges = np.linspace(lo, 1.0, 31)
    heights, _, _ = ax.hist(values, bins=edges, density=True, color="0.65", edgecolor="0.4")
    top = max(float(np.max(heights)) if len(heights) else 1.0, 1.0)
    if np.isfinite(gamma) and gamma > 0:
        if binary:
            x = np.linspace(1e-4, 1 - 1e-4, 400)
            ax.plot(x, f0_density(x, gamma), color="tab:red", lw=1.3)
        elif num_classes > 2:
            centres, dens = _f_max_curve(gamma, num_classes, edges, n_points)
            ax.plot(centres, dens, color="tab:red", lw=1.3, drawstyle="steps-mid")
        ax.set_ylim(0, top * 1.35)
    ax.set_xlim(lo, 1.0)
    ax.tick_params(labelsize=7)


@functools.lru_cache(maxsize=512)
def _f_max_curve_cached(
    gamma: float, num_classes: int, edges: tuple[float, ...], n_points: int | None
) -> tuple[np.ndarray, np.ndarray]:
    n_inits = 2000 if n_points else 5000
    return f_max_density(gamma, num_classes, np.asarray(edges), n_inits, 0, n_points)


def _f_max_curve(
    gamma: float, num_classes: int, edges: np.ndarray, n_points: int | None
) -> tuple[np.ndarray, np.ndarray]:
    key = float(f"{gamma:.3g}")  # panels with nearly equal gamma share one draw
    return _f_max_curve_cached(key, num_classes, tuple(edges.tolist()), n_points)


def fig_ensemble_histograms(col: Collection, out: Path) -> list[Figure]:
    jobs = _finished(col, "ensemble")
    if jobs.empty or col.inits.empty:
        return []
    figures = []
    for suffix, group in _split_groups(jobs, col.varying, {"depth"}):
        figures += _ensemble_hist_figure(col, group, out, suffix)
    return figures


def _ensemble_hist_figure(
    col: Collection, jobs: pd.DataFrame, out: Path, suffix: str
) -> list[Figure]:
    norms = sorted(jobs["norm"].unique(), key=norm_sort_key)
    depths = _sorted_values(jobs["depth"]) if "depth" in jobs else []
    depths = depths or [None]
    C = _num_classes(jobs)
    var = "f_0" if C == 2 else "f_max"
    fig, axes = plt.subplots(
        len(norms),
        len(depths),
        figsize=(1.9 * len(depths) + 0.8, 1.35 * len(norms) + 0.8),
        squeeze=False,
        sharex=True,
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
            n_points = _int_or_none(sel.get("n_points"))
            _hist_panel(ax, values, C, gamma, n_points)
            regime = sel["regime"].iloc[0] if "regime" in sel else ""
            predicted = pd.to_numeric(sel.get("gamma_theory"), errors="coerce")
            predicted = float(predicted.mean()) if predicted is not None else math.nan
            theory_line = f"\nγ∞={predicted:.2g}" if np.isfinite(predicted) else ""
            finite = pd.to_numeric(sel.get("gamma_theory_finite"), errors="coerce")
            finite = float(finite.mean()) if finite is not None else math.nan
            theory_line += f"\nγn={finite:.2g}" if np.isfinite(finite) else ""
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
            if j == 0:
                ax.set_ylabel(norm, fontsize=8, rotation=0, ha="right", va="center")
            if i == 0 and depth is not None:
                ax.set_title(f"depth {depth}", fontsize=8)
            if i == len(norms) - 1:
                ax.set_xlabel(var, fontsize=8)
    n_inits = int(pd.to_numeric(jobs.get("n_inits"), errors="coerce").max() or 0)
    title = f"{var} over {n_inits} initializations per panel"
    title += f", C={C}" if C else ""
    title += f" — {_title(suffix)}" if suffix else ""
    fig.suptitle(
        title + "  (grey: measured, red: Gaussian model at measured γ; γ∞: infinite-width "
        "prediction; γn: at the network's width)",
        fontsize=9,
    )
    name = f"f_histograms{'_' + _slug(suffix) if suffix else ''}.png"
    path = _save(fig, out / name)
    where = f" ({_title(suffix)})" if suffix else ""
    caption = (
        f"Histograms of {var} over initializations for each norm placement"
        f"{' and depth' if depths != [None] else ''}{where}; "
        "the red curve is the Gaussian-model law for the measured γ."
    )
    return [Figure(path, caption)]


def fig_step0_f_max(col: Collection, out: Path) -> list[Figure]:
    """Step-0 f_max (f_0 when binary) of training runs over seeds, per configuration."""
    jobs = _finished(col, "train")
    if jobs.empty or col.series.empty:
        return []
    C = _num_classes(jobs)
    var = "f/0" if C == 2 else "f_max"
    key = f"igb/train/{var}"
    if key not in col.series:
        return []
    step0 = col.series[col.series["step"] == 0][["job_dir", key]].dropna()
    configs = _config_order(jobs)
    ncol = min(4, len(configs))
    nrow = math.ceil(len(configs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 1.9 * nrow + 0.5), squeeze=False)
    for ax in axes.flat[len(configs) :]:
        ax.set_axis_off()
    for ax, config in zip(axes.flat, configs):
        sel = jobs[jobs["config"] == config]
        values = step0.loc[step0["job_dir"].isin(sel["job_dir"]), key].to_numpy()
        gamma = float(pd.to_numeric(sel["train_bias_degree_step0"], errors="coerce").mean())
        _hist_panel(ax, values, C, gamma)
        ax.set_title(f"{config}\nγ≈mean g={gamma:.2g}, {len(values)} seeds", fontsize=7.5)
        ax.set_xlabel(var.replace("f/0", "f_0"), fontsize=8)
    return _finish(
        fig,
        "step-0 train " + var.replace("f/0", "f_0") + " over seeds",
        out / "f_max_step0.png",
        "Step-0 prediction fraction over seeds for each configuration (train split), "
        "with the Gaussian-model law for γ estimated as the mean single-initialization "
        "bias degree g.",
    )


# ---------------------------------------------------------------------------- gamma


def _theory_curve(ax: plt.Axes, sel: pd.DataFrame, norm: str, floor: float) -> None:
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
            ax.plot(theory.index, theory.clip(lower=floor), **{**norm_style(norm), **style})


def fig_gamma_vs_depth(col: Collection, out: Path) -> list[Figure]:
    jobs = _finished(col, "ensemble")
    if jobs.empty or "gamma" not in jobs or "depth" not in jobs:
        return []
    groups = _split_groups(jobs, col.varying, {"depth"})
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
        ax.set_title(_title(suffix) or "all", fontsize=9)
        ax.grid(alpha=0.3, which="major")
    axes[0][0].set_ylabel("γ (IGB strength)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return _finish(
        fig,
        "γ vs depth (solid: post, dashed: pre, dotted: none; wide pale: infinite-width "
        "theory, crosses: finite-width theory; lines at γ=1 and the neutral tolerance "
        f"{NEUTRAL_TOL:g}; γ below {floor:g} "
        f"drawn at {floor:g})",
        out / "gamma_vs_depth.png",
        "IGB strength γ (bootstrap 95% interval) against depth for each norm kind and "
        "placement, with the infinite-width prediction (wide pale lines) and the "
        "prediction at the network's width (crosses) where the theory covers the model; "
        "above γ=1 deeply prejudiced, below the dotted line "
        "neutral.",
    )


# ---------------------------------------------------------------------------- dynamics


def _seed_stats(
    col: Collection, jobs: pd.DataFrame, value: Callable[[pd.DataFrame], pd.Series]
) -> pd.DataFrame:
    """Per (config, step): mean, std and count over seeds of ``value(series rows)``."""
    s = col.series[col.series["job_dir"].isin(jobs["job_dir"])].copy()
    s["value"] = value(s)
    s = s.dropna(subset=["value"])
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


def _config_styles(jobs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    configs = _config_order(jobs)
    norms = jobs.drop_duplicates("config").set_index("config")["norm"].to_dict()
    # when only the norm varies the colour says the kind and the dash the placement
    if len(set(norms.values())) == len(configs):
        return {c: norm_style(norms[c]) for c in configs}
    cmap = plt.get_cmap("tab10" if len(configs) <= 10 else "tab20")
    return {c: {"color": cmap(i % cmap.N)} for i, c in enumerate(configs)}


def fig_dynamics_f_max(col: Collection, out: Path, split: str = "val") -> list[Figure]:
    jobs = _finished(col, "train")
    key = f"igb/{split}/f_max"
    if jobs.empty or col.series.empty or key not in col.series:
        return []
    C = _num_classes(jobs)
    styles = _config_styles(jobs)
    f_stats = _seed_stats(col, jobs, lambda s: s[key])
    ent_key = f"igb/{split}/entropy"
    h_stats = _seed_stats(col, jobs, lambda s: s[ent_key]) if ent_key in col.series else None
    fig, axes = plt.subplots(1, 2 if h_stats is not None else 1, figsize=(10, 3.6), squeeze=False)
    ax = axes[0][0]
    for config in _config_order(jobs):
        _band(ax, f_stats[f_stats["config"] == config], config, **styles[config])
    if C:
        ax.axhline(1 / C, color="0.3", lw=0.8)
        ax.axhline(1 / C + col.tol, color="0.3", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("optimizer step + 1")
    ax.set_ylabel(f"f_max ({split})")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if h_stats is not None:
        ax2 = axes[0][1]
        for config in _config_order(jobs):
            _band(ax2, h_stats[h_stats["config"] == config], config, **styles[config])
        ax2.set_xscale("log")
        ax2.set_xlabel("optimizer step + 1")
        ax2.set_ylabel(f"prediction entropy / log C ({split})")
        ax2.set_ylim(0, 1.02)
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        ax.legend(fontsize=7)
    n_seeds = int(jobs.groupby("config").size().max())
    return _finish(
        fig,
        f"f_max and prediction entropy over training, mean ± 1 sd over up to {n_seeds} seeds "
        f"(lines: 1/C and 1/C + {col.tol:g})",
        out / "dynamics_f_max.png",
        f"f_max and normalised prediction entropy on the {split} split against optimizer "
        "step (log scale, step 0 plotted at 1), mean and one standard deviation over seeds.",
    )


def _rank_columns(series: pd.DataFrame, split: str) -> list[str]:
    pat = re.compile(rf"^{re.escape(split)}/acc_rank/(\d+)$")
    cols = [c for c in series.columns if pat.match(c)]
    return sorted(cols, key=lambda c: int(pat.match(c).group(1)))


def fig_dynamics_acc_rank(col: Collection, out: Path, split: str = "val") -> list[Figure]:
    jobs = _finished(col, "train")
    if jobs.empty or col.series.empty:
        return []
    ranks = _rank_columns(col.series, split)
    if len(ranks) < 2:
        return []
    fav = _seed_stats(col, jobs, lambda s: s[ranks[0]])
    rest = _seed_stats(col, jobs, lambda s: s[ranks[1:]].mean(axis=1, skipna=True))
    overall = (
        _seed_stats(col, jobs, lambda s: s[f"{split}/acc"])
        if f"{split}/acc" in col.series
        else None
    )
    configs = _config_order(jobs)
    ncol = min(4, len(configs))
    nrow = math.ceil(len(configs) / ncol)
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
    for ax in axes[-1]:
        ax.set_xlabel("optimizer step + 1", fontsize=8)
    for row in axes:
        row[0].set_ylabel(f"{split} accuracy", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7.5, frameon=False)
    return _finish(
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
    jobs = _finished(col, "train")
    key = f"{split}_time_to_neutral"
    if jobs.empty or key not in jobs:
        return []
    configs = _config_order(jobs)
    styles = _config_styles(jobs)
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
    ax.set_xlabel(f"optimizer step + 1 from which {split} f_max stays ≤ 1/C + {col.tol:g}")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(
        "time to neutrality per seed (bar: median; red ▶: not reached by the last step)",
        fontsize=9,
    )
    return _finish(
        fig,
        None,
        out / "time_to_neutrality.png",
        f"Time to neutrality: the first measured step from which f_max on the {split} "
        f"split stays within {col.tol:g} of 1/C, per seed; red triangles mark runs still "
        "above it at their last measurement (plotted at their last step).",
    )


ALL = (
    fig_ensemble_histograms,
    fig_gamma_vs_depth,
    fig_step0_f_max,
    fig_dynamics_f_max,
    fig_dynamics_acc_rank,
    fig_time_to_neutrality,
)


def draw_all(col: Collection, out: Path, split: str = "val") -> list[Figure]:
    """Every figure the collection has data for, under ``out``."""
    figures: list[Figure] = []
    for fn in ALL:
        kwargs = {"split": split} if "split" in fn.__code__.co_varnames else {}
        figures += fn(col, out, **kwargs)
    return figures
