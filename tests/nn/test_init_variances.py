"""model.init=normal with weight_var / bias_var (the head apart), and unit pooling in the MLP:
the draws' laws, seeded reproducibility, the pool's output, identity and bad values."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.model_configs import mlp_config
from omegaconf import OmegaConf

from igb.errors import ConfigError
from igb.jobs.identity import comparable, config_differences, init_tags
from igb.nn.build import build_model
from igb.nn.mlp import UnitPool
from igb.nn.reinit import reinitializer


def normal(width: int = 400, **extra) -> dict:
    return {**mlp_config(2, width, "tanh", "normal"), "weight_var": 1.5, "bias_var": 0.3, **extra}


def test_normal_draws_have_the_asked_variances() -> None:
    model = build_model(normal(head_weight_var=4.0, head_bias_var=0.0), {}, (300,), 50, seed=3)
    first, second = model.blocks[0].layer, model.blocks[1].layer
    assert first.weight.var().item() * 300 == pytest.approx(1.5, rel=0.02)
    assert second.weight.var().item() * 400 == pytest.approx(1.5, rel=0.02)
    assert second.bias.var().item() == pytest.approx(0.3, rel=0.15)
    assert model.head.weight.var().item() * 400 == pytest.approx(4.0, rel=0.05)
    assert torch.count_nonzero(model.head.bias) == 0


def test_bias_draws_are_part_of_the_seeded_initialization() -> None:
    cfg, norm = normal(width=32), {"placement": "post", "kind": "layer"}
    a = build_model(cfg, norm, (8,), 3, seed=7)
    b = build_model(cfg, norm, (8,), 3, seed=7)
    c = build_model(cfg, norm, (8,), 3, seed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.blocks[0].layer.bias, c.blocks[0].layer.bias)
    # the ensemble's in-place re-initialization gives the same parameters
    reinit = reinitializer(cfg, norm, (8,), 3, torch.device("cpu"))
    reinit(c, 7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_default_init_keeps_zero_biases_and_kaiming() -> None:
    cfg = {**mlp_config(2, 64), "weight_var": None, "bias_var": 0.0}
    model = build_model(cfg, {}, (100,), 3, seed=0)
    assert torch.count_nonzero(model.blocks[1].layer.bias) == 0
    assert model.blocks[1].layer.weight.var().item() * 64 == pytest.approx(2.0, rel=0.1)
    old = build_model(mlp_config(2, 64), {}, (100,), 3, seed=0)  # a config without the keys
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), old.parameters(), strict=True))


@pytest.mark.parametrize("model", ["cnn", "vit", "resnet"])
def test_every_built_in_model_draws_biases(model: str) -> None:
    from helpers.model_configs import MODELS

    cfg, norm, shape = next(v for k, v in MODELS.items() if k.startswith(model))
    built = build_model({**cfg, "bias_var": 0.2}, norm, shape, 3, seed=0)
    assert torch.count_nonzero(built.head.bias) == 3


@pytest.mark.parametrize(("kind", "reduce"), [("max", lambda g: g.amax(-1)),
                                              ("avg", lambda g: g.mean(-1))])  # fmt: skip
def test_unit_pool_reduces_consecutive_groups(kind: str, reduce) -> None:
    x = torch.randn(5, 12)
    out = UnitPool(kind, 3)(x)
    assert out.shape == (5, 4)
    assert torch.equal(out, reduce(x.view(5, 4, 3)))
    cfg = {**mlp_config(2, 12, "relu"), "unit_pool": kind, "unit_pool_size": 3}
    model = build_model(cfg, {"placement": "post", "kind": "layer"}, (7,), 2, seed=0)
    assert model.blocks[1].layer.in_features == 4 and model.head.in_features == 4
    assert model.blocks[0].norm.normalized_shape == (4,)  # post: the norm reads the pooled units
    pre = build_model(cfg, {"placement": "pre", "kind": "batch"}, (7,), 2, seed=0)
    assert pre.blocks[0].norm.num_features == 12
    h = model.blocks[0].pool(model.blocks[0].act(model.blocks[0].layer(torch.ones(1, 7))))
    assert h.shape == (1, 4)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"unit_pool": "max", "unit_pool_size": 5}, "model.unit_pool_size"),
        ({"unit_pool": "median"}, "model.unit_pool"),
        ({"init": "normal", "weight_var": None}, "model.weight_var"),
        ({"init": "kaiming_normal", "weight_var": 2.0}, "model.weight_var"),
        ({"init": "normal", "weight_var": 1.0, "bias_var": -1.0}, "model.bias_var"),
        ({"init": "normal", "weight_var": math.inf}, "model.weight_var"),
    ],
)
def test_bad_init_or_pool_is_a_config_error(extra: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_model({**mlp_config(2, 12), **extra}, {}, (7,), 2, seed=0, device="meta")
    assert err.value.key == key and key in str(err.value)


def test_variances_are_part_of_identity_and_tags() -> None:
    base = OmegaConf.create({"model": {**mlp_config(2, 12), "init": "normal", "weight_var": 1.0,
                                       "bias_var": 0.05, "unit_pool": "max",
                                       "unit_pool_size": 2}})  # fmt: skip
    other = OmegaConf.merge(base, {"model": {"bias_var": 0.3}})
    assert config_differences(OmegaConf.to_container(base), other) == ["model.bias_var"]
    assert init_tags(base.model) == ["init:normal", "weight_var:1.0", "bias_var:0.05",
                                     "unit_pool:max2"]  # fmt: skip
    # a folder written before the keys existed holds the default job
    old = {"model": mlp_config(2, 12)}
    new = {"model": {**mlp_config(2, 12), "weight_var": None, "bias_var": 0.0,
                     "head_weight_var": None, "head_bias_var": None, "unit_pool": "none",
                     "unit_pool_size": 2}}  # fmt: skip
    assert comparable(old) == comparable(new)
