"""Does the initial bias slow the other classes? Per seed, the step at which the class
favoured at step 0 and the other classes reach a share of their final accuracy, every
configuration on one axis, the two times of one seed joined; beside each configuration
the difference (others - favoured) over seeds with its 95% interval."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from multirun_analysis.collect import Collection  # noqa: E402
from multirun_analysis.figures.common import Figure, config_order, finish, finished_jobs  # noqa: E402
from multirun_analysis.results import SHARE, mean_interval  # noqa: E402


def fig_class_speed(col: Collection, out: Path, split: str = "val") -> list[Figure]:
    jobs = finished_jobs(col, "train")
    fav, oth = f"{split}_t_favoured", f"{split}_t_others"
    if jobs.empty or fav not in jobs or oth not in jobs:
        return []
    jobs = jobs.assign(**{c: pd.to_numeric(jobs[c], errors="coerce") for c in (fav, oth)})
    jobs = jobs[jobs[fav].notna() & jobs[oth].notna()]
    if jobs.empty:
        return []
    configs = config_order(jobs)
    height = 0.55 * len(configs) + 1.9
    fig, ax = plt.subplots(figsize=(8.0, height))
    rng = np.random.default_rng(0)
    notes = []
    for i, config in enumerate(configs):
        g = jobs[jobs["config"] == config]
        y = i + rng.uniform(-0.18, 0.18, len(g))
        for yy, a, b in zip(y, g[fav] + 1, g[oth] + 1):  # one seed: its two times joined
            ax.plot([a, b], [yy, yy], color="0.6", lw=0.9, zorder=1)
        ax.scatter(g[fav] + 1, y, color="tab:red", s=20, zorder=3,
                   label="favoured class (rank 1)" if i == 0 else None)  # fmt: skip
        ax.scatter(g[oth] + 1, y, color="tab:blue", s=20, zorder=3,
                   label="mean of the other classes" if i == 0 else None)  # fmt: skip
        m, lo, hi = mean_interval((g[oth] - g[fav]).to_numpy())
        ci = f" [{lo:.0f}, {hi:.0f}]" if np.isfinite(lo) else ""
        notes.append(f"{m:+.0f}{ci} (n={len(g)})")
    ax.set_yticks(range(len(configs)), configs, fontsize=8)
    ax.set_ylim(len(configs) - 0.5, -0.5)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(range(len(configs)), notes, fontsize=7.5)
    right.set_ylabel("others − favoured, steps: mean [95% CI]", fontsize=8)
    ax.set_xscale("log")
    # plain numbers; over less than ~1.5 decades the minor ticks are labelled too
    lo, hi = ax.get_xlim()
    plain = mticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain if hi / lo < 30 else mticker.NullFormatter())
    ax.tick_params(axis="x", which="both", labelsize=7.5)
    share = f"{SHARE:.0%}"
    ax.set_xlabel(f"optimizer step + 1 at which {split} accuracy reaches {share} of its final")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(
        fontsize=7.5,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.5 / (0.55 * len(configs) + 1.7) - 0.12),
        ncol=2,
    )
    return finish(
        fig,
        "does the initial bias slow the other classes? (one line per seed)",
        out / "class_speed.png",
        f"Per seed, the step at which the class favoured at initialization (red) and the "
        f"mean of the other classes (blue) reach {SHARE:.0%} of their final {split} "
        "accuracy; right: the difference others − favoured over seeds, with Student's t "
        "95% interval.",
    )
