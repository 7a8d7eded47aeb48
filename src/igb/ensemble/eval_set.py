"""The evaluation set of an ensemble job and the sizes of a dataset's splits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from igb import SPLITS
from igb.errors import ConfigError


def eval_set(dataset: Mapping[str, Any], split: str, samples: int | None) -> tuple[Tensor, Any]:
    """The evaluation inputs: the first ``samples`` points (None: all) of ``split`` of the
    resolved ``dataset`` config (``ensemble.eval_samples``, ``ensemble.eval_split``); the
    dataset the pre-flight built for its split sizes, in the same process, is reused
    rather than generated (or read) again."""
    dm = _BUILT.pop(_key(dataset), None)
    if dm is None:
        from igb.data.instantiate import instantiate_datamodule

        dm = instantiate_datamodule(dataset)
        dm.prepare_data()
        dm.setup("fit")
    x, _ = dm.split_tensors(split)
    if samples is not None:
        if samples > x.shape[0]:
            raise ConfigError(
                "ensemble.eval_samples",
                f"ensemble.eval_samples={samples} but the {split} split has {x.shape[0]} "
                f"points; use ensemble.eval_samples<={x.shape[0]} or null (all)",
            )
        x = x[:samples]
    return x, dm


_SPLIT_SIZES: dict[str, dict[str, int]] = {}
#: the last dataset :func:`split_sizes` built, by its config, until :func:`eval_set` takes it
_BUILT: dict[str, Any] = {}


def _key(dataset: Mapping[str, Any]) -> str:
    return json.dumps(dict(dataset), sort_keys=True, default=str)


def split_sizes(dataset: Mapping[str, Any]) -> dict[str, int]:
    """The number of points of every split of the resolved ``dataset`` config."""
    from igb.data.instantiate import instantiate_datamodule

    key = _key(dataset)
    if key not in _SPLIT_SIZES:
        dm = instantiate_datamodule(dataset)
        dm.setup("fit")
        _SPLIT_SIZES[key] = {s: int(dm.split_tensors(s)[0].shape[0]) for s in SPLITS}
        _BUILT.clear()  # one dataset held at a time: a grid's pre-flight builds many
        _BUILT[key] = dm
    return _SPLIT_SIZES[key]
