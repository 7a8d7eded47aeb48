"""Does the initial bias slow the other classes? Times to a share of the final accuracy,
per class group, on hand-made series; the figure pairs the two times of each seed."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from multirun_analysis.collect import finish
from multirun_analysis.figures import common, speed
from multirun_analysis.results import class_group_times, time_to_share


def _series(fav: list[float], others: list[list[float]]) -> pd.DataFrame:
    steps = [0, 10, 100, 1000]
    data = {"step": steps, "val/acc_rank/1": fav}
    for k, values in enumerate(others, start=2):
        data[f"val/acc_rank/{k}"] = values
    return pd.DataFrame(data)


def test_time_to_share_of_the_final_value() -> None:
    steps = np.array([0, 10, 100, 1000])
    assert time_to_share(steps, np.array([0.1, 0.5, 0.95, 1.0]), 0.9) == 100
    assert time_to_share(steps, np.array([0.1, 0.9, 0.8, 1.0]), 0.9) == 10  # first reached
    assert time_to_share(steps, np.array([0.95, 0.9, 0.8, 1.0]), 0.9) == 0
    assert math.isnan(time_to_share(steps, np.zeros(4), 0.9))  # nothing to reach
    assert time_to_share(steps, np.array([np.nan, 0.5, np.nan, 0.5]), 0.9) == 10


def test_favoured_class_against_the_mean_of_the_others() -> None:
    # favoured reaches 90% of 0.8 at step 0; the others' mean (0.1, 0.3, 0.5, 0.8) at 1000
    s = _series([0.8, 0.8, 0.8, 0.8], [[0.0, 0.2, 0.4, 0.8], [0.2, 0.4, 0.6, 0.8]])
    t = class_group_times(s, "val", share=0.9)
    assert t == {
        "val_t_favoured": 0.0,
        "val_t_others": 1000.0,
        "val_t_others_minus_favoured": 1000.0,
    }
    t = class_group_times(s, "val", share=0.5)
    assert t["val_t_others"] == 100.0  # mean 0.5 >= 0.5 * 0.8 first at step 100
    assert math.isnan(class_group_times(s, "train")["train_t_others"])  # no train ranks


def test_figure_pairs_the_seeds_and_gives_the_interval(tmp_path: Path, monkeypatch) -> None:
    drawn: dict[str, plt.Figure] = {}
    monkeypatch.setattr(common, "save", lambda fig, path: drawn.setdefault(path.name, fig) and path)
    diffs = {"batch-pre": [10.0, 30.0, 50.0], "batch-post": [0.0, 0.0, 0.0]}
    rows = [
        {"norm_placement": norm.split("-")[1], "norm_kind": "batch", "norm": norm, "seed": seed,
         "status": "finished", "kind": "train", "job_dir": f"{norm}/{seed}",
         "val_t_favoured": 5.0, "val_t_others": 5.0 + d}
        for norm, ds in diffs.items() for seed, d in enumerate(ds)
    ]  # fmt: skip
    col = finish("hand-made", rows, [], [])
    assert speed.fig_class_speed(col, tmp_path)
    fig = drawn["class_speed.png"]
    ax, right = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["batch-pre", "batch-post"]
    assert len(ax.lines) == 6  # one line per seed, joining its two times
    half = stats.t.ppf(0.975, 2) * np.std([10, 30, 50], ddof=1) / np.sqrt(3)
    notes = [t.get_text() for t in right.get_yticklabels()]
    assert notes[0] == f"+30 [{30 - half:.0f}, {30 + half:.0f}] (n=3)"
    assert notes[1].startswith("+0 [0, 0]")
