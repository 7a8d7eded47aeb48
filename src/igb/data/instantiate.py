"""The datamodule of a ``dataset`` config node, with its own ConfigError passed on as is."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from igb.errors import config_errors_unwrapped

#: config keys that describe a datamodule but are not constructor arguments
_DATASET_META_KEYS = ("_target_", "name")


def instantiate_datamodule(dataset_cfg: DictConfig | dict[str, Any]) -> Any:
    cfg = (
        OmegaConf.to_container(dataset_cfg, resolve=True)
        if isinstance(dataset_cfg, DictConfig)
        else dict(dataset_cfg)
    )
    kwargs = {k: v for k, v in cfg.items() if k not in _DATASET_META_KEYS}
    with config_errors_unwrapped():
        return instantiate({"_target_": cfg["_target_"]}, **kwargs)
