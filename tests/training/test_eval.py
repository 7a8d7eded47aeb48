"""``eval.py`` measures a trained model as its training run did; ``init_from`` starts a run
from another job's weights. Real entry points, real checkpoints, real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT
from helpers.custom_models import DefaultBiases
from helpers.entry_points import run_entry
from helpers.sizes import TINY, merged

from igb.data.instantiate import instantiate_datamodule

#: keys the training run logs only while it trains (running means of the training steps)
TRAINING_ONLY = ("train/acc_running", "train/loss_running")


def _rows(folder: Path) -> pd.DataFrame:
    """metrics.csv with one row per step (a step's rows merged, as the analysis reads it)."""
    return pd.read_csv(folder / "metrics.csv").groupby("step").last()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished training job (BatchNorm before the ReLU: the batch-statistics
    measurement matters)."""
    root = tmp_path_factory.mktemp("trained")
    result = run_entry("train.py", *TINY, "logger=csv", f"hydra.run.dir={root / 'job'}", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "job"


@pytest.mark.parametrize("target", ["folder", "file"])
def test_eval_of_a_job_repeats_its_final_measurement_exactly(
    trained: Path, tmp_path: Path, target: str
) -> None:
    """Every key the eval logs equals the training run's at its final step, bit for bit
    (bias statistics, per-class and per-rank accuracy and loss on train/val/test, the
    module's test/acc, the weight overlap with the step-0 weights), at that step."""
    ckpt = trained if target == "folder" else trained / "checkpoints" / "last.ckpt"
    logger = ["logger=csv"] if target == "file" else []  # the folder: CSV + W&B offline
    out = tmp_path / "eval"
    result = run_entry("eval.py", f"ckpt_path={ckpt}", f"hydra.run.dir={out}", *logger,
                       cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    train, evaluated = _rows(trained), _rows(out)
    final = train.index.max()
    assert list(evaluated.index) == [final]  # one measurement, at the checkpoint's step
    got = evaluated.loc[final].dropna()
    want = train.loc[final].dropna().drop(list(TRAINING_ONLY))
    assert sorted(got.index) == sorted(want.index)
    for key in ("igb/val/f_rank/1", "val/acc_class/3", "test/acc", "train/weight_overlap"):
        assert key in got.index
    assert got.to_dict() == want.to_dict()
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "finished" and status["global_step"] == final
    assert status["metrics"]["val/acc"] == pytest.approx(got["val/acc"], rel=1e-6)
    if target == "folder":
        assert (out / "wandb").is_dir()


def test_eval_of_a_network_trained_elsewhere_measures_its_predictions(
    make_cfg, tmp_path: Path
) -> None:
    """A plain ``state_dict`` of the user's module (no igb job): f and accuracy of the
    val split equal the fractions of its argmax predictions counted here by hand."""
    dataset = ["dataset.shape=[12]"]
    torch.manual_seed(123)
    net = DefaultBiases(4)
    torch.save(net.state_dict(), tmp_path / "net.pt")
    out = tmp_path / "eval"
    argv = ["model=custom", "model.cls=helpers.custom_models.DefaultBiases", "norm=native",
            *merged(TINY[:4], dataset), f"ckpt_path={tmp_path / 'net.pt'}", "logger=csv",
            f"hydra.run.dir={out}"]  # fmt: skip
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    result = run_entry("eval.py", *argv, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    cfg = make_cfg(*dataset)
    dm = instantiate_datamodule(cfg.dataset)
    dm.prepare_data()
    dm.setup("fit")
    x, y = dm.split_tensors("val")
    with torch.no_grad():
        predicted = net(x).argmax(dim=1)
    row = _rows(out).iloc[0]
    for c in range(4):
        assert row[f"igb/val/f/{c}"] == pytest.approx((predicted == c).float().mean().item())
    assert row["val/acc"] == pytest.approx((predicted == y).float().mean().item())
    assert row.name == 0  # no training step: the row is at step 0


def test_init_from_starts_from_the_jobs_final_weights(trained: Path, tmp_path: Path) -> None:
    """The warm-started run's step-0 measurement is the trained job's final one; init_from
    is part of the job's identity (another value is refused in the same folder)."""
    out = tmp_path / "warm"
    argv = merged(TINY, ["logger=csv", "trainer.max_epochs=1", f"hydra.run.dir={out}"])
    result = run_entry("train.py", *argv, f"init_from={trained}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    start, final = _rows(out).loc[0], _rows(trained).iloc[-1]
    for key in ("igb/val/f/0", "igb/val/f_max", "igb/train/entropy", "val/acc", "val/loss"):
        assert start[key] == final[key], key
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["init_from"] == str(trained)
    again = run_entry("train.py", *argv, cwd=tmp_path)  # without init_from
    assert again.returncode == 2
    assert "init_from" in again.stderr and "another configuration" in again.stderr


@pytest.mark.parametrize(
    ("script", "argv", "expected"),
    [
        ("eval.py", [], "ckpt_path is required"),
        ("eval.py", ["ckpt_path=missing"], "ckpt_path=missing: no such file or folder"),
        ("eval.py", ["ckpt_path={job}", "model.width=8"], "does not fit the model: "),
        ("train.py", ["init_from={job}", "model.depth=3"], "does not fit the model: "),
        ("train.py", ["init_from={job}", "init_filter.mode=high"], "mode=high with init_from"),
    ],
)
def test_bad_checkpoints_are_one_line_before_anything_is_written(
    trained: Path, tmp_path: Path, script: str, argv: list[str], expected: str
) -> None:
    given = [a.format(job=trained) for a in argv]
    result = run_entry(script, *merged(TINY[:7], given), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "outputs").exists()
