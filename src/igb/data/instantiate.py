"""The datamodule of a ``dataset`` config node: its ``_target_`` class called with the
node's other keys (as plain values), so that a ConfigError it raises arrives as itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from igb.errors import not_a_key
from igb.plain import locate, plain

#: config keys that describe a datamodule but are not constructor arguments
_DATASET_META_KEYS = ("_target_", "name")


def instantiate_datamodule(dataset_cfg: Mapping[str, Any]) -> Any:
    """The datamodule; a key its class does not take (``+dataset.foo=1``) is one line."""
    cfg = plain(dataset_cfg)
    kwargs = {k: v for k, v in cfg.items() if k not in _DATASET_META_KEYS}
    try:
        return locate(cfg["_target_"])(**kwargs)
    except TypeError as exc:
        error = not_a_key(exc, "dataset", cfg.get("name"), list(cfg))
        if error is None:
            raise
        raise error from None
