"""histogram.png of an ensemble: measured f_0 (C = 2) or f_max (C > 2) and the theory curve.

The curve is the Gaussian model of :mod:`igb.theory.gaussian` at the measured gamma (and, dashed,
at the infinite-width gamma ``summary["gamma_theory"]`` of :mod:`igb.theory.nngp` when the
theory covers the configuration; dotted, at the finite-width gamma
``summary["gamma_theory_finite"]``, whose regime the title gives as the predicted one):

- ``f_0`` (binary): the closed form ``p(f_0) = gamma^(-1/2) exp(-(1/gamma - 1)
  Phi^{-1}(f_0)^2 / 2)``. When it is narrower than one bin (gamma -> 0, a point mass at
  1/2 for infinite data) the law on the N measured points is drawn instead:
  ``f_0 ~ Binomial(N, Phi(sqrt(gamma) z)) / N``, the binomial spread of a neutral net.
- ``f_max`` (C classes): the law :func:`igb.theory.gaussian.f_max_density`, drawn over
  initializations (their class centres) with the same number of evaluation points as the
  measurement, so the finite-sample spread of a neutral network is part of the prediction
  (the points' class counts are multinomial given the centres: no per-point simulation).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from igb.theory import gaussian as theory  # noqa: E402

#: (initialization x class x quadrature node) values computed for one f_max law: 2000
#: draws at 10 classes (at least 2000 at any C), enough for a 50-bin figure; the job waits
#: for what the figure worker has not drawn ahead
_LAW_BUDGET = 1_600_000
_THEORY_DRAWS = 20_000


def theory_curve(
    label: str, gamma: float, num_classes: int, n_points: int | None, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str, bool]:
    """(x, density, legend, is_histogram) of the predicted law at ``gamma``: a curve on a
    fine grid, or a simulated histogram on ``edges`` (bin centres). ``n_points=None``: the
    number of evaluation points is unknown, the infinite-data law is drawn. Computed once
    per set of arguments (a figure draws the measured and predicted gammas, often equal)."""
    edges = np.asarray(edges, dtype=np.float64)
    key = (label, float(gamma), int(num_classes), n_points, edges.tobytes())
    if key not in _CURVES:
        _CURVES[key] = _theory_curve(label, float(gamma), num_classes, n_points, edges)
    return _CURVES[key]


_CURVES: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, str, bool]] = {}


def _theory_curve(
    label: str, gamma: float, num_classes: int, n_points: int | None, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str, bool]:
    width = float(np.min(np.diff(edges)))
    if label == "f_0":
        # p(f_0) has standard deviation ~ sqrt(gamma / (2 pi)) around 1/2 for small gamma
        wide = np.sqrt(max(gamma, 0.0) / (2 * np.pi)) >= width / 2
        if gamma > 0 and (wide or n_points is None):
            grid = np.linspace(edges[0], edges[-1], 801)[1:-1]
            return grid, theory.f0_density(grid, gamma), "theory $p(f_0\\mid\\gamma)$", False
        # narrower than a bin: the law on N points, f_0 ~ Binomial(N, Phi(sqrt(gamma) z)) / N
        rng = np.random.default_rng(1)
        f0 = rng.binomial(n_points, theory.sample_f0(gamma, _THEORY_DRAWS, seed=0)) / n_points
        counts, _ = np.histogram(f0, bins=edges)
        centres = (edges[:-1] + edges[1:]) / 2
        dens = counts / (f0.size * np.diff(edges))
        return centres, dens, f"theory (Gaussian model, N={n_points}: binomial spread)", True
    samples = law_samples(gamma, num_classes, n_points)
    centres, dens = theory.histogram_density(samples, edges)
    where = f"N={n_points}" if n_points is not None else "N=inf"
    return centres, dens, f"theory (Gaussian model, {where}, {samples.size} draws)", True


@functools.lru_cache(maxsize=8)
def law_samples(gamma: float, num_classes: int, n_points: int | None) -> np.ndarray:
    """Draws of f_max in the Gaussian model at ``gamma`` (:func:`igb.theory.gaussian.sample_f_max`,
    seed 0), as many as the budget allows; they do not depend on the figure's bins, so a
    figure worker draws them while the job still computes (:func:`prepare_laws`)."""
    draws = int(min(_THEORY_DRAWS, max(2000, _LAW_BUDGET // (num_classes * theory.LAW_NODES))))
    samples = theory.sample_f_max(gamma, num_classes, draws, n_points=n_points, seed=0)
    samples.flags.writeable = False  # shared by every figure of this law
    return samples


#: the summary's gammas whose laws :func:`plot_histogram` overlays
LAWS = ("gamma", "gamma_theory", "gamma_theory_finite")


def prepare_laws(summary: Mapping[str, Any], num_classes: int, n_points: int | None) -> None:
    """Draw ahead the f_max laws of the :data:`LAWS` the summary holds so far; the binary
    case needs nothing ahead (a closed form, or a cheap binomial law)."""
    if num_classes <= 2:
        return
    for key in LAWS:
        gamma = summary.get(key)
        if gamma is not None and math.isfinite(gamma) and gamma >= 0:
            law_samples(float(gamma), int(num_classes), n_points)


def x_range(values: np.ndarray, label: str, num_classes: int) -> tuple[float, float]:
    """The full range [0, 1] / [1/C, 1], zoomed in when every value sits in a small part
    of it (a neutral ensemble would otherwise be one or two bins wide)."""
    if label == "f_0":
        half = float(np.max(np.abs(values - 0.5))) if values.size else 0.5
        half = min(0.5, max(0.02, 1.25 * half))
        return 0.5 - half, 0.5 + half
    low = 1.0 / num_classes
    top = float(values.max()) if values.size else 1.0
    high = min(1.0, low + max(0.02, 1.25 * (top - low)))
    return (low, 1.0) if high > low + 0.6 * (1.0 - low) else (low, high)


def plot_histogram(
    values: np.ndarray,
    label: str,
    summary: Mapping[str, Any],
    num_classes: int,
    n_points: int,
    path: str | Path,
    title: str = "",
    bins: int = 50,
) -> None:
    """Write the histogram of ``values`` (``f_0`` or ``f_max``) with the theory overlay."""
    values = np.asarray(values, dtype=np.float64)
    gamma = float(summary["gamma"])
    lo, hi = summary["gamma_ci"]
    low, high = x_range(values, label, num_classes)
    edges = np.linspace(low, high, bins + 1)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.hist(values, bins=edges, density=True, color="#4c72b0", alpha=0.75,
            label=f"measured ({values.size} initializations)")  # fmt: skip
    x, dens, legend, is_histogram = theory_curve(label, gamma, num_classes, n_points, edges)
    if is_histogram:  # simulated on the measured bins
        ax.step(x, dens, where="mid", color="#c44e52", lw=2, label=legend)
    else:
        ax.plot(x, dens, color="#c44e52", lw=2, label=legend)
    predicted = summary.get("gamma_theory")
    regime_p = None
    # the laws at the predicted gammas (igb.theory.nngp), beside it: infinite, then finite width
    for key, name, color, ls in (
        ("gamma_theory", "infinite-width", "#55a868", "--"),
        ("gamma_theory_finite", f"width-{summary.get('choices', {}).get('width')}", "#8172b2", ":"),
    ):
        value = summary.get(key) if predicted is not None else None
        if value is None:
            continue
        xp, dp, _, hist_p = theory_curve(label, float(value), num_classes, n_points, edges)
        regime_p = theory.regime(float(value)).replace("_", " ")
        legend_p = f"{name} theory: $\\gamma$ = {value:.3g}, {regime_p}"
        style = {"drawstyle": "steps-mid"} if hist_p else {}
        ax.plot(xp, dp, color=color, lw=1.8, ls=ls, label=legend_p, **style)
        dens = np.concatenate([dens, dp])
    top = np.nanmax(np.histogram(values, bins=edges, density=True)[0])
    ax.set_ylim(0, 1.15 * max(top, float(np.nanmax(np.where(np.isfinite(dens), dens, 0)))))
    symbol = "f_0" if label == "f_0" else "f_{\\max}"
    ax.set_xlabel(f"${symbol}$")
    ax.set_ylabel("density over initializations")
    ax.set_xlim(low, high)
    level = int(round(100 * float(summary.get("gamma_ci_level", 0.95))))
    head = (
        f"$\\gamma$ = {gamma:.3g}  ({level}% CI [{lo:.3g}, {hi:.3g}])  "
        f"{str(summary['regime']).replace('_', ' ')}"
    )
    sub = f"{title}; C={num_classes}, N={n_points}" if title else f"C={num_classes}, N={n_points}"
    if regime_p is not None:  # at the network's width where the finite-width walk applies
        head += f"; predicted {regime_p}"
    ax.set_title(f"{head}\n{sub}", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
