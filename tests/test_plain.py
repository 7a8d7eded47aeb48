"""igb.plain: config nodes as plain values without the config library, and the one
resolver of ``_target_`` paths below the launch."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from igb.nn.build import model_class
from igb.nn.mlp import MLP
from igb.plain import locate, plain


def test_plain_is_omegaconfs_resolved_container() -> None:
    """Two independent readings of one node agree: OmegaConf's own conversion and the
    Mapping / list protocols, interpolations (nested, inside lists) resolved by both."""
    cfg = OmegaConf.create(
        {"a": 1, "b": "${a}", "c": {"d": [1, "${a}", {"e": "${c.f}"}], "f": 2.5}, "g": None}
    )
    out = plain(cfg)
    assert out == OmegaConf.to_container(cfg, resolve=True)
    assert out["b"] == 1 and out["c"]["d"][2] == {"e": 2.5}
    assert type(out["c"]) is dict and type(out["c"]["d"]) is list


def test_plain_copies_dicts_and_lists_and_keeps_tuples() -> None:
    src = {"shape": (3, 8, 8), "kwargs": {"sizes": [1, 2]}}
    out = plain(src)
    assert out == src and out["shape"] is src["shape"]
    assert (
        out["kwargs"] is not src["kwargs"] and out["kwargs"]["sizes"] is not src["kwargs"]["sizes"]
    )


def test_locate_resolves_a_path_and_passes_importlibs_errors_on() -> None:
    assert locate("igb.nn.mlp.MLP") is MLP
    with pytest.raises(ModuleNotFoundError, match="igb.no_such_package"):
        locate("igb.no_such_package.Net")
    with pytest.raises(AttributeError, match="NoSuchNet"):
        locate("igb.nn.mlp.NoSuchNet")


def test_model_class_refuses_what_is_not_a_class() -> None:
    assert model_class("igb.nn.mlp.MLP") is MLP
    with pytest.raises(ValueError, match="Located non-class of type 'tuple' while loading"):
        model_class("igb.nn.mlp.UNIT_POOLS")
