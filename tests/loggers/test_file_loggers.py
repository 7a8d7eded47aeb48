"""``logger=tensorboard`` and ``logger=mlflow`` on a tiny real run, read back with each
library's own reader (TensorBoard's EventAccumulator, MLflow's client on the file store) and
compared with the independent metrics.csv of the same run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from igb.launch.train_job import run
from igb.logging.mlflow_logger import mlflow_key

KEYS = ("igb/train/f_max", "igb/val/f/0", "igb/train/entropy", "val/acc", "val/loss_class/1")


def _tiny_run(make_cfg, *overrides: str, job: str = "job") -> Path:
    cfg = make_cfg("logger=[csv,tensorboard,mlflow]", "seed=3", *overrides, job=job)
    run(cfg)
    out = Path(cfg.paths.output_dir)
    assert json.loads((out / "status.json").read_text())["status"] == "finished"
    return out


def _csv_series(out: Path, key: str) -> dict[int, float]:
    csv = pd.read_csv(out / "metrics.csv")
    rows = csv[csv[key].notna()]
    return dict(zip(rows["step"].astype(int), rows[key].astype(float)))


def test_tensorboard_events_hold_the_csv_rows(make_cfg) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = _tiny_run(make_cfg)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    for key in KEYS:
        # event files store float32
        got = {e.step: e.value for e in events.Scalars(key)}
        want = _csv_series(out, key)
        assert sorted(got) == sorted(want) and 0 in got, key
        assert got == pytest.approx(want, rel=1e-6), key


def test_mlflow_file_store_holds_the_csv_rows_and_the_identity(make_cfg) -> None:
    from mlflow.tracking import MlflowClient

    out = _tiny_run(make_cfg, "trainer.max_epochs=1")
    status = json.loads((out / "status.json").read_text())
    client = MlflowClient(tracking_uri=f"file:{out.parent / 'outputs' / 'mlruns'}")
    mlrun = client.get_run(status["mlflow_id"])
    assert mlrun.info.run_name == "mlp-batch-pre-seed3"
    assert mlrun.info.status == "FINISHED"
    assert {
        "model": "mlp",
        "norm": "pre",
        "norm_kind": "batch",
        "job_type": "mlp-batch-pre",
    }.items() <= mlrun.data.tags.items()
    assert mlrun.data.params["model/depth"] == "2"  # the resolved config, flattened
    for key in KEYS:
        history = client.get_metric_history(mlrun.info.run_id, mlflow_key(key))
        # the same float through two writers (pandas' CSV, MLflow's file): equal to the
        # last digit or one unit of it
        assert {m.step: m.value for m in history} == pytest.approx(
            _csv_series(out, key), rel=1e-15
        ), key

    # a longer run of the same job continues its MLflow run: one run, one history
    _tiny_run(make_cfg, "trainer.max_epochs=2", "skip_finished=false")
    again = json.loads((out / "status.json").read_text())
    assert again["mlflow_id"] == status["mlflow_id"]
    assert len(client.search_runs([mlrun.info.experiment_id])) == 1
    steps = [m.step for m in client.get_metric_history(status["mlflow_id"], "val.acc")]
    assert steps == sorted(_csv_series(out, "val/acc"))
