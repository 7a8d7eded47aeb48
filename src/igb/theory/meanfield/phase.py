"""The trainability-bias phase diagram: gamma over the (bias variance, weight variance) plane.

Each panel is one norm placement. Its colour is the infinite-width gamma of the MLP at
its depth (:func:`igb.theory.nngp.infinite_gamma`, the kernel walk of the evaluation
points the ensemble measures, a subsample of them: no network is sampled), on a grid of
``model.weight_var`` x ``model.bias_var`` under ``model.init=normal``. On top:

- the edge of chaos (:func:`igb.theory.meanfield.edge_of_chaos`), where the mean-field
  readout applies to the panel's norm;
- the line ``c* = 0.5`` (a deep-network gamma of 1): the paper's boundary of
  "neutrality", which it draws where ``c* < 0.5``;
- igb's regime boundaries at the panel's depth: gamma = 0.01 (neutral below) and
  gamma = 1 (deeply prejudiced above); between them igb says "prejudiced";
- measured ensembles (their summary.json), as dots coloured by the measured gamma.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from igb.theory.meanfield import Declined, edge_of_chaos, fixed_point
from igb.theory.nngp import WalkSettings, infinite_gamma, walked_points
from igb.theory.nngp.kernel import InputKernel

#: igb's regime boundaries (igb.theory.gaussian.regime) and the paper's (c* = 0.5)
NEUTRAL_BELOW, DEEP_ABOVE, PAPER_C_STAR = 0.01, 1.0, 0.5
#: gamma's colour range (log scale)
GAMMA_RANGE = (1e-3, 1e3)
#: the default grid (``lo:hi:n``) and evaluation points walked of the diagram
WEIGHT_GRID, BIAS_GRID, POINTS = "0.25:4:20", "0:0.3:13", 64


@dataclass
class Panel:
    """One placement: gamma on the grid (``gamma[i, j]`` at ``weight_vars[i]``,
    ``bias_vars[j]``; NaN where undefined), c* of the mean-field readout (NaN where it
    declines), the edge line and the measured points ``(weight_var, bias_var, gamma)``."""

    norm: str
    title: str
    weight_vars: np.ndarray
    bias_vars: np.ndarray
    gamma: np.ndarray
    c_star: np.ndarray
    edge: np.ndarray | None  # weight variance of the edge at each of ``edge_bias``
    edge_bias: np.ndarray | None = None
    readout_reason: str | None = None
    measured: list[tuple[float, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Plane:
    """The weight- x bias-variance grid of a diagram, and how many evaluation points the
    kernel walk follows at each cell."""

    weight_vars: Sequence[float]
    bias_vars: Sequence[float]
    points: int


@dataclass(frozen=True)
class WalkedData:
    """The evaluation inputs and how the network is measured on them (the ensemble's)."""

    x: np.ndarray
    batch_size: int
    norm_mode: str
    num_classes: int


def compute_panel(
    model_cfg: dict[str, Any], norm_cfg: dict[str, Any], norm: str, data: WalkedData, plane: Plane
) -> Panel:
    """The panel of one placement, or :class:`Declined` where the kernel walk does not
    cover the model."""
    from threadpoolctl import threadpool_limits

    cfg = {**model_cfg, "init": "normal", "weight_var": 1.0, "bias_var": 0.0,
           "head_weight_var": None, "head_bias_var": None}  # fmt: skip
    walk = WalkSettings.from_groups(
        cfg, norm_cfg, data.batch_size, norm_mode=data.norm_mode,
        num_classes=data.num_classes, max_points=plane.points,
    )  # fmt: skip
    arch = walk.arch
    if arch is None:
        raise Declined(str(walk.reason))
    wv, bv = np.asarray(plane.weight_vars, float), np.asarray(plane.bias_vars, float)
    gamma = np.full((wv.size, bv.size), np.nan)
    c_star = np.full_like(gamma, np.nan)
    xs, design = walked_points(walk, data.x)
    inputs = InputKernel.of(xs)  # the same points at every cell
    pool = (arch.unit_pool, arch.unit_pool_size)
    reason = None
    # small matrices: one BLAS thread is faster than several competing for the cores
    with threadpool_limits(1), np.errstate(all="ignore"):
        for i, w in enumerate(wv):
            for j, b in enumerate(bv):
                cell = dataclasses.replace(arch, weight_var=float(w), bias_var=float(b))
                try:
                    gamma[i, j] = infinite_gamma(cell, inputs, data.batch_size, design)
                except ValueError:
                    pass
                if reason is None:
                    try:
                        c_star[i, j] = fixed_point(arch.activation, w, b, pool, norm).c_star
                    except Declined as exc:
                        reason = str(exc)
        edge, edge_bias = None, np.linspace(bv.min(), bv.max(), 4 * bv.size)
        if reason is None:
            edge = np.array(
                [edge_of_chaos(arch.activation, b, pool, norm) or np.nan for b in edge_bias]
            )
    title = f"{norm}, {arch.activation}" + (
        f", {arch.unit_pool} over {arch.unit_pool_size}" if arch.unit_pool != "none" else ""
    )
    return Panel(
        norm, f"{title}, depth {arch.depth}", wv, bv, gamma, c_star, edge, edge_bias, reason
    )


def draw(panels: Sequence[Panel], path: Path, suptitle: str = "") -> None:
    """One panel per placement, side by side, with a shared gamma colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from matplotlib.lines import Line2D

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(max(4.4 * n + 1.6, 7.5), 5.4), squeeze=False,
                             sharey=True, layout="constrained")  # fmt: skip
    cnorm = LogNorm(*GAMMA_RANGE)
    mesh = None
    for ax, p in zip(axes[0], panels, strict=True):
        g = np.clip(p.gamma, *GAMMA_RANGE)
        mesh = ax.pcolormesh(p.bias_vars, p.weight_vars, g, norm=cnorm, cmap="viridis",
                             shading="nearest")  # fmt: skip
        _contour(ax, p.bias_vars, p.weight_vars, p.gamma, NEUTRAL_BELOW, "white", ":")
        _contour(ax, p.bias_vars, p.weight_vars, p.gamma, DEEP_ABOVE, "white", "--")
        if np.isfinite(p.c_star).any():
            _contour(ax, p.bias_vars, p.weight_vars, p.c_star, PAPER_C_STAR, "orange", "-.")
        if p.edge is not None:
            ax.plot(p.edge_bias, p.edge, color="red", lw=2.2)
        else:
            ax.text(0.02, 0.02, "no mean-field readout:\n" + _short(p.readout_reason),
                    transform=ax.transAxes, fontsize=7, color="white", va="bottom")  # fmt: skip
        if p.measured:
            w, b, gm = (np.array(v, float) for v in zip(*p.measured, strict=True))
            ax.scatter(b, w, c=np.clip(gm, *GAMMA_RANGE), norm=cnorm, cmap="viridis", s=70,
                       edgecolors="black", linewidths=1.2, zorder=5)  # fmt: skip
        ax.set_title(p.title, fontsize=10)
        ax.set_xlabel(r"bias variance $\sigma_b^2$ (model.bias_var)")
        ax.set_ylim(*_extent(p.weight_vars))
        ax.set_xlim(*_extent(p.bias_vars))
    axes[0][0].set_ylabel(r"weight variance $\sigma_w^2$ (model.weight_var)")
    handles = [
        Line2D([], [], color="red", lw=2.2, label="edge of chaos (mean field)"),
        Line2D([], [], color="orange", ls="-.",
               label="c* = 0.5 (paper: 'neutrality' at c* < 0.5)"),
        Line2D([], [], color="white", ls="--",
               label="gamma = 1 here (igb: deeply prejudiced >= 1)"),
        Line2D([], [], color="white", ls=":", label="gamma = 0.01 here (igb: neutral < 0.01)"),
        Line2D([], [], marker="o", ls="", mfc="none", mec="black",
               label="measured ensemble (fill: its gamma)"),
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncol=2 if n == 1 else 3,
               fontsize=7.5, facecolor="0.55")  # fmt: skip
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[0].tolist(), label="gamma (infinite width, log scale)")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    for ax in axes[0]:
        ax.set_facecolor("0.55")  # NaN cells (gamma undefined) show grey
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _extent(values: np.ndarray) -> tuple[float, float]:
    """The grid's range with half a cell on each side (the cells are centred on it)."""
    half = (values.max() - values.min()) / (2 * (values.size - 1))
    return values.min() - half, values.max() + half


def _contour(ax: Any, x: np.ndarray, y: np.ndarray, z: np.ndarray, level: float, color: str,
             style: str) -> None:  # fmt: skip
    """One level line of ``z`` (where z crosses it on the grid)."""
    finite = np.isfinite(z)
    if not finite.any() or not (np.nanmin(z) < level < np.nanmax(z)):
        return
    ax.contour(x, y, np.where(finite, z, np.nan), levels=[level], colors=color,
               linestyles=style, linewidths=1.6)  # fmt: skip


def _short(text: str | None, width: int = 48) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text or "", width)[:3])


def grid(spec: str, name: str) -> np.ndarray:
    """``lo:hi:n`` -> n evenly spaced values (ValueError naming ``name`` otherwise)."""
    try:
        lo, hi, n = spec.split(":")
        lo_f, hi_f, n_i = float(lo), float(hi), int(n)
    except ValueError:
        raise ValueError(f"{name}={spec} must be lo:hi:n (e.g. 0.25:4:24)") from None
    if not (math.isfinite(lo_f) and math.isfinite(hi_f) and 0 <= lo_f < hi_f and n_i >= 2):
        raise ValueError(f"{name}={spec} needs 0 <= lo < hi and n >= 2")
    return np.linspace(lo_f, hi_f, n_i)
