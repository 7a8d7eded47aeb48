"""The MLflow logger of ``conf/logger/mlflow.yaml``: a local file store, no server.

Metric keys are written with ``.`` for ``/`` (``igb.train.f_max``): the file store keeps a
metric as a file named by its key, so one key cannot also be a folder of keys
(``train/weight_overlap`` and ``train/weight_overlap/blocks/...``). Runs carry the names W&B
gets (``model-kind-placement-seed``, the sweep as a ``group`` tag, the choices as tags), and a
resumed job continues its MLflow run (its id is in status.json).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from lightning.pytorch.loggers import MLFlowLogger

from igb.logging.tracked_run import TrackedRun


def mlflow_key(key: str) -> str:
    """The MLflow name of a logged key: ``igb/train/f_max`` -> ``igb.train.f_max``."""
    return key.replace("/", ".")


class FileStoreMLFlowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger with the keys as :func:`mlflow_key` writes them."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics({mlflow_key(k): v for k, v in metrics.items()}, step=step)


def mlflow_tags(run: TrackedRun) -> dict[str, str]:
    """W&B's group, job type and ``key:value`` tags as MLflow's key-value tags."""
    out = {"group": run.group or "", "job_type": run.job_type or ""}
    for tag in run.tags or []:
        key, _, value = str(tag).partition(":")
        out[key] = value
    return {k: v for k, v in out.items() if k}


def mlflow_logger(
    tracking_uri: str,
    experiment_name: str = "igb",
    run: TrackedRun | None = None,
) -> FileStoreMLFlowLogger:
    """An MLFlowLogger on ``tracking_uri`` (``file:<folder>``; ``sqlite:///<file>`` works too
    where SQLAlchemy is installed) whose run holds the resolved config as parameters
    (``run``: the job's name, tags, config and the run id a resumed job continues)."""
    run = run or TrackedRun()
    if tracking_uri.startswith("file:"):
        # MLflow 3 keeps the file store but refuses it unless asked: it needs no database
        # and no server, and parallel jobs (SLURM arrays) write separate run folders
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    _ensure_experiment(tracking_uri, experiment_name)
    logger = FileStoreMLFlowLogger(
        experiment_name=experiment_name,
        run_name=run.name,
        tracking_uri=tracking_uri,
        tags=None if run.run_id else mlflow_tags(run),
        run_id=run.run_id,
    )
    if run.config is not None and run.run_id is None:
        logger.log_hyperparams(dict(run.config))
    return logger


def _ensure_experiment(tracking_uri: str, experiment_name: str) -> None:
    """Create the experiment once: the jobs of a parallel grid race to create it, and
    MLflow refuses the second creation of a name."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if client.get_experiment_by_name(experiment_name) is not None:
        return
    try:
        client.create_experiment(experiment_name)
    except MlflowException:
        if client.get_experiment_by_name(experiment_name) is None:
            raise
