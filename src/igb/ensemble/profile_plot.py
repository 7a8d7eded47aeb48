"""profile.png: gamma_l of every entry of a profile, along the forward path, on a log axis.

Entries run top to bottom in forward order (module names legible on the left), gamma_l on
a log axis with the regime bands of :func:`igb.theory.gaussian.regime` (neutral below
``NEUTRAL_TOL``, prejudiced below 1, deeply prejudiced above), the bootstrap interval
as a bar and, when present, the infinite-width prediction as open diamonds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from igb.theory import gaussian as theory  # noqa: E402

#: gamma_l below this is drawn at it (a log axis has no 0)
FLOOR = 1e-4
BANDS = (("neutral", "#d8f0d8"), ("prejudiced", "#fbe9c6"), ("deeply prejudiced", "#f6cccc"))


def plot_profile(rows: Sequence[dict[str, Any]], path: Path | str, title: str = "") -> None:
    n = len(rows)
    fig, ax = plt.subplots(figsize=(8.5, 1.4 + 0.19 * max(n, 6)))
    y = np.arange(n)
    g = np.array([_clip(r["gamma"]) for r in rows])
    lo = np.array([_clip(r.get("gamma_lo", r["gamma"])) for r in rows])
    hi = np.array([_clip(r.get("gamma_hi", r["gamma"])) for r in rows])
    top = max(10.0, float(np.nanmax(np.r_[hi, g])) * 2)
    edges = (FLOOR / 2, theory.NEUTRAL_TOL, 1.0, top)
    for (label, color), a, b in zip(BANDS, edges, edges[1:], strict=False):
        ax.axvspan(a, b, color=color, zorder=0, label=label)
    ax.errorbar(g, y, xerr=[np.clip(g - lo, 0, None), np.clip(hi - g, 0, None)], fmt="o",
                ms=3.5, color="black", ecolor="0.4", lw=1, capsize=2, label="measured",
                zorder=3)  # fmt: skip
    th = [r.get("gamma_theory") for r in rows]
    if any(t is not None and math.isfinite(t) for t in th):
        tv = np.array([_clip(t) if t is not None else np.nan for t in th])
        ax.plot(tv, y, "D", mfc="none", mec="tab:blue", ms=5, label="infinite width", zorder=4)
    ax.set_xscale("log")
    ax.set_xlim(FLOOR / 2, top)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks(y, [f"{r['module']}  ({r['kind']})" for r in rows], fontsize=7)
    ax.set_xlabel(r"$\gamma_l$ of a fresh Gaussian head on this output (below 1e-4: drawn at 1e-4)")
    ax.set_title(title or "where the bias is born", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _clip(value: Any) -> float:
    v = float(value) if value is not None else math.nan
    return max(v, FLOOR) if math.isfinite(v) else math.nan
