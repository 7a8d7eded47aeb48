"""torch's schedulers built from conf/scheduler/ give exactly the rates of the closed forms
igb used to hand-write: linear warmup (s + 1) / w, then constant, cosine or step decay."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from igb.errors import ConfigError
from igb.launch.conf_dir import find_conf_dir

TOTAL, BASE = 40, 0.5


def closed_form(schedule: str, step: int, warmup: int, size: int | None = None) -> float:
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "cosine":
        progress = (step - warmup) / max(TOTAL - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    if schedule == "step":
        size = size or max(TOTAL // 3, 1)
        return 0.1 ** ((step - warmup) // size)
    return 1.0


def rates(schedule: str, **overrides: object) -> list[float]:
    node = OmegaConf.load(find_conf_dir() / "scheduler" / f"{schedule}.yaml")
    node.merge_with(overrides)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = instantiate(OmegaConf.load(find_conf_dir() / "optimizer" / "sgd.yaml"))(
        [param], lr=BASE
    )
    scheduler = instantiate(node)(optimizer, total_steps=lambda: TOTAL)
    out = []
    for _ in range(TOTAL):
        out.append(optimizer.param_groups[0]["lr"] / BASE)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return out


@pytest.mark.parametrize("schedule", ["constant", "cosine", "step"])
@pytest.mark.parametrize("warmup", [0, 1, 7])
def test_rates_equal_the_closed_form(schedule: str, warmup: int) -> None:
    expected = [closed_form(schedule, s, warmup) for s in range(TOTAL)]
    assert rates(schedule, warmup_steps=warmup) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_step_size_and_gamma_keys() -> None:
    got = rates("step", step_size=5, gamma=0.5)
    assert got == pytest.approx([0.5 ** (s // 5) for s in range(TOTAL)])


def test_negative_warmup_is_one_line_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"scheduler.warmup_steps=-3 must be an integer >= 0"):
        rates("cosine", warmup_steps=-3)
