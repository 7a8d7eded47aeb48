"""The authors' two antipodal Gaussian blobs (dataset=authors_gaussian)."""

from __future__ import annotations

import math

import pytest
import torch

from igb.data import GaussianBlobsDataModule
from igb.data.instantiate import instantiate_datamodule
from igb.errors import ConfigError


def test_preset_matches_their_sizes_and_centres(make_cfg) -> None:
    cfg = make_cfg("dataset=authors_gaussian", tiny=False)
    dm = instantiate_datamodule(cfg.dataset)
    assert isinstance(dm, GaussianBlobsDataModule)
    dm.setup()
    (x, y), (xt, yt) = dm.split_tensors("train"), dm.split_tensors("test")
    assert x.shape == (20000, 1000) and xt.shape == (1000, 1000)
    assert torch.bincount(y).tolist() == [10000, 10000]
    assert torch.bincount(yt).tolist() == [500, 500]
    assert dm.split_tensors("val")[0].shape[0] == 0
    # not standardised: class means estimate +-1/sqrt(1000) in every coordinate
    m0 = x[y == 0].mean(0)
    assert abs(m0.mean().item() - 1 / math.sqrt(1000)) < 0.002
    assert abs(x[y == 1].mean(0).mean().item() + 1 / math.sqrt(1000)) < 0.002
    # unit noise around the centres
    assert abs((x[y == 0] - 1 / math.sqrt(1000)).std().item() - 1.0) < 0.01


def test_antipodal_centres_exact_and_seeded() -> None:
    dm = GaussianBlobsDataModule(num_classes=2, shape=[4], means="antipodal", separation=2.0)
    means = dm.class_means(torch.Generator().manual_seed(0))
    assert torch.equal(means, torch.tensor([[1.0] * 4, [-1.0] * 4]))
    kw = dict(num_classes=2, num_samples=10, test_samples=6, shape=[3], means="antipodal")
    a, b = GaussianBlobsDataModule(**kw), GaussianBlobsDataModule(**kw)
    assert torch.equal(a.split_tensors("test")[0], b.split_tensors("test")[0])
    assert a.split_tensors("test")[0].shape == (6, 3)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        (dict(num_classes=3, means="antipodal"), "dataset.means"),
        (dict(means="opposite"), "dataset.means"),
        (dict(test_samples=0), "dataset.test_samples"),
    ],
)
def test_bad_keys_are_named(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        GaussianBlobsDataModule(**kwargs)
