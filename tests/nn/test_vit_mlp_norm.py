"""model.mlp_norm: the authors' LayerNorm inside each ViT MLP, before or after the GELU,
independent of the residual placement norm=pre|post."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn import build_model
from igb.nn.norm_act import Residual

VIT = {"_target_": "igb.nn.vit.ViT", "name": "vit", "depth": 2, "width": 16, "patch_size": 4}
SHAPE = (3, 16, 16)


def _mlps(model: nn.Module) -> list[nn.Sequential]:
    return [
        m.branch
        for m in model.modules()
        if isinstance(m, Residual) and isinstance(m.branch, nn.Sequential)
    ]


def _build(mlp_norm: str, placement: str = "pre") -> nn.Module:
    cfg = {**VIT, "heads": 2, "mlp_ratio": 2.0, "activation": "gelu", "mlp_norm": mlp_norm}
    return build_model(cfg, {"placement": placement, "kind": "layer"}, SHAPE, 3, seed=0)


@pytest.mark.parametrize("placement", ["pre", "post"])
@pytest.mark.parametrize(
    ("mlp_norm", "order"),
    [
        ("none", [nn.Linear, nn.GELU, nn.Linear]),
        ("before", [nn.Linear, nn.LayerNorm, nn.GELU, nn.Linear]),
        ("after", [nn.Linear, nn.GELU, nn.LayerNorm, nn.Linear]),
    ],
)
def test_layer_order_in_every_mlp(placement: str, mlp_norm: str, order: list[type]) -> None:
    model = _build(mlp_norm, placement)
    mlps = _mlps(model)
    assert len(mlps) == 2  # one per block
    for mlp in mlps:
        assert [type(m) for m in mlp] == order
        for m in mlp:
            if isinstance(m, nn.LayerNorm):
                assert m.normalized_shape == (32,)  # the MLP's hidden width
    # the residual placement is untouched by mlp_norm
    assert all(r.placement == placement for r in model.modules() if isinstance(r, Residual))


@pytest.mark.parametrize("mlp_norm", ["before", "after"])
def test_what_enters_the_second_linear_is_normalised_as_stated(mlp_norm: str) -> None:
    model = _build(mlp_norm)
    seen: list[torch.Tensor] = []
    mlp = _mlps(model)[0]
    mlp[-1].register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    model(torch.randn(8, *SHAPE))
    h = seen[0]
    if mlp_norm == "after":  # LayerNorm output: zero mean, unit variance per token
        assert torch.allclose(h.mean(-1), torch.zeros(h.shape[:-1]), atol=1e-5)
        assert torch.allclose(h.var(-1, unbiased=False), torch.ones(h.shape[:-1]), atol=1e-3)
    else:  # GELU of a standardised vector: GELU(z) >= -0.17, mean > 0
        assert h.min() > -0.18 and (h.mean(-1) > 0).all()


def test_unknown_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match="model.mlp_norm") as info:
        _build("inside")
    assert "before" in str(info.value) and "\n" not in str(info.value)


def test_final_norm_switch() -> None:
    cfg = {**VIT, "heads": 2, "activation": "gelu", "final_norm": False}
    model = build_model(cfg, {"placement": "pre", "kind": "layer"}, SHAPE, 3, seed=0)
    assert isinstance(model.final_norm, nn.Identity)
    assert isinstance(_build("none").final_norm, nn.LayerNorm)


def test_the_blocks_flat_keys_reach_every_block() -> None:
    """model.heads, model.mlp_ratio, model.mlp_norm (the ViT's TransformerBlock) set each
    block's attention and MLP; a key no part takes is refused by name."""
    cfg = {**VIT, "heads": 4, "mlp_ratio": 3.0, "activation": "gelu", "mlp_norm": "after"}
    model = build_model(cfg, {"placement": "pre", "kind": "layer"}, SHAPE, 3, seed=0)
    attns = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    assert [a.num_heads for a in attns] == [4, 4]
    assert [mlp[0].out_features for mlp in _mlps(model)] == [48, 48]  # 3.0 x width 16
    with pytest.raises(ConfigError, match="model.foo is not a key of model=vit"):
        build_model({**cfg, "foo": 1}, {"placement": "pre", "kind": "layer"}, SHAPE, 3, seed=0)
