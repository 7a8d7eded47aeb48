"""Searches with a sweeper the pre-flight does not expand: a real Optuna study, and the
pre-flight's checks of its first job and the bounds of its search space."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import run_train
from helpers.sizes import TINY, merged

from igb.launch.search_space import probe_jobs

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")


def test_probe_jobs_take_every_bound_one_parameter_at_a_time() -> None:
    params = {"optimizer.lr": "tag(log, interval(0.001, 1.0))", "seed": "range(0, 10, 3)"}
    jobs = probe_jobs(params, ["norm=pre,post", "model.depth=int(interval(1, 4))", "+x=1"])
    first = ["optimizer.lr=0.001", "seed=0", "norm=pre", "model.depth=1", "+x=1"]
    assert jobs == [
        first,
        ["optimizer.lr=1.0", *first[1:]],
        [first[0], "seed=9", *first[2:]],
        [*first[:2], "norm=post", *first[3:]],
        [*first[:3], "model.depth=4", first[4]],
    ]
    # the command line wins on a key both give; structured (Optuna) distributions too
    assert probe_jobs({"seed": "choice(1, 2)"}, ["seed=7"]) == [["seed=7"]]
    spec = {"optimizer.lr": {"type": "float", "low": 0.01, "high": 0.5, "log": True}}
    assert probe_jobs(spec, []) == [["optimizer.lr=0.01"], ["optimizer.lr=0.5"]]


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("optimizer.lr=interval(0.0, 1.0)", "optimizer.lr=0.0 must be a positive finite number"),
        ("model=mlp,cnnn", "model=cnnn is not an option of 'model'"),
        ("optimized_metric=val/accuracy", "optimized_metric=val/accuracy must be one of"),
    ],
)
def test_a_bad_bound_of_the_search_space_stops_the_search(
    tmp_path: Path, bad: str, expected: str
) -> None:
    """The bound, choice or key is reported in one line (exit 2) before Optuna starts."""
    result = run_train(tmp_path, "hparams_search=placement_lr", bad)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "outputs").exists()


def test_a_three_trial_optuna_study_minimises_the_configured_metric(tmp_path: Path) -> None:
    """``hparams_search=placement_lr`` runs a real Optuna study (hydra-optuna-sweeper, no
    -m): three trials, each a job folder; the objective is ``optimized_metric`` (here
    val/loss, minimised), and the study's best value is the smallest final val/loss the
    three jobs recorded, at the learning rate of that job."""
    argv = merged(TINY, ["logger=csv", "trainer.max_epochs=1", "hparams_search=placement_lr"])
    argv += ["hydra.sweeper.n_trials=3", "optimized_metric=val/loss"]
    argv += ["hydra.sweeper.direction=minimize", "norm=post"]
    result = run_train(tmp_path, *argv)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train" / "search" / "lr-batch-post").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2"]
    losses, lrs = [], []
    for job in jobs:
        status = json.loads((job / "status.json").read_text())
        assert status["status"] == "finished"
        assert status["objective"] == status["metrics"]["val/loss"]
        losses.append(status["metrics"]["val/loss"])
        lr = yaml.safe_load((job / "config.yaml").read_text())["optimizer"]["lr"]
        assert 0.001 <= lr <= 1.0
        lrs.append(lr)
    assert len(set(lrs)) == 3  # three trials, three learning rates
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert math.isclose(best["best_value"], min(losses), rel_tol=1e-6)
    assert best["best_params"]["optimizer.lr"] == lrs[losses.index(min(losses))]
    assert "multirun: 3/3 jobs finished" in result.stderr + result.stdout
