"""End to end through the real entry point and the real Hydra multirun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from helpers.sizes import TINY, merged

from igb.data.instantiate import instantiate_datamodule
from igb.launch.train_job import run
from igb.nn import build_model

ROOT = Path(__file__).resolve().parents[2]


def _train(tmp_path: Path, *argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "IGB_ROOT": str(tmp_path), "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _job_dirs(tmp_path: Path) -> list[Path]:
    sweeps = list((tmp_path / "outputs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1
    return sorted((p for p in sweeps[0].iterdir() if p.is_dir()), key=lambda p: int(p.name))


@pytest.mark.slow
def test_literal_command_runs_one_job_with_all_outputs(tmp_path: Path) -> None:
    proc = _train(tmp_path, "norm=post", "model=cnn", "-m")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (job,) = _job_dirs(tmp_path)
    assert json.loads((job / "status.json").read_text())["status"] == "finished"
    cfg = yaml.safe_load((job / "config.yaml").read_text())
    assert cfg["model"]["name"] == "cnn" and cfg["norm"]["placement"] == "post"
    assert (job / "checkpoints" / "last.ckpt").is_file()
    assert (job / "train.log").is_file()
    metrics = pd.read_csv(job / "metrics.csv")
    train_rows = metrics[metrics["train/loss_running"].notna()]
    assert train_rows["epoch"].max() == cfg["trainer"]["max_epochs"] - 1
    assert "test/acc" in metrics and metrics["test/acc"].notna().sum() == 1
    assert list((job / "wandb").glob("offline-run-*"))


@pytest.mark.slow
def test_grid_of_every_model_and_placement(tmp_path: Path) -> None:
    grid = ["model=mlp,cnn,resnet,vit", "norm=none,pre,post"]
    proc = _train(tmp_path, "-m", *merged(TINY, ["model.depth=1", "logger=csv", *grid]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _job_dirs(tmp_path)
    seen = set()
    for job in jobs:
        assert json.loads((job / "status.json").read_text())["status"] == "finished"
        cfg = yaml.safe_load((job / "config.yaml").read_text())
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert f"model={cfg['model']['name']}" in overrides
        assert f"norm={cfg['norm']['placement']}" in overrides
        seen.add((cfg["model"]["name"], cfg["norm"]["placement"]))
        assert (job / "metrics.csv").is_file()
    assert len(seen) == 12


def test_same_seed_same_run_different_seed_differs(make_cfg) -> None:
    def metrics(seed: int, job: str) -> pd.DataFrame:
        cfg = make_cfg(f"seed={seed}", "logger=csv", job=job)
        run(cfg)
        return pd.read_csv(Path(cfg.paths.output_dir) / "metrics.csv")

    a, b, c = metrics(1, "a"), metrics(1, "b"), metrics(2, "c")
    pd.testing.assert_frame_equal(a, b)
    assert not a["train/loss_running"].equals(c["train/loss_running"])


def test_finished_job_is_skipped_when_launched_again(make_cfg) -> None:
    cfg = make_cfg("logger=csv", "trainer.max_epochs=1")
    first = run(cfg)
    status = Path(cfg.paths.output_dir) / "status.json"
    stamp = json.loads(status.read_text())["updated"]
    assert run(cfg) == first
    assert json.loads(status.read_text())["updated"] == stamp


def test_running_train_loss_and_acc_equal_a_hand_replay_of_the_run(make_cfg) -> None:
    """``train/loss_running`` / ``train/acc_running`` of each epoch equal the sample-weighted
    means over the same optimizer steps replayed by hand: same initial parameters, the
    datamodule's batches in the trainer's epoch order, plain torch SGD."""
    cfg = make_cfg("logger=csv", "trainer.max_epochs=3", "optimizer.lr=0.05")
    run(cfg)
    metrics = pd.read_csv(Path(cfg.paths.output_dir) / "metrics.csv")
    logged = metrics[metrics["train/loss_running"].notna()].sort_values("epoch")

    dm = instantiate_datamodule(cfg.dataset)
    dm.setup("fit")
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    opt = torch.optim.SGD(
        model.parameters(),
        lr=cfg.optimizer.lr,
        momentum=cfg.optimizer.momentum,
        nesterov=cfg.optimizer.nesterov,
        weight_decay=cfg.optimizer.weight_decay,
    )
    loader = dm.train_dataloader()
    model.train()
    expected = []
    for epoch in range(cfg.trainer.max_epochs):
        loader.set_epoch(epoch)
        loss_sum, correct, n = 0.0, 0, 0
        for x, y in loader:
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            n += len(y)
        expected.append((loss_sum / n, correct / n))

    assert logged["epoch"].tolist() == [0, 1, 2]
    loss, acc = zip(*expected, strict=True)
    assert logged["train/loss_running"].tolist() == pytest.approx(loss, rel=1e-5)
    assert logged["train/acc_running"].tolist() == pytest.approx(acc, abs=1e-9)
    # training moved: the three epochs differ, so the equality is not of constants
    assert len({round(lo, 6) for lo, _ in expected}) == 3


def test_without_a_model_checkpoint_only_last_ckpt_is_written(make_cfg) -> None:
    """igb owns last.ckpt; dropping the ModelCheckpoint callback must not bring back
    Lightning's default one (a second checkpoint every epoch)."""
    cfg = make_cfg("logger=csv", "callbacks.model_checkpoint=null")
    run(cfg)
    out = Path(cfg.paths.output_dir)
    assert [p.relative_to(out).as_posix() for p in out.rglob("*.ckpt")] == ["checkpoints/last.ckpt"]
