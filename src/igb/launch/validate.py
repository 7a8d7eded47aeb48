"""Semantic checks of a composed config, run before any job folder or tensor exists.

Hydra already rejects unknown options and keys; this adds what only the framework
knows: the schema first (every key's type and range, :mod:`igb.launch.schema`), then
norm kinds that apply to the model's layers, group counts that divide the widths,
BatchNorm with batches of one, missing datasets.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from igb.errors import ConfigError
from igb.launch.model_check import checked_model
from igb.launch.schema import check_schema
from igb.metrics.measure import has_batch_norm
from igb.training.init_filter import InitFilter
from igb.training.weights import check_fit, read_checkpoint, resolve_checkpoint

#: keys naming trained weights to load (train.py's warm start, eval.py's checkpoint)
WEIGHT_KEYS = ("init_from", "ckpt_path")
#: norm kinds that normalise with the statistics of the batch (a batch of one is degenerate)
BATCH_STAT_KINDS = ("batch", "center", "center_init")


def _check_accelerator(cfg: DictConfig) -> None:
    """``trainer.accelerator=gpu`` on a machine without one fails here, not in the job. A
    SLURM launch runs its jobs on other machines: not checked there."""
    accelerator = OmegaConf.select(cfg, "trainer.accelerator")
    launcher = str(OmegaConf.select(cfg, "hydra.launcher._target_", default="") or "")
    if accelerator not in ("gpu", "cuda") or "submitit" in launcher.lower():
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "trainer.accelerator",
            f"trainer.accelerator={accelerator} but this machine has no CUDA GPU; allowed "
            "here: auto, cpu",
        )


def _uses_batch_norm(cfg: DictConfig) -> bool:
    return cfg.norm.placement != "none" and cfg.norm.kind in BATCH_STAT_KINDS


def validate(cfg: DictConfig, check_data: bool = True) -> dict[str, Any]:
    """Raise ConfigError (one line, naming the key) for a config that cannot run.

    Builds the model on the ``meta`` device, so every layer-level rule (norm kind per
    layer type, group divisibility, image shapes, patch sizes) is checked exactly as the
    real build would check it, at no memory cost. Returns facts learned on the way.
    """
    check_schema(cfg)  # every key's type and range, declared once (igb.launch.schema)
    if OmegaConf.select(cfg, "callbacks.model_checkpoint.save_last"):
        raise ConfigError(
            "callbacks.model_checkpoint.save_last",
            "callbacks.model_checkpoint.save_last must be null or false: checkpoints/last.ckpt "
            "is igb's (written at a stop signal, at the end and every checkpoint_every_s)",
        )
    init_filter = OmegaConf.select(cfg, "init_filter")
    if init_filter is not None:
        InitFilter.from_config(OmegaConf.to_container(init_filter, resolve=True))
    _check_accelerator(cfg)
    input_shape, num_classes = _shapes(cfg, check_data)
    model = checked_model(cfg, input_shape, num_classes)
    for key in WEIGHT_KEYS:
        _check_weights(cfg, key, model)
    batch_norm = _uses_batch_norm(cfg) or has_batch_norm(model)  # external models too
    if batch_norm:
        for key in ("dataset.batch_size", "callbacks.bias_stats.batch_size"):
            if OmegaConf.select(cfg, key) == 1:
                native = cfg.norm.placement == "native"  # the architecture's BatchNorm
                where = "BatchNorm in the architecture" if native else f"norm.kind={cfg.norm.kind}"
                raise ConfigError(
                    key,
                    f"{key}=1 with {where}: it normalises with batch statistics like "
                    "BatchNorm, which a batch of one sample cannot give; use a batch size >= 2"
                    f"{'' if native else ' or norm.kind=layer|rms|group'}",
                )
    return {"input_shape": input_shape, "num_classes": num_classes, "batch_norm": batch_norm}


def _check_weights(cfg: DictConfig, key: str, model: Any) -> None:
    """``key`` (``init_from``, ``ckpt_path``) names a readable checkpoint whose weights fit
    the model; ``init_from`` replaces the drawn initialization, so filtering draws would be
    thrown away."""
    path = OmegaConf.select(cfg, key)
    if not path:
        return
    ckpt, _ = resolve_checkpoint(path, key)
    check_fit(model, read_checkpoint(ckpt, key), key, ckpt)
    if key == "init_from" and OmegaConf.select(cfg, "init_filter.mode", default="none") != "none":
        raise ConfigError(
            "init_filter.mode",
            f"init_filter.mode={cfg.init_filter.mode} with init_from={path}: the run starts "
            "from the checkpoint's weights, not from a drawn initialization; use "
            "init_filter.mode=none",
        )


def validate_eval(cfg: DictConfig) -> dict[str, Any]:
    """:func:`validate` for ``eval.py``: ``ckpt_path`` names a job folder or checkpoint,
    and the model it is measured with (the job's, unless overridden) builds."""
    from igb.launch.eval_job import with_job_config
    from igb.training.evaluate import KEY

    path = OmegaConf.select(cfg, KEY)
    if not path:
        raise ConfigError(
            KEY, f"{KEY} is required: a job folder or a checkpoint file ({KEY}=<path>)"
        )
    _, folder = resolve_checkpoint(path, KEY)
    return validate(with_job_config(cfg, folder))


def _shapes(cfg: DictConfig, check_data: bool) -> tuple[tuple[int, ...], int]:
    from igb.data.instantiate import instantiate_datamodule

    dm = instantiate_datamodule(cfg.dataset)
    if check_data:
        dm.check_available()
        dm.verify_files()
    input_shape = tuple(dm.expected_input_shape())
    num_classes = int(dm.expected_num_classes())
    if num_classes < 2:
        raise ConfigError(
            "dataset.num_classes",
            f"dataset.num_classes={num_classes} must be >= 2: the bias of a prediction is "
            "measured between classes",
        )
    return input_shape, num_classes
