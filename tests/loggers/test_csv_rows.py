"""metrics.csv: one row per step, columns in natural order, no epoch past the last one."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from igb.launch.train_job import run
from igb.logging.csv_rows import StepRowsFile, column_key, merge_by_step


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames or []), list(reader)


def test_columns_sort_numbers_as_numbers_after_epoch_and_step() -> None:
    names = ["igb/val/f_rank/10", "step", "igb/val/f_rank/2", "epoch", "a/acc_class/11", "a/acc"]
    assert sorted(names, key=column_key) == [
        "epoch", "step", "a/acc", "a/acc_class/11", "igb/val/f_rank/2", "igb/val/f_rank/10",
    ]  # fmt: skip


def test_rows_of_one_step_merge_and_keep_the_first_epoch() -> None:
    rows = [
        {"step": 0, "epoch": 0, "a": 1.0},
        {"step": 5, "epoch": 0, "a": 2.0},
        {"step": 5, "epoch": 1, "b": 3.0},  # e.g. a test row stamped with max_epochs
        {"step": 6, "epoch": 1, "a": 4.0},
    ]
    assert merge_by_step(rows) == [
        {"step": 0, "epoch": 0, "a": 1.0},
        {"step": 5, "epoch": 0, "a": 2.0, "b": 3.0},
        {"step": 6, "epoch": 1, "a": 4.0},
    ]


def test_file_merges_across_writes_and_adds_columns_in_order(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    f = StepRowsFile(str(path))
    f.write([{"step": 0, "epoch": 0, "x/10": 1.0}])
    f.write([{"step": 3, "epoch": 0, "x/10": 2.0}])
    f.write([{"step": 3, "epoch": 1, "x/2": 5.0}])  # same step, a new column
    f.write([{"step": 3, "epoch": 1, "y": 7.0}, {"step": 4, "epoch": 1, "y": 8.0}])
    fields, rows = _read(path)
    assert fields == ["epoch", "step", "x/2", "x/10", "y"]
    assert rows == [
        {"epoch": "0", "step": "0", "x/2": "", "x/10": "1.0", "y": ""},
        {"epoch": "0", "step": "3", "x/2": "5.0", "x/10": "2.0", "y": "7.0"},
        {"epoch": "1", "step": "4", "x/2": "", "x/10": "", "y": "8.0"},
    ]
    # a reopened file (a resumed job) keeps its header order, merges a row of its last
    # step into that row (the test row of a job stopped after its last step) and appends
    again = StepRowsFile(str(path), fields)
    again.write([{"step": 4, "epoch": 2, "x/2": 9.0}, {"step": 9, "epoch": 2, "y": 1.5}])
    assert _read(path)[1][-2:] == [
        {"epoch": "1", "step": "4", "x/2": "9.0", "x/10": "", "y": "8.0"},
        {"epoch": "2", "step": "9", "x/2": "", "x/10": "", "y": "1.5"},
    ]


def test_real_run_has_one_row_per_step_and_no_epoch_past_max_epochs(make_cfg) -> None:
    cfg = make_cfg("logger=csv", "callbacks.bias_stats.log_steps=4")
    run(cfg)
    df = pd.read_csv(Path(cfg.paths.output_dir) / "metrics.csv")
    assert df["step"].is_unique and df["step"].is_monotonic_increasing
    assert df["epoch"].max() == cfg.trainer.max_epochs - 1
    last = df.iloc[-1]  # the last epoch's statistics, running loss and test in one row
    assert last[["val/acc", "train/loss_running", "test/acc", "igb/test/f_max"]].notna().all()
    ranks = [c for c in df.columns if c.startswith("igb/train/f_rank/")]
    assert ranks == [f"igb/train/f_rank/{k}" for k in range(1, 5)]
    assert list(df.columns[:2]) == ["epoch", "step"]
