"""The profiles of several ensembles on one figure: gamma_l of a fresh Gaussian head along
each network's forward path (``profile.csv`` of ``ensemble.profile=true``), to see where
two networks, placements or neutralizations part ways.

Networks of different lengths share the x axis as the fraction of their forward path
(0: the input, 1: the head's input); each profile's entries are drawn with their interval.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from multirun_analysis.choices import CHOICES  # noqa: E402
from multirun_analysis.collect import Collection  # noqa: E402
from multirun_analysis.figures.common import GAMMA_FLOOR as FLOOR  # noqa: E402
from multirun_analysis.figures.common import (  # noqa: E402
    Figure,
    finish,
    finished_jobs,
    gamma_log_axis,
    numeric,
)
from multirun_analysis.figures.compare import run_labels, titled  # noqa: E402


def profiles(col: Collection) -> list[tuple[str, pd.DataFrame]]:
    """(label, profile.csv) of every finished ensemble that wrote a profile."""
    jobs = finished_jobs(col, "ensemble")
    if jobs.empty or "job_dir" not in jobs:
        return []
    labels = run_labels(jobs, [c for c in col.varying if c in CHOICES or "." in c])
    out = []
    for label, job_dir in zip(labels, jobs["job_dir"]):
        path = Path(str(job_dir)) / "profile.csv"
        if isinstance(job_dir, str) and path.is_file():
            out.append((label, pd.read_csv(path)))
    return out


def fig_profiles(col: Collection, out: Path) -> list[Figure]:
    """Every ensemble's profile on one log axis; drawn when two or more have one."""
    found = profiles(col)
    if len(found) < 2:
        return []
    fig, ax = plt.subplots(figsize=(8.0, 4.6 + 0.15 * len(found)))
    values = []
    for label, prof in found:
        gamma = pd.to_numeric(prof["gamma"], errors="coerce").clip(lower=FLOOR).to_numpy()
        lo, hi = numeric(prof, "gamma_lo"), numeric(prof, "gamma_hi")
        x = np.linspace(0.0, 1.0, len(prof)) if len(prof) > 1 else np.zeros(1)
        (line,) = ax.plot(x, gamma, marker="o", ms=3, lw=1.2, label=label)
        if lo is not None and hi is not None:
            band_lo, band_hi = lo.clip(lower=FLOOR).to_numpy(), hi.clip(lower=FLOOR).to_numpy()
            ax.fill_between(x, band_lo, band_hi, color=line.get_color(), alpha=0.15, lw=0)
        values.append(gamma)
    every = np.concatenate(values)
    gamma_log_axis(ax, every, vertical=False)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("position along the forward path (0: input, 1: the head's input)")
    ax.set_ylabel("γ_l of a fresh Gaussian head")
    ax.grid(alpha=0.3, which="major")
    ncol = 2 if len(found) > 3 else 1
    fig.legend(fontsize=7.5, loc="lower center", ncol=ncol, frameon=False)
    return finish(
        fig,
        titled("where the bias is born", finished_jobs(col, "ensemble")),
        out / "profiles.png",
        "γ_l, the IGB strength of a fresh Gaussian linear head on each module's output, "
        "along the forward path of each profiled ensemble (log scale; bands: its bootstrap "
        "95% interval), over the regimes' bands; networks of different lengths are aligned "
        "by the fraction of their forward path.",
        bottom=0.03 + 0.035 * len(found),
    )
