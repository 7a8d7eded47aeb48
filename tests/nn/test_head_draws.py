"""Heads of ``ensemble.vary=head`` drawn after a jump of the CPU generator: the jump lands
where drawing the words lands; the replayed heads are the whole builds' bit for bit, on
torchvision's ResNet-18 and igb's own models with their own head initialization; what the
record cannot vouch for replays whole initializations and says why."""

from __future__ import annotations

import logging

import pytest
import torch
from helpers.model_configs import MODELS, mlp_config, norm
from torch import nn

from igb.nn import mt19937
from igb.nn.build import build_model
from igb.nn.head_draws import HeadReplay, head_replay
from igb.nn.reinit import head_sampler, seeded_states

NATIVE = {"placement": "native", "kind": "native"}
CPU = torch.device("cpu")


def drawn(seed: int, n: int) -> torch.Tensor:
    """The generator's state after ``manual_seed(seed)`` and ``n`` words, drawn."""
    g = torch.Generator().manual_seed(seed)
    torch.empty(n).uniform_(generator=g)  # one word a float32 sample
    return g.get_state()


def test_the_characteristic_polynomial_has_mt19937s_135_terms() -> None:
    """Matsumoto and Nishimura (1998): phi of MT19937 has 135 nonzero terms, x^19937 one."""
    terms = mt19937._charpoly()
    assert len(terms) == 134 and max(terms) < 19937 and 0 in terms


@pytest.mark.parametrize("n", [1, 623, 624, 625, 2 * 624, 100_003])
def test_the_jump_lands_where_drawing_lands(n, monkeypatch) -> None:
    monkeypatch.setattr(mt19937, "DRAW_BELOW", 0)  # the jump even where drawing is cheaper
    seeds = [0, 7, 2**40 + 3]
    for seed, state in zip(seeds, mt19937.skipped_states(seeds, n, drawn(1, n)), strict=True):
        assert torch.equal(state, drawn(seed, n))
    assert mt19937.position(drawn(0, n)) == mt19937.position_after(n)


def custom(cls: type) -> dict:
    return {"_target_": "igb.nn.libraries.Custom", "name": "custom",
            "cls": f"{__name__}.{cls.__name__}"}  # fmt: skip


class TruncatedHead(nn.Module):
    """A head drawn by ``trunc_normal_`` (uniform_, erfinv_, mul_, add_, clamp_) and then
    scaled in place, with a draw of another tensor between the head's two draws."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Linear(4, 6)
        self.fc = nn.Linear(6, num_classes)
        self.extra = nn.Parameter(torch.empty(5))
        with torch.no_grad():
            nn.init.trunc_normal_(self.fc.weight, std=0.5)
            nn.init.normal_(self.extra)
            nn.init.uniform_(self.fc.bias)
            self.fc.weight.mul_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x)) + self.extra.sum()


def small_biases(depth: int) -> dict:
    """Biases of 9 elements: normal_'s pairwise path, which caches every second sample."""
    return {**mlp_config(depth=depth, width=9), "bias_var": 0.1}


CASES = {
    "torchvision-resnet18": (
        {"_target_": "igb.nn.libraries.Torchvision", "name": "tv", "arch": "resnet18"},
        NATIVE,
        (3, 16, 16),
    ),
    **{
        k: MODELS[k]
        for k in ("mlp-batch-post", "cnn-batch-post", "resnet-batch-pre", "vit-layer-pre")
    },
    "mlp-normal-head-variances": (
        {
            **mlp_config(init="normal"),
            "weight_var": 2.0,
            "bias_var": 0.1,
            "head_weight_var": 1.0,
            "head_bias_var": 0.5,
        },
        norm("none"),
        (12,),
    ),
    "mlp-small-biases": (small_biases(depth=2), norm("none"), (12,)),
    "custom-truncated-head": (custom(TruncatedHead), NATIVE, (4,)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_replayed_heads_are_the_whole_builds_bit_for_bit(name) -> None:
    model_cfg, norm_cfg, shape = CASES[name]
    built, head = seeded_states(model_cfg, norm_cfg, shape, 3, CPU)
    replay, state = head_replay(built, head, 5)
    assert isinstance(replay, HeadReplay), replay
    assert all(torch.equal(v, built(5)[k]) for k, v in state.items())  # the record is seed 5's
    seeds = [0, 9, 123_456]
    for seed, got in zip(seeds, replay(seeds), strict=True):
        whole = built(seed)
        assert set(got) == head
        assert all(torch.equal(got[k], whole[k]) for k in head), seed
    if name == "torchvision-resnet18":
        assert replay.words > mt19937.DRAW_BELOW  # the backbone's draws are jumped over


class PermutedBody(nn.Module):
    """Draws by ``randperm`` before its head: a consumption the record does not model."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Linear(4, 6)
        self.register_buffer("order", torch.randperm(6))
        self.fc = nn.Linear(6, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x)[:, self.order])


class ComputedHead(nn.Module):
    """A head computed from another tensor (out of place), not drawn into."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Linear(4, 6)
        self.fc = nn.Linear(6, num_classes)
        self.fc.weight.data = torch.randn(num_classes, 6) * 0.1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


FALLBACKS = {
    "unmodelled-draw": (
        custom(PermutedBody),
        NATIVE,
        "aten.randperm.default draws before the head (its consumption is not modelled)",
    ),
    "computed-head": (
        custom(ComputedHead),
        NATIVE,
        "aten.mul.Tensor computes the head (or a draw beside it) from other tensors",
    ),
    "pending-normal": (
        small_biases(depth=1),
        norm("none"),
        "a cached normal sample is pending at the head's first draw",
    ),
}


@pytest.mark.parametrize("name", list(FALLBACKS))
def test_what_the_record_cannot_vouch_for_replays_whole_initializations(name, caplog) -> None:
    model_cfg, norm_cfg, reason = FALLBACKS[name]
    shape = (12,) if model_cfg["_target_"].startswith("igb.nn.mlp") else (4,)
    built, head = seeded_states(model_cfg, norm_cfg, shape, 3, CPU)
    assert head_replay(built, head, 5)[0] == reason
    model = build_model(model_cfg, norm_cfg, shape, 3, seed=0)
    with caplog.at_level(logging.INFO, logger="igb.nn.reinit"):
        sample, _ = head_sampler(model_cfg, built, head, CPU, model, 5)
    assert f"each head replays the whole initialization: {reason}" in caplog.text
    for seed, got in zip([1, 2], sample([1, 2]), strict=True):
        assert all(torch.equal(got[k], built(seed)[k]) for k in head)
