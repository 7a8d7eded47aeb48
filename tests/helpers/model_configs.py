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


def mlp(depth: int = 3, width: int = 24, activation: str = "relu") -> dict:
    """The MLP config the ensemble tests use by default."""
    return mlp_config(depth, width, activation)


def norm(placement: str = "post", kind: str = "batch") -> dict:
    """A ``norm`` group node."""
    return {"placement": placement, "kind": kind}


#: small models of every family, with their norm node and input shape (ensemble tests)
MODELS = {
    "mlp-batch-post": (mlp(), norm("post"), (12,)),
    "mlp-batch-pre": (mlp(), norm("pre"), (12,)),
    "mlp-layer-post": (mlp(activation="gelu"), norm("post", "layer"), (12,)),
    "mlp-none": (mlp(), norm("none"), (12,)),
    "cnn-batch-post": (
        {"_target_": "igb.nn.cnn.CNN", "name": "cnn", "depth": 2, "width": 4},
        norm("post"),
        (3, 8, 8),
    ),
    "resnet-batch-pre": (
        {"_target_": "igb.nn.resnet.ResNet", "name": "resnet", "depth": 1, "width": 4, "stages": 2},
        norm("pre"),
        (3, 8, 8),
    ),
    "vit-layer-pre": (
        {"_target_": "igb.nn.vit.ViT", "name": "vit", "depth": 1, "width": 8, "heads": 2},
        norm("pre", "layer"),
        (3, 8, 8),
    ),
}
