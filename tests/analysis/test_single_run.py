"""`python -m multirun_analysis <one run's folder>` draws that run's own figures."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_train
from helpers.sizes import TINY, merged

from igb.data.instantiate import instantiate_datamodule
from multirun_analysis import single_run
from multirun_analysis.__main__ import main
from multirun_analysis.collect import collect
from multirun_analysis.results import SPLIT_SHARES


@pytest.fixture(scope="module")
def one_run(tmp_path_factory) -> Path:
    """A real `python train.py` run (its folder has .hydra/, like any user's run)."""
    tmp = tmp_path_factory.mktemp("single")
    folder = tmp / "run"
    argv = merged(
        TINY, ["logger=csv", "callbacks.bias_stats.log_steps=4", f"hydra.run.dir={folder}"]
    )
    proc = run_train(tmp, *argv)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder


def test_cli_on_a_run_folder_writes_its_three_figures(one_run: Path, capsys) -> None:
    assert main([str(one_run)]) == 0
    figures = one_run / "analysis" / "figures"
    for name in ("step0_f.png", "f_max_entropy.png", "acc_by_rank.png"):
        assert plt.imread(figures / name).shape[2] in (3, 4), name  # a readable PNG
    printed = capsys.readouterr().out
    assert "figures: step0_f.png, f_max_entropy.png, acc_by_rank.png" in printed


def test_figures_show_the_runs_numbers(one_run: Path, tmp_path: Path, monkeypatch) -> None:
    drawn: dict[str, plt.Figure] = {}

    def keep(fig: plt.Figure, path: Path) -> Path:  # instead of saving: inspect
        drawn[path.name] = fig
        return path

    monkeypatch.setattr(single_run, "save", keep)
    assert len(single_run.draw(one_run, tmp_path)) == 3
    series = pd.read_csv(one_run / "metrics.csv")
    step0 = series[series["step"] == 0].iloc[0]

    bars = drawn["step0_f.png"].axes[0]
    heights = [p.get_height() for p in bars.patches]  # train bars, then val bars
    f_train = [step0[f"igb/train/f/{c}"] for c in range(4)]
    f_val = [step0[f"igb/val/f/{c}"] for c in range(4)]
    np.testing.assert_allclose(heights, f_train + f_val)
    assert bars.lines[0].get_ydata()[0] == pytest.approx(0.25)  # the 1/C line
    record = json.loads((one_run / "split_shares.json").read_text())["splits"]
    ticks = [line.get_ydata().tolist() for line in bars.lines[1:]]  # train, then val shares
    np.testing.assert_allclose(ticks, [record["train"]["shares"], record["val"]["shares"]])

    f_max = drawn["f_max_entropy.png"].axes[0].lines[0]  # train f_max over steps
    measured = series[series["igb/train/f_max"].notna()]
    np.testing.assert_allclose(f_max.get_xdata(), measured["step"])
    np.testing.assert_allclose(f_max.get_ydata(), measured["igb/train/f_max"])

    lines = drawn["acc_by_rank.png"].axes[0].lines
    assert [line.get_label() for line in lines] == ["1", "2", "3", "4"]
    np.testing.assert_allclose(lines[0].get_ydata(), measured["val/acc_rank/1"])
    favoured = int(np.argmax(f_train))  # rank 1 is the class the run favoured at step 0
    np.testing.assert_allclose(lines[0].get_ydata(), measured[f"val/acc_class/{favoured}"])


def test_the_run_records_its_splits_class_shares(one_run: Path, tmp_path: Path) -> None:
    """split_shares.json holds each split's label counts as the datamodule built them,
    counted here again from a fresh datamodule of the run's own config, and the analysis
    measures the time to neutrality against them."""
    record = json.loads((one_run / "split_shares.json").read_text())
    cfg = yaml.safe_load((one_run / "config.yaml").read_text())
    dm = instantiate_datamodule(cfg["dataset"])
    data = cfg["dataset"]
    n = data["num_samples"]
    n_val, n_test = int(n * data["val_fraction"]), int(n * data["test_fraction"])
    assert {s: record["splits"][s]["size"] for s in ("train", "val", "test")} == {
        "train": n - n_val - n_test, "val": n_val, "test": n_test
    }  # fmt: skip
    for split in ("train", "val", "test"):
        labels = dm.split_tensors(split)[1].numpy()
        classes, counts = np.unique(labels, return_counts=True)
        expected = dict(zip(classes.tolist(), counts.tolist()))
        entry = record["splits"][split]
        assert entry["counts"] == [expected.get(c, 0) for c in range(4)], split
        np.testing.assert_allclose(entry["shares"], np.asarray(entry["counts"]) / len(labels))
    assert record["num_classes"] == 4 and len(record["class_names"]) == 4

    row = collect(one_run).jobs.iloc[0]
    assert row["val_neutral_reference"] == SPLIT_SHARES == row["train_neutral_reference"]
