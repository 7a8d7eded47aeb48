"""An evaluation from its composed configuration and the training job's own.

:func:`with_job_config` merges the training job's :data:`FROM_JOB` groups into the
command's configuration (those the command does not override), :func:`eval_spec` reads
the result once into an :class:`igb.training.spec.EvalSpec`, and :func:`run` measures
the checkpoint in the eval's own folder (:func:`igb.training.evaluate.evaluate`).
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from igb.jobs.identity import load_saved_config
from igb.launch.job_spec import job_spec
from igb.launch.train_job import run_parts
from igb.plain import plain
from igb.training.evaluate import KEY, evaluate
from igb.training.spec import EvalSpec
from igb.training.weights import resolve_checkpoint

#: what the training job decides about the model and its measurement (unless overridden)
FROM_JOB = ("model", "norm", "dataset", "seed", "callbacks.bias_stats")


def overridden(key: str) -> bool:
    """Whether this command's overrides set ``key`` or anything under it."""
    if not HydraConfig.initialized():
        return False
    task = [str(o).lstrip("+~") for o in HydraConfig.get().overrides.task]
    return any(o.split("=", 1)[0] == key or o.startswith(f"{key}.") for o in task)


def with_job_config(cfg: DictConfig, folder: Path | None) -> DictConfig:
    """``cfg`` with the training job's :data:`FROM_JOB` entries (those not overridden)."""
    saved = load_saved_config(folder) if folder is not None else None
    if not saved:
        return cfg
    merged = cfg.copy()
    job = OmegaConf.create(saved)
    with open_dict(merged):
        for key in FROM_JOB:
            value = OmegaConf.select(job, key)
            if value is not None and not overridden(key):
                OmegaConf.update(merged, key, value, merge=False, force_add=True)
    return merged


def eval_spec(cfg: DictConfig) -> EvalSpec:
    """Everything an evaluation reads: the checkpoint ``ckpt_path`` names, and the
    configuration merged with its training job's."""
    ckpt, folder = resolve_checkpoint(cfg[KEY], KEY)
    merged = with_job_config(cfg, folder)
    stats = plain(merged.callbacks.bias_stats)
    stats.pop("_target_", None)
    return EvalSpec(
        **run_parts(merged, "eval"), checkpoint=ckpt, job_folder=folder, bias_stats=stats
    )


def run(cfg: DictConfig) -> float:
    """One eval job in its own folder (``paths.output_dir``)."""
    return evaluate(job_spec(cfg), lambda: eval_spec(cfg))
