"""The end-of-run summary says where a run went and how it did; a diverged job fails a grid."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_train
from helpers.sizes import TINY, merged

from igb.jobs.summary import chance_record, chance_warning, multirun_lines, num
from igb.launch.hydra_callbacks import status_pointer
from igb.launch.train_job import run


def test_summary_of_a_real_run_matches_its_files(make_cfg, caplog) -> None:
    cfg = make_cfg("logger=csv")
    with caplog.at_level("INFO", logger="igb.jobs.summary"):
        run(cfg)
    out = Path(cfg.paths.output_dir)
    lines = [r.getMessage() for r in caplog.records if r.name == "igb.jobs.summary"]
    status = json.loads((out / "status.json").read_text())
    m = status["metrics"]
    assert lines[0].startswith("run finished in ") and lines[0].endswith(f": {out}")
    assert lines[1] == (
        f"  final acc   train {m['train/acc']:.3f}  val {m['val/acc']:.3f}  "
        f"test {m['test/acc']:.3f}"
    )
    assert lines[2].startswith(f"  final loss  train {m['train/loss']:.3f}")
    # the step-0 numbers are those of metrics.csv's step-0 row (an independent record)
    step0 = pd.read_csv(out / "metrics.csv").set_index("step").loc[0]
    assert lines[3] == (
        f"  step 0 (train): f_max {step0['igb/train/f_max']:.3f} (1/C = 0.250)  "
        f"entropy {step0['igb/train/entropy']:.3f}  "
        f"bias degree {step0['igb/train/bias_degree']:.3f}"
    )
    assert lines[-2] == (
        "  in that folder: metrics.csv, status.json, config.yaml, split_shares.json, checkpoints/"
    )
    assert lines[-1] == f"  figures of this run: python -m multirun_analysis {out}"
    # a relaunch skips the finished job: no summary claims a run that did not happen
    caplog.clear()
    with caplog.at_level("INFO", logger="igb.jobs.summary"):
        run(cfg)
    assert not [r for r in caplog.records if r.name == "igb.jobs.summary"]


def test_numbers_never_print_negative_zero() -> None:
    assert num(-0.0) == "0.000" and num(-1e-9) == "0.000" and num(-0.5) == "-0.500"
    assert num(None) == "-" and num(float("nan")) == "nan"


def test_multirun_lines_name_every_job_and_the_next_command(tmp_path: Path) -> None:
    statuses = {
        "0": {"status": "finished", "metrics": {"val/acc": 0.9, "test/acc": 0.875},
              "initial": {"igb/train/f_max": 0.4, "igb/train/f/0": 0.4, "igb/train/f/1": 0.6}},
        "1": {"status": "diverged", "error": "loss is nan at step 2 (epoch 0)"},
        "2": {},
        "3": {"status": "finished", "gamma": 0.43719, "regime": "prejudiced"},
    }  # fmt: skip
    labels = {"0": "optimizer.lr=0.05", "1": "optimizer.lr=1e8", "2": "optimizer.lr=1", "3": "-"}
    assert multirun_lines(tmp_path, statuses, labels) == [
        f"multirun: 2/4 jobs finished in {tmp_path}",
        "    0 finished    optimizer.lr=0.05  val acc 0.900  test acc 0.875  step-0 f_max 0.400",
        "    1 diverged    optimizer.lr=1e8   loss is nan at step 2 (epoch 0)",
        "    2 not started optimizer.lr=1     -",
        "    3 finished    -                  gamma 0.4372 (prejudiced)",
        f"next: python -m multirun_analysis {tmp_path}",
    ]


@pytest.mark.slow
def test_grid_with_a_diverged_job_exits_1_and_is_summarised(tmp_path: Path) -> None:
    """... and a job that learned nothing (a learning rate of 1e-12) is flagged."""
    sweep = tmp_path / "sweep"
    argv = merged(TINY, ["trainer.max_epochs=1", "logger=csv", f"hydra.sweep.dir={sweep}"])
    proc = run_train(tmp_path, "-m", "optimizer.lr=0.05,1e8,1e-12", *argv)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert f"multirun: 2/3 jobs finished in {sweep}" in output
    val_acc = json.loads((sweep / "0" / "status.json").read_text())["metrics"]["val/acc"]
    assert f"0 finished    optimizer.lr=0.05         val acc {val_acc:.3f}" in output
    # (Hydra records the override as optimizer.lr=100000000.0)
    assert "1 diverged    optimizer.lr=100000000.0  loss is " in output
    assert f"next: python -m multirun_analysis {sweep}" in output
    assert "1 of 3 jobs did not finish: 1 (optimizer.lr=100000000.0)" in output
    chance = json.loads((sweep / "2" / "status.json").read_text())["chance"]
    low, high = chance["interval"]
    assert chance["learned_nothing"] and chance["acc"] <= high
    assert not json.loads((sweep / "0" / "status.json").read_text())["chance"]["learned_nothing"]
    assert "2 finished    optimizer.lr=1e-12" in output and "LEARNED NOTHING" in output
    assert "multirun: 1 finished jobs learned nothing (final accuracy inside the chance " \
        "interval): 2 (optimizer.lr=1e-12)" in output  # fmt: skip
    assert "  warning: learned nothing: final val acc" in (sweep / "2" / "train.log").read_text()
    # each job's own summary is in its log file too
    assert "run finished in" in (sweep / "0" / "train.log").read_text()
    assert "run diverged in" in (sweep / "1" / "train.log").read_text()
    assert "returned `None`" not in output and "weights_only" not in output


def test_the_chance_interval_on_hand_made_numbers() -> None:
    """10 balanced classes, 1000 points: 1/C = 0.1 +- 2.576 sqrt(0.1 * 0.9 / 1000)."""
    shares = {"splits": {"val": {"size": 1000, "shares": [0.1] * 10}}}
    half = 2.576 * (0.09 / 1000) ** 0.5
    at = chance_record({"val/acc": 0.085}, shares)
    assert at["interval"] == pytest.approx([0.1 - half, 0.1 + half], abs=1e-12)
    assert at["learned_nothing"] and at["level"] == 0.1 and at["n"] == 1000
    assert not chance_record({"val/acc": 0.13}, shares)["learned_nothing"]  # 0.1245 < 0.13
    # an unbalanced split: always guessing its largest class (0.7) is the chance level
    unbalanced = {"splits": {"val": {"size": 100, "shares": [0.7, 0.3]}}}
    assert chance_record({"val/acc": 0.8}, unbalanced)["learned_nothing"]  # 0.7 + 0.118
    assert chance_record({}, shares) is None and chance_record({"val/acc": 0.5}, {}) is None
    line = chance_warning({"chance": at})
    assert line == (
        "learned nothing: final val acc 0.085 is inside the chance interval "
        "[0.076, 0.124] (always guessing the largest class: 0.100, 1000 points)"
    )


def test_the_report_tells_jobs_it_ran_from_jobs_it_found_finished(tmp_path: Path) -> None:
    statuses = {
        "0": {"status": "finished", "ran_here": True},
        "1": {"status": "finished", "ran_here": False},
        "2": {"status": "damaged", "error": "x/metrics.csv is missing (status.json records it)"},
    }
    lines = multirun_lines(tmp_path, statuses, {"0": "seed=0", "1": "seed=1", "2": "seed=2"})
    assert lines[:4] == [
        f"multirun: 2/3 jobs finished in {tmp_path} (1 run by this launch, 1 found finished "
        "and skipped)",
        "    0 finished    seed=0  -",
        "    1 skipped     seed=1  -",
        "    2 damaged     seed=2  x/metrics.csv is missing (status.json records it)",
    ]


def test_the_report_points_only_to_status_files_that_exist(tmp_path: Path) -> None:
    (tmp_path / "0").mkdir()
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "status.json").write_text("{}")
    assert status_pointer(tmp_path / "0") == f"{tmp_path / '0'} holds no status.json (the " \
        "job never started)"  # fmt: skip
    assert status_pointer(tmp_path / "1") == f"see {tmp_path / '1' / 'status.json'}"
    assert status_pointer(tmp_path / "<not started: seed=3>") == "no folder (the job never started)"
