"""Model config groups written out as plain dicts, for tests that call the API directly."""

from __future__ import annotations


def mlp_config(
    depth: int = 3, width: int = 24, activation: str = "relu", init: str = "kaiming_normal"
) -> dict:
    """``conf/model/mlp.yaml`` with these sizes (what ``model=mlp model.depth=...`` gives)."""
    return {
        "_target_": "igb.nn.mlp.MLP",
        "name": "mlp",
        "depth": depth,
        "width": width,
        "activation": activation,
        "init": init,
    }
