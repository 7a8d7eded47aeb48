"""The literal first command of the README: it learns, shows its initial bias, and
prints nothing a user could not act on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_train


@pytest.mark.slow
def test_default_run_learns_shows_its_bias_and_is_warning_free(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    proc = run_train(tmp_path, f"hydra.run.dir={folder}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    metrics = json.loads((folder / "status.json").read_text())["metrics"]
    # 10 classes: chance is 0.1; the default task is learnable in its 5 epochs
    assert metrics["val/acc"] >= 0.9 and metrics["test/acc"] >= 0.9, metrics
    # ... while its initial bias is plain: one class takes at least twice its share
    step0 = pd.read_csv(folder / "metrics.csv").set_index("step").loc[0]
    assert step0["igb/train/f_max"] >= 0.2
    # log-spaced measurements resolve the first steps
    assert len(pd.read_csv(folder / "metrics.csv")) > 5 + 1
    # the summary names the folder; no warning line of any kind
    assert "run finished in" in output and str(folder) in output
    noise = [line for line in output.splitlines() if re.search(r"warn|deprecat", line, re.I)]
    assert noise == [], noise
    assert "weights_only" not in output
