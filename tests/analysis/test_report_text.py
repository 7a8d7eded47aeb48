"""The grid report names what the grid set, apart from what changed with it."""

from __future__ import annotations

import math

import pandas as pd
import torch

from igb.metrics import normalized_entropy
from multirun_analysis.report import grid_overrides, set_by_grid


def test_grid_overrides_and_the_choices_that_only_follow_them() -> None:
    jobs = pd.DataFrame(
        {"overrides": ["model=mlp seed=0 logger=csv", "model=cnn seed=0 logger=csv"]}
    )
    grid = grid_overrides(jobs)
    assert grid == {"model": ["mlp", "cnn"]}
    assert set_by_grid("model", grid)  # model.name: the option chosen
    assert not set_by_grid("depth", grid) and not set_by_grid("width", grid)  # came with the model
    norm_grid = grid_overrides(pd.DataFrame({"overrides": ["norm=pre", "norm=post"]}))
    assert set_by_grid("norm_placement", norm_grid) and not set_by_grid("depth", norm_grid)


def test_entropy_of_one_class_taking_all_is_plus_zero() -> None:
    value = float(normalized_entropy(torch.tensor([0.0, 1.0, 0.0])))
    assert value == 0.0 and math.copysign(1.0, value) == 1.0
    assert f"{value:.3f}" == "0.000"
