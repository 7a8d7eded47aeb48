"""The evaluation set of an ensemble job and the sizes of a dataset's splits."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from igb import SPLITS
from igb.errors import ConfigError


def eval_set(cfg: DictConfig) -> tuple[Tensor, Any]:
    """The evaluation inputs (first ``ensemble.eval_samples`` of ``ensemble.eval_split``);
    the dataset the pre-flight built for its split sizes, in the same process, is reused
    rather than generated (or read) again."""
    dm = _BUILT.pop(_key(cfg.dataset), None)
    if dm is None:
        from igb.data.instantiate import instantiate_datamodule

        dm = instantiate_datamodule(cfg.dataset)
        dm.prepare_data()
        dm.setup("fit")
    ens = cfg.ensemble
    x, _ = dm.split_tensors(ens.eval_split)
    n = ens.eval_samples
    if n is not None:
        if n > x.shape[0]:
            raise ConfigError(
                "ensemble.eval_samples",
                f"ensemble.eval_samples={n} but the {ens.eval_split} split has {x.shape[0]} "
                f"points; use ensemble.eval_samples<={x.shape[0]} or null (all)",
            )
        x = x[:n]
    return x, dm


_SPLIT_SIZES: dict[str, dict[str, int]] = {}
#: the last dataset :func:`split_sizes` built, by its config, until :func:`eval_set` takes it
_BUILT: dict[str, Any] = {}


def _key(dataset_cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(dataset_cfg, resolve=True)


def split_sizes(dataset_cfg: DictConfig) -> dict[str, int]:
    from igb.data.instantiate import instantiate_datamodule

    key = _key(dataset_cfg)
    if key not in _SPLIT_SIZES:
        dm = instantiate_datamodule(dataset_cfg)
        dm.setup("fit")
        _SPLIT_SIZES[key] = {s: int(dm.split_tensors(s)[0].shape[0]) for s in SPLITS}
        _BUILT.clear()  # one dataset held at a time: a grid's pre-flight builds many
        _BUILT[key] = dm
    return _SPLIT_SIZES[key]
