"""Objects built from the values in ``conf/``, the one home of defaults, for tests that
call the API directly instead of composing a job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[2] / "conf"


def group_values(path: str, node: str) -> dict[str, Any]:
    """The keys of ``node`` in ``conf/<path>.yaml`` (``_target_`` left out)."""
    values = OmegaConf.to_container(OmegaConf.load(CONF / f"{path}.yaml")[node], resolve=True)
    assert isinstance(values, dict)
    return {str(k): v for k, v in values.items() if k != "_target_"}


def bias_stats_callback(**overrides: Any) -> Any:
    """``BiasStatsCallback`` with the YAML's values, ``overrides`` replacing some."""
    from igb.callbacks import BiasStatsCallback

    return BiasStatsCallback(**{**group_values("callbacks/bias_stats", "bias_stats"), **overrides})
