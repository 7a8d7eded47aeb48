"""Initialization filtering (init_filter): the imbalance rule, the reproducible draws, the
record in status.json, and the step-0 statistics of the kept initialization."""

from __future__ import annotations

import copy as copy_module
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from igb.errors import ConfigError
from igb.launch.train_job import run
from igb.nn import build_model
from igb.training.init_filter import (
    InitFilter,
    InitFilterExhausted,
    draw_seed,
    filter_init,
    imbalance,
    predicted_fractions,
)

MLP = {"_target_": "igb.nn.mlp.MLP", "name": "mlp", "depth": 3, "width": 32}
NORM = {"placement": "pre", "kind": "batch"}


@pytest.mark.parametrize(
    ("f", "expected"),
    [
        ([0.5, 0.5], 0.0),
        ([1.0, 0.0], 1.0),
        ([0.3, 0.7], 0.4),  # two classes: |f_0 - f_1|
        ([0.25] * 4, 0.0),
        ([0.625, 0.125, 0.125, 0.125], 0.5),
        ([0.0, 0.0, 1.0, 0.0], 1.0),
    ],
)
def test_imbalance_rule(f: list[float], expected: float) -> None:
    assert imbalance(torch.tensor(f, dtype=torch.float64)) == pytest.approx(expected)
    if len(f) == 2:
        assert imbalance(torch.tensor(f, dtype=torch.float64)) == pytest.approx(abs(f[0] - f[1]))


def test_draw_seeds_start_at_the_run_seed_and_do_not_collide() -> None:
    assert draw_seed(7, 0) == 7
    draws = {(s, k): draw_seed(s, k) for s in range(5) for k in range(200)}
    assert len(set(draws.values())) == len(draws)
    assert draw_seed(3, 11) == draw_seed(3, 11)


def _search(mode: str, threshold: float, max_draws: int = 200):
    torch.manual_seed(0)
    x = torch.randn(400, 20) + 0.5  # shifted inputs: a spread of step-0 imbalances

    def build(seed: int):
        return build_model(MLP, NORM, (20,), 4, seed=seed)

    settings = InitFilter.from_config(
        {"mode": mode, "threshold": threshold, "max_draws": max_draws}
    )
    return build, x, filter_init(build, x, 4, settings, seed=3)


@pytest.mark.parametrize(("mode", "threshold"), [("high", 0.5), ("low", 0.1)])
def test_kept_draw_passes_and_every_earlier_one_failed(mode: str, threshold: float) -> None:
    build, x, (model, record) = _search(mode, threshold)
    # recomputed independently: one forward pass of a copy with BatchNorm in training mode
    copy = copy_module.deepcopy(model).train()
    with torch.no_grad():
        f = torch.bincount(copy(x).argmax(1), minlength=4).double() / x.shape[0]
    value = (f.max().item() - 0.25) / 0.75
    assert value == pytest.approx(record["kept_imbalance"], abs=1e-6)
    assert (value > threshold) if mode == "high" else (value < threshold)
    earlier = record["imbalances"][:-1]
    assert all((v <= threshold) if mode == "high" else (v >= threshold) for v in earlier)
    assert record["seeds_tried"] == [draw_seed(3, k) for k in range(record["draws"])]
    assert record["kept_seed"] == record["seeds_tried"][-1]
    # the kept initialization is the one its seed builds: reproducible from the record
    rebuilt = build(record["kept_seed"])
    for a, b in zip(model.state_dict().values(), rebuilt.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # and the measurement left no trace in BatchNorm's running statistics
    assert torch.equal(predicted_fractions(model, x, 4), f)


def test_cap_reached_is_one_line() -> None:
    with pytest.raises(InitFilterExhausted) as info:
        _search("high", 1.0, max_draws=3)
    msg = str(info.value)
    assert "\n" not in msg and "init_filter.max_draws=3" in msg


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"mode": "prejudiced"}, "init_filter.mode"),
        ({"mode": "high", "threshold": 1.5}, "init_filter.threshold"),
        ({"mode": "low", "max_draws": 0}, "init_filter.max_draws"),
        ({"mode": "low", "samples": 0}, "init_filter.samples"),
        ({"mode": "low", "norm_mode": "train"}, "init_filter.norm_mode"),
        ({"mode": "low", "tries": 3}, "init_filter.tries"),
    ],
)
def test_bad_settings_name_the_key(cfg: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        InitFilter.from_config(cfg)


def test_run_records_the_search_and_starts_from_the_kept_draw(make_cfg) -> None:
    overrides = [
        "logger=csv",
        "init_filter.mode=high",
        "init_filter.threshold=0.5",
        "init_filter.samples=1000",  # the whole train split (192 points)
        "callbacks.bias_stats.train_samples=null",
        "callbacks.bias_stats.batch_size=1000",  # one batch, as the filter's pass
        "dataset.separation=0",
        "dataset.shift=1.0",
        "trainer.max_epochs=1",
    ]
    cfg = make_cfg(*overrides)
    run(cfg)
    out = Path(cfg.paths.output_dir)
    record = json.loads((out / "status.json").read_text())["init_filter"]
    assert record["kept_imbalance"] > 0.5 and record["kept_seed"] == record["seeds_tried"][-1]
    # the callback's step-0 train fractions (measured on its own) are the filter's
    metrics = pd.read_csv(out / "metrics.csv")
    row = metrics[(metrics["step"] == 0) & metrics["igb/train/f/0"].notna()].iloc[0]
    f0 = [row[f"igb/train/f/{c}"] for c in range(4)]
    assert f0 == pytest.approx(record["kept_f"], abs=1e-6)
    # the same command keeps the same initialization
    again = make_cfg(*overrides, job="again")
    run(again)
    record2 = json.loads((Path(again.paths.output_dir) / "status.json").read_text())
    assert record2["init_filter"]["kept_seed"] == record["kept_seed"]


def test_wandb_run_config_holds_the_search(make_cfg) -> None:
    from multirun_analysis.wandb_files import find_run_dirs, read_run

    cfg = make_cfg(
        "logger=wandb", "init_filter.mode=low", "init_filter.threshold=0.3",
        "trainer.max_epochs=1",
    )  # fmt: skip
    run(cfg)
    out = Path(cfg.paths.output_dir)
    record = json.loads((out / "status.json").read_text())["init_filter"]
    (run_dir,) = find_run_dirs(out)
    logged = read_run(run_dir).config["init_filter"]
    assert logged["kept_seed"] == record["kept_seed"]
    assert logged["seeds_tried"] == record["seeds_tried"]
    assert logged["mode"] == "low" and logged["threshold"] == 0.3
