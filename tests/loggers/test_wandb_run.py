"""A tiny run with the real default logger set (W&B offline + CSV), read back from disk.

The W&B run is read from its ``run-*.wandb`` file with ``multirun_analysis.wandb_files`` (not
from the wandb objects in memory), and compared with the independent metrics.csv.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd
import pytest
from hydra.core.hydra_config import HydraConfig

from igb.launch.train_job import run
from multirun_analysis.wandb_files import find_run_dirs, read_run

C = 4
EPOCHS = 2
STEPS_PER_EPOCH = 8  # 240 train points / batch 30


def schema_keys(split: str, c: int = C) -> list[str]:
    """Every key docs/metrics_schema.md promises for one measured split."""
    keys = [f"igb/{split}/{k}" for k in ("f_max", "entropy", "bias_degree")]
    keys += [f"{split}/acc", f"{split}/loss"]
    for i in range(c):
        keys += [f"igb/{split}/f/{i}", f"igb/{split}/f_rank/{i + 1}"]
        keys += [f"{split}/acc_class/{i}", f"{split}/loss_class/{i}", f"{split}/acc_rank/{i + 1}"]
    return keys


def _isolate_wandb(monkeypatch, tmp_path: Path) -> None:
    """No credentials, no user config, no server: W&B's `auto` mode must pick offline."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_RUN_GROUP"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(home / ".netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / ".config" / "wandb"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(home / ".cache" / "wandb"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(home / ".local" / "wandb"))
    # nothing listens here: a network attempt would fail, not reach a server
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_offline_wandb_run_read_back_from_disk(make_cfg, monkeypatch, tmp_path, caplog) -> None:
    _isolate_wandb(monkeypatch, tmp_path)
    cfg = make_cfg(
        "logger=default",
        "norm=post",
        "dataset.num_samples=300",
        "dataset.shape=[20]",
        f"dataset.num_classes={C}",
        "dataset.batch_size=30",
        f"trainer.max_epochs={EPOCHS}",
        "callbacks.bias_stats.log_steps=4",
        "callbacks.model_checkpoint=null",
        "tags=[study-x]",
        # as job 0 of a Hydra multirun: the sweep folder names the W&B group
        "hydra.mode=MULTIRUN",
        f"hydra.sweep.dir={tmp_path / 'sweep-0042'}",
    )
    assert HydraConfig.get().mode.name == "MULTIRUN"
    assert cfg.logger.wandb.mode == "auto"
    with caplog.at_level(logging.INFO, logger="igb.logging.loggers"):
        run(cfg)
    out = Path(cfg.paths.output_dir)
    assert json.loads((out / "status.json").read_text())["status"] == "finished"
    assert any("wandb sync" in r.getMessage() for r in caplog.records)  # the one hint line
    assert not (tmp_path / "home" / ".netrc").exists()

    (run_dir,) = find_run_dirs(out / "wandb")
    assert run_dir.name.startswith("offline-run-")
    wb = read_run(run_dir)
    assert wb.finished and wb.exit_code == 0

    # identity: sweep group, model-kind-placement job type, choices as tags, resolved config
    assert wb.group == "sweep-0042"
    assert wb.job_type == "mlp-batch-post"
    assert {"model:mlp", "norm:post", "norm_kind:batch", "act:relu", "study-x"} <= set(wb.tags)
    assert wb.config["model"]["depth"] == cfg.model.depth
    assert wb.config["callbacks"]["bias_stats"]["norm_mode"] == "batch"
    measurement = wb.config["measurement"]
    assert measurement["norm_mode"] == "batch" and measurement["batch_size"] == 500
    assert measurement["class_names"] == [f"blob{i}" for i in range(C)]

    # define_metric: the statistics and per-class series are on the optimizer-step axis
    axis = {m["name"]: m["step_metric"] for m in wb.metrics}
    for glob in ("igb/*", "train/*", "val/*"):
        assert axis[glob] == "trainer/global_step"

    # join the history rows by trainer/global_step
    by_step: dict[int, dict] = {}
    for row in wb.history:
        by_step.setdefault(int(row["trainer/global_step"]), {}).update(row)
    epoch_ends = [STEPS_PER_EPOCH * (e + 1) for e in range(EPOCHS)]
    for step in (0, *epoch_ends):
        row = by_step[step]
        for split in ("train", "val"):
            missing = [k for k in schema_keys(split) if k not in row]
            assert not missing, (step, missing)
            assert math.isclose(sum(row[f"igb/{split}/f/{i}"] for i in range(C)), 1.0)
    stat_rows = {int(r["trainer/global_step"]): r for r in wb.history if "igb/train/f_max" in r}
    for step, row in stat_rows.items():  # the epoch that step belongs to (epoch ends included)
        assert row["epoch"] == max(step - 1, 0) // STEPS_PER_EPOCH
    stat_steps = sorted(stat_rows)
    assert len(stat_steps) > 1 + EPOCHS  # log-spaced steps inside the epochs too

    # every logged statistics row has f summing to 1 (not only the joined ones)
    for row in wb.history:
        if "igb/train/f_max" in row:
            assert math.isclose(sum(row[f"igb/train/f/{i}"] for i in range(C)), 1.0)

    # step-0 panels and the final per-class table
    assert "igb/train/predicted_class" in by_step[0]
    assert any(k.startswith("igb/train/f_bar") for k in by_step[0])
    last = by_step[EPOCHS * STEPS_PER_EPOCH]
    assert "igb/class_table" in last and "test/acc" in last and "test/acc_class/0" in last

    # two independent files agree: metrics.csv holds the same values at the same steps
    csv = pd.read_csv(out / "metrics.csv", float_precision="round_trip")  # exact on pandas 2.0
    csv_stats = csv[csv["igb/train/f_max"].notna()].set_index("step")
    assert sorted(csv_stats.index) == stat_steps
    for step in (0, *epoch_ends):
        for key in ("igb/train/f_max", "igb/val/f/0", "train/acc", "val/loss", "val/acc_rank/1"):
            assert csv_stats.loc[step, key] == by_step[step][key], (step, key)


def test_final_checkpoint_as_a_model_artifact_on_request(make_cfg, monkeypatch, tmp_path) -> None:
    """``logger.wandb.log_model=true``: igb's last.ckpt becomes the model artifact of the
    run (offline: recorded in the run's file, uploaded by ``wandb sync``)."""
    _isolate_wandb(monkeypatch, tmp_path)
    cfg = make_cfg("logger=wandb", "logger.wandb.log_model=true", "trainer.max_epochs=1")
    run(cfg)
    (run_dir,) = find_run_dirs(Path(cfg.paths.output_dir) / "wandb")
    wb = read_run(run_dir)
    assert wb.name == "mlp-batch-pre-seed0"
    (artifact,) = [a for a in wb.artifacts if a["type"] == "model"]  # tables are run_table
    # W&B records the aliases in no fixed order
    assert {**artifact, "aliases": sorted(artifact["aliases"])} == {
        "name": f"model-{wb.run_id}",
        "type": "model",
        "aliases": ["final", "latest"],
        "files": ["last.ckpt"],
    }


def test_system_metrics_key() -> None:
    import torch

    from igb.logging.loggers import stats_on

    assert stats_on("auto") is torch.cuda.is_available()
    assert stats_on(True) and not stats_on(False)
    with pytest.raises(ValueError, match="logger.wandb.system_metrics='yes'; allowed: auto"):
        stats_on("yes")
