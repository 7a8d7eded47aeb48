"""Figures of one training run (``python -m multirun_analysis <job folder>``).

A grid's figures pool seeds and compare configurations; one run needs its own view:

- ``step0_f.png``: the step-0 prediction fraction of every class (bars, per evaluated
  split) against the neutral share ``1/C`` and, where the run recorded them
  (``split_shares.json``), each split's own class shares (black ticks): the initial bias
  itself, and on an unbalanced split the share a neutral network would predict;
- ``f_max_entropy.png``: ``f_max`` and the normalised prediction entropy over steps
  (symlog axis, so step 0 and the log-spaced early steps are visible);
- ``acc_by_rank.png``: per-class accuracy over steps, one line per class ranked by its
  step-0 favour (rank 1, the favoured class, drawn thickest).

Read from the job folder's ``metrics.csv`` and ``split_shares.json``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from igb import SPLITS  # noqa: E402
from multirun_analysis.figures.common import Figure, save  # noqa: E402
from multirun_analysis.folders import read_metrics  # noqa: E402
from multirun_analysis.results import (  # noqa: E402
    indexed_columns,
    rank_columns,
    read_split_shares,
)

#: the splits measured during training (the test split is measured once, at the end)
SERIES_SPLITS = tuple(s for s in SPLITS if s != "test")


def is_job_folder(path: Path) -> bool:
    """A folder Hydra made for one job (as opposed to a folder of job folders)."""
    return (Path(path) / ".hydra").is_dir()


def _step_axis(ax: plt.Axes, steps: pd.Series) -> None:
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, max(float(steps.max()), 1))
    ax.set_xlabel("optimizer step")
    ax.grid(alpha=0.3)


def fig_step0_f(
    series: pd.DataFrame, out: Path, shares: dict[str, list[float]] | None = None
) -> list[Figure]:
    """Bars of f_c at step 0; ``shares`` (``{split: class shares}``) adds a tick per bar
    at the split's own share of the class, the neutral value on an unbalanced split."""
    shares = shares or {}
    step0 = series[series["step"] == 0]
    splits = [s for s in SERIES_SPLITS if indexed_columns(series, f"igb/{s}/f/")]
    if step0.empty or not splits:
        return []
    classes = len(indexed_columns(series, f"igb/{splits[0]}/f/"))
    width = 0.8 / len(splits)
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * classes + 2), 3.5))
    ax.axhline(1 / classes, color="black", linestyle="--", label=f"1/C = {1 / classes:.3g}")
    for i, split in enumerate(splits):
        f = step0[indexed_columns(series, f"igb/{split}/f/")].iloc[0].to_numpy(float)
        x = np.arange(classes) + (i - (len(splits) - 1) / 2) * width
        ax.bar(x, f, width, label=split)
        if len(shares.get(split, ())) == classes:
            label = "split's class share" if i == 0 else None
            tick = {"marker": "_", "markersize": 14, "markeredgewidth": 2, "color": "black"}
            ax.plot(x, shares[split], linestyle="none", label=label, **tick)
    ax.set_xticks(range(classes))
    ax.set_xlabel("class")
    ax.set_ylabel("fraction of points predicted as the class")
    ax.set_title("step 0: prediction fractions f_c")
    ax.legend()
    path = save(fig, out / "step0_f.png")
    caption = "Step-0 prediction fraction per class; the dashed line is 1/C"
    ticks = ", the black ticks each split's own class shares" if shares else ""
    return [Figure(path, f"{caption}{ticks}.")]


def fig_f_max_entropy(series: pd.DataFrame, out: Path) -> list[Figure]:
    splits = [s for s in SERIES_SPLITS if f"igb/{s}/f_max" in series]
    if not splits:
        return []
    classes = len(indexed_columns(series, f"igb/{splits[0]}/f/"))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True)
    for split in splits:
        rows = series[series[f"igb/{split}/f_max"].notna()]
        top.plot(rows["step"], rows[f"igb/{split}/f_max"], marker=".", label=split)
        bottom.plot(rows["step"], rows[f"igb/{split}/entropy"], marker=".", label=split)
    if classes:
        top.axhline(1 / classes, color="black", linestyle="--", label="1/C")
    top.set_ylabel("f_max")
    bottom.set_ylabel("entropy H(f) / log C")
    top.legend()
    for ax in (top, bottom):
        _step_axis(ax, series["step"])
        ax.set_ylim(0, 1.02)  # both are fractions: from 0, so a small change looks small
    top.set_title("largest prediction fraction and prediction entropy")
    path = save(fig, out / "f_max_entropy.png")
    return [Figure(path, "f_max (top) and normalised prediction entropy (bottom) over steps.")]


def fig_acc_by_rank(series: pd.DataFrame, out: Path, split: str = "val") -> list[Figure]:
    ranks = rank_columns(series, split)
    if not ranks:
        return []
    rows = series[series[ranks[0]].notna()]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(ranks)))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, (col, color) in enumerate(zip(ranks, colors, strict=True), start=1):
        ax.plot(rows["step"], rows[col], color=color, linewidth=2.5 if k == 1 else 1, label=k)
    _step_axis(ax, series["step"])
    ax.set_ylabel(f"{split} accuracy of the class")
    ax.set_title(f"per-class {split} accuracy, classes ranked by step-0 favour")
    ax.legend(title="step-0 rank", fontsize="small", ncol=2 if len(ranks) > 5 else 1)
    path = save(fig, out / "acc_by_rank.png")
    caption = f"{split} accuracy of each class; rank 1 is the class favoured at step 0."
    return [Figure(path, caption)]


def draw(job_dir: Path, out: Path, split: str = "val") -> list[Figure]:
    """Every figure of one run that its ``metrics.csv`` has the data for."""
    series = read_metrics(Path(job_dir))
    if series.empty:
        return []
    return [
        *fig_step0_f(series, out, read_split_shares(job_dir)),
        *fig_f_max_entropy(series, out),
        *fig_acc_by_rank(series, out, split=split),
    ]
