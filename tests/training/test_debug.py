"""The debugging presets (``debug=default|fdr|limit|overfit|profiler``) compose and run a
tiny job each, with what each promises."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers.entry_points import run_entry
from helpers.sizes import TINY

#: training batches of one epoch of the TINY data (240 points, 25% held out, batches of 32)
BATCHES = 6


@pytest.mark.parametrize(
    ("preset", "steps"),
    [
        ("default", BATCHES),
        ("fdr", 1),
        ("limit", 3 * 3),
        ("overfit", 20 * 3),
        ("profiler", BATCHES),
    ],
)
def test_debug_preset_runs_a_tiny_job(tmp_path: Path, preset: str, steps: int) -> None:
    argv = [o for o in TINY if not o.startswith("trainer.max_epochs")]
    result = run_entry("train.py", *argv, f"debug={preset}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = (tmp_path / "outputs" / "debug" / "runs").iterdir()  # task_name: debug
    status = json.loads((job / "status.json").read_text())
    assert status["status"] == "finished" and status["global_step"] == steps
    trainer = yaml.safe_load((job / "config.yaml").read_text())["trainer"]
    assert trainer["detect_anomaly"] is True and trainer["accelerator"] == "cpu"
    assert not (job / "wandb").exists()  # CSV only
    if preset == "fdr":  # Lightning's fast_dev_run logs nothing
        assert not (job / "metrics.csv").exists()
        return
    rows = pd.read_csv(job / "metrics.csv").groupby("step").last()
    if preset == "overfit":  # the same three batches, 60 steps: their loss goes to ~0
        assert rows["train/loss_running"].dropna().iloc[-1] < 0.05
        assert rows["train/loss_running"].dropna().iloc[0] > 0.5
    if preset == "profiler":
        report = (job / "fit-profile.txt").read_text()
        assert "run_training_epoch" in report and "BiasStatsCallback" in report
