"""One failing job does not take a grid down; a non-finite loss stops a run cleanly."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
from helpers.entry_points import run_entry
from helpers.sizes import TINY, merged
from omegaconf import OmegaConf

from igb.jobs.status import JobFolder
from igb.launch.hydra_callbacks import FailureReport
from igb.launch.train_job import run

#: the jobs import the fault callbacks from tests/helpers
TESTS = Path(__file__).resolve().parents[1]
HELPERS_IMPORTABLE = {
    "PYTHONPATH": os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
}

#: job 1 of the grid (seed=1) raises at step 2; jobs 0 and 2 train normally
GRID = [
    "seed=0,1,2",
    "+callbacks.fault._target_=helpers.faults.RaiseAtStep",
    "+callbacks.fault.seed=1",
    "+callbacks.fault.step=2",
]


def status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "local"])
def test_one_failing_job_of_three_is_recorded_and_reported(tmp_path: Path, launcher: str) -> None:
    sweep = tmp_path / "sweep"
    argv = merged(TINY, ["trainer.max_epochs=1", "logger=csv", *GRID, f"hydra.sweep.dir={sweep}"])
    if launcher == "local":  # joblib: the jobs run in worker processes
        argv += ["hydra/launcher=local", "hydra.launcher.n_jobs=2"]
    proc = run_entry("train.py", "-m", *argv, cwd=tmp_path, env=HELPERS_IMPORTABLE)
    output = proc.stdout + proc.stderr
    # the grid ran to its end, then the report made the exit code non-zero
    assert proc.returncode == 1, output[-3000:]
    assert "multirun: 2/3 jobs finished" in output
    assert "1 of 3 jobs did not finish: 1 (seed=1)" in output
    assert "job 1 (seed=1): failed - RuntimeError: injected fault at step 2" in output

    for ok in ("0", "2"):
        st = status(sweep / ok)
        assert st["status"] == "finished", st
        assert pd.read_csv(sweep / ok / "metrics.csv")["test/acc"].notna().sum() == 1
    failed = status(sweep / "1")
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError: injected fault at step 2"
    assert "Traceback (most recent call last)" in failed["traceback"]
    assert "faults.py" in failed["traceback"] and "raise RuntimeError" in failed["traceback"]


def test_non_finite_loss_stops_cleanly_as_diverged(make_cfg) -> None:
    overrides = [
        "logger=csv",
        "trainer.max_epochs=3",
        "+callbacks.fault._target_=helpers.faults.NaNAtStep",
        "+callbacks.fault.step=3",
    ]
    cfg = make_cfg(*overrides)
    assert math.isnan(run(cfg))  # no exception: a clean stop
    out = Path(cfg.paths.output_dir)
    st = status(out)
    assert st["status"] == "diverged"
    assert st["error"].startswith("loss is nan at step 3")
    # stopped at once, recorded at the step whose loss was NaN (no update was made there)
    assert st["global_step"] == 3  # the step whose loss was NaN, as the error says
    assert "traceback" not in st

    # an outcome of its configuration: a relaunch skips it (the grid report counts it failed)
    stamp = st["updated"]
    assert math.isnan(run(make_cfg(*overrides)))
    assert status(out)["updated"] == stamp


def _fake_job(sweep: Path, num: int, overrides: list[str], st: dict | None) -> None:
    """A job folder as a launch leaves it; a started job has its config.yaml (a finished
    job without one is damaged: nothing says which configuration ran there)."""
    folder = sweep / str(num)
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
    if st is not None:
        OmegaConf.save(OmegaConf.create({"overrides": overrides}), folder / "config.yaml")
        JobFolder(folder).mark(**st)


def test_failure_report_names_the_jobs_that_did_not_finish(tmp_path: Path, caplog) -> None:
    sweep = tmp_path / "sweep"
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    _fake_job(sweep, 0, ["lr=0.1", "seed=0"], {"status": "finished"})
    _fake_job(sweep, 1, ["lr=1e6", "seed=0"], {"status": "diverged", "error": "loss is nan"})
    with pytest.raises(SystemExit) as info:  # diverged: an outcome, but not a result
        FailureReport().on_multirun_end(cfg)
    assert str(info.value.code).startswith("1 of 2 jobs did not finish: 1 (lr=1e6)")

    _fake_job(sweep, 2, ["lr=0.1", "seed=1"], {"status": "failed", "error": "ValueError: x"})
    _fake_job(sweep, 3, ["lr=0.1", "seed=2"], None)  # never started
    with pytest.raises(SystemExit) as info:
        FailureReport().on_multirun_end(cfg)
    message = str(info.value.code)
    assert message.startswith(
        "3 of 4 jobs did not finish: 1 (lr=1e6 seed=0), 2 (lr=0.1 seed=1), 3 (lr=0.1 seed=2)"
    )
    lines = caplog.text
    assert "job 1 (lr=1e6): diverged - loss is nan" in lines
    assert "job 2 (lr=0.1 seed=1): failed - ValueError: x" in lines


@pytest.mark.slow
def test_a_single_run_that_diverges_exits_1_like_a_grid(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    argv = merged(TINY, ["trainer.max_epochs=1", "logger=csv", f"hydra.run.dir={folder}"])
    argv += ["+callbacks.fault._target_=helpers.faults.NaNAtStep", "+callbacks.fault.step=2"]
    proc = run_entry("train.py", *argv, cwd=tmp_path, env=HELPERS_IMPORTABLE)
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: the run diverged (loss is nan at step 2 (epoch 0)); recorded in "
        f"{folder}/status.json; a smaller optimizer.lr is the usual fix "
        "(skip_finished=false runs it again)"
    ]
    assert status(folder)["status"] == "diverged"
    # nothing is logged past the step whose loss was not finite
    assert pd.read_csv(folder / "metrics.csv")["step"].max() <= 2
