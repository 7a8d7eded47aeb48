"""ensemble.vary=head on cached backbone features: the same rows as re-running the backbone
for every head (bit for bit), the closed-form Gaussian-head gamma beside the sampled one,
and the fallback where the head is not a plain final nn.Linear."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.entry_points import run_entry
from helpers.model_configs import MODELS, mlp, norm
from torch import nn

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.ensemble.heads import METHOD, cached_heads
from igb.ensemble.loop import run_loop
from igb.ensemble.runtime import Runtime
from igb.ensemble.statistics import StatisticsStore
from igb.metrics import gamma_bootstrap_ci
from igb.nn.reinit import reinitializer

NATIVE = {"placement": "native", "kind": "native"}

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")


class TinyConvNet(nn.Module):
    """A user's module: conv -> BatchNorm -> ReLU -> global pooling -> linear head."""

    def __init__(self, num_classes: int, permute: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU())
        if permute:  # a draw whose consumption igb.nn.head_draws does not model
            torch.randperm(5)
        self.fc = nn.Linear(6, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).mean(dim=(2, 3)))


class DoubledHead(TinyConvNet):
    """The head's output is not the model's: the heads cannot run on cached features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


def custom(cls: type) -> dict:
    return {
        "_target_": "igb.nn.libraries.Custom",
        "name": "custom",
        "cls": f"{__name__}.{cls.__name__}",
    }


CASES = {
    **{
        k: MODELS[k]
        for k in ("mlp-batch-post", "cnn-batch-post", "resnet-batch-pre", "vit-layer-pre")
    },
    "custom-native": (custom(TinyConvNet), NATIVE, (3, 8, 8)),
    "cnn-neutralize": (
        {**MODELS["cnn-batch-post"][0], "neutralize": "head"},
        norm("none"),
        (3, 8, 8),
    ),  # the head's centring runs once, on the backbone's pass
    # each head replays the whole initialization (igb.nn.reinit.head_sampler's fallback)
    "custom-unmodelled-draw": (
        {**custom(TinyConvNet), "kwargs": {"permute": True}},
        NATIVE,
        (3, 8, 8),
    ),
    # the head drawn alone from the seed (igb.nn.reinit.head_sampler's short path)
    "custom-head_init": ({**custom(TinyConvNet), "head_init": "torch_default"}, NATIVE, (3, 8, 8)),
}


def _backbone_per_head(model_cfg, norm_cfg, x, seeds, batch_size, seed0):
    """Today's path: the whole model (backbone of seed0, head of seed i) run for each seed."""
    store = StatisticsStore(len(seeds), 3)
    reinit = reinitializer(model_cfg, norm_cfg, x.shape[1:], 3, torch.device("cpu"), "head", seed0)
    plan = EvaluationPlan(model_cfg, norm_cfg, 3, batch_size, workers=1)
    with torch.random.fork_rng(devices=[]):
        run_loop(plan, x, seeds, Runtime(reinit, store))
    return store.arrays


@pytest.mark.parametrize("name", list(CASES))
def test_cached_heads_equal_the_backbone_run_per_head_bit_for_bit(name) -> None:
    model_cfg, norm_cfg, shape = CASES[name]
    x = torch.randn(20, *shape, generator=torch.Generator().manual_seed(0))
    seeds = [3, 4, 5, 6]
    plan = EvaluationPlan(model_cfg, norm_cfg, 3, batch_size=10, vary="head", backbone_seed=3)
    cached = evaluate_ensemble(plan, x, seeds)
    assert cached.method == METHOD
    old = _backbone_per_head(model_cfg, norm_cfg, x, seeds, 10, seed0=3)
    for key, values in old.items():
        assert np.array_equal(getattr(cached, key), values), key
    assert np.isfinite(cached.extra["gamma_gaussian_head"])


def test_closed_form_agrees_with_sampled_heads() -> None:
    """An MLP's head is kaiming-normal with zero bias: a Gaussian head, so the sampled
    gamma over many heads must bracket the closed form on the same features."""
    model_cfg, norm_cfg = mlp(depth=2, width=32), norm("none")
    x = torch.randn(64, 12, generator=torch.Generator().manual_seed(1))
    res = evaluate_ensemble(EvaluationPlan(model_cfg, norm_cfg, 3, 64, vary="head"), x, range(600))
    lo, hi = gamma_bootstrap_ci(res.mu, res.s2, n_boot=300)
    assert lo < res.extra["gamma_gaussian_head"] < hi


def test_fallback_names_why() -> None:
    x = torch.randn(8, 3, 8, 8)
    reason = cached_heads(EvaluationPlan(custom(DoubledHead), NATIVE, 3, batch_size=8), x, 0)
    assert reason == "the output of the head net.fc is not the model's output"
    plan = EvaluationPlan(custom(DoubledHead), NATIVE, 3, batch_size=8, vary="head")
    res = evaluate_ensemble(plan, x, [0, 1])
    assert res.method == "loop" and "gamma_gaussian_head" not in res.extra


def test_ensemble_py_vary_head_reports_the_closed_form(tmp_path) -> None:
    out = tmp_path / "job"
    proc = run_entry(
        "ensemble.py", "model=mlp", "model.depth=2", "model.width=16", "norm=none",
        "ensemble.vary=head", "ensemble.n_inits=40", "ensemble.eval_samples=60",
        "ensemble.batch_size=60", "ensemble.n_boot=50", "ensemble.progress=false",
        f"hydra.run.dir={out}", cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == METHOD
    assert summary["gamma_gaussian_head"] > 0
