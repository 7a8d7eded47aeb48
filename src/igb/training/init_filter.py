"""Initialization filtering: redraw the network until its step-0 imbalance passes a threshold.

The authors' ``filtering_mode`` (``high_igb``: ``|f_0 - f_1| > 0.9``, ``low_igb``: ``< 0.1``
on the first 1000 training points) trains prejudiced and neutral starts side by side.
For any number of classes C the statistic is the normalised excess of the largest
predicted fraction over the uniform one,

    imbalance = (f_max - 1/C) / (1 - 1/C)      in [0, 1],

0 for perfectly balanced predictions, 1 when every point goes to one class; for C = 2 it
is exactly ``|f_0 - f_1|`` (= ``2 f_max - 1``), so the authors' thresholds carry over.
``mode=high`` keeps the first draw with ``imbalance > threshold``, ``mode=low`` the first
with ``imbalance < threshold``.

Draw ``k`` is built from seed ``draw_seed(seed, k)``: draw 0 is ``seed`` itself (the
unfiltered run's initialization), later ones come from ``SeedSequence([seed, k])``, so
the same command keeps the same initialization and different run seeds never share a
draw. The training order (data shuffling) keeps ``seed`` whatever draw is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from igb.errors import ConfigError, JobError
from igb.metrics.measure import NORM_MODES, batch_stat_mode

log = logging.getLogger(__name__)

MODES = ("none", "high", "low")
#: the authors' thresholds (threshold_map in their MLP_Runs.py)
DEFAULT_THRESHOLD = {"high": 0.9, "low": 0.1}
RULE = "imbalance = (f_max - 1/C) / (1 - 1/C); C=2: |f_0 - f_1|"


class InitFilterExhausted(JobError):
    """No draw within ``init_filter.max_draws`` passed the threshold (one-line message)."""


@dataclass(frozen=True)
class InitFilter:
    """The ``init_filter`` config node (see the module docstring for the rule)."""

    mode: str = "none"
    threshold: float | None = None
    samples: int = 1000
    max_draws: int = 1000
    norm_mode: str = "batch"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> InitFilter:
        """Validated settings; a bad value raises a one-line ConfigError naming its key."""
        cfg = dict(cfg or {})
        known = cls.__dataclass_fields__
        extra = sorted(set(cfg) - set(known))
        if extra:
            raise ConfigError(
                f"init_filter.{extra[0]}",
                f"init_filter.{extra[0]} is not an init_filter option; allowed: "
                + ", ".join(known),
            )
        f = cls(**cfg)
        if f.mode not in MODES:
            raise ConfigError(
                "init_filter.mode", f"init_filter.mode={f.mode!r} is not one of {', '.join(MODES)}"
            )
        t = f.threshold
        if t is not None and (
            isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 <= t <= 1.0
        ):
            raise ConfigError(
                "init_filter.threshold",
                f"init_filter.threshold={t} must be a number in [0, 1] (or null: "
                "0.9 for high, 0.1 for low)",
            )
        for key in ("samples", "max_draws"):
            v = getattr(f, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"init_filter.{key}", f"init_filter.{key}={v} must be >= 1")
        if f.norm_mode not in NORM_MODES:
            raise ConfigError(
                "init_filter.norm_mode",
                f"init_filter.norm_mode={f.norm_mode!r} is not one of {', '.join(NORM_MODES)}",
            )
        return f

    @property
    def active(self) -> bool:
        return self.mode != "none"

    @property
    def limit(self) -> float:
        return float(DEFAULT_THRESHOLD[self.mode] if self.threshold is None else self.threshold)

    def accepts(self, value: float) -> bool:
        return value > self.limit if self.mode == "high" else value < self.limit


def draw_seed(seed: int, k: int) -> int:
    """Seed of draw ``k``: ``seed`` for draw 0, else a SeedSequence child of (seed, k)."""
    if k == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1)[0])


def imbalance(f: torch.Tensor) -> float:
    """``(f_max - 1/C) / (1 - 1/C)`` of predicted fractions ``f`` (C entries)."""
    c = f.numel()
    return float((f.max() - 1.0 / c) / (1.0 - 1.0 / c))


@torch.no_grad()
def predicted_fractions(
    model: nn.Module, x: torch.Tensor, num_classes: int, norm_mode: str = "batch"
) -> torch.Tensor:
    """Fractions of ``x`` predicted as each class, in one pass (BatchNorm: statistics of
    all of ``x``, as the authors' check, which ran the fresh model in training mode)."""
    with batch_stat_mode(model, norm_mode):
        pred = model(x).argmax(dim=1)
    return torch.bincount(pred, minlength=num_classes).double().cpu() / pred.numel()


def filter_init(
    build: Callable[[int], nn.Module],
    x: torch.Tensor,
    num_classes: int,
    settings: InitFilter,
    seed: int,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Draw initializations until one passes; returns it (on CPU) and the record of the
    search (seeds tried, their imbalances, the kept seed) for status.json and W&B."""
    x = x.to(device)
    tried: list[int] = []
    values: list[float] = []
    for k in range(settings.max_draws):
        s = draw_seed(seed, k)
        model = build(s).to(device)
        f = predicted_fractions(model, x, num_classes, settings.norm_mode)
        value = imbalance(f)
        tried.append(s)
        values.append(round(value, 6))
        if settings.accepts(value):
            record = {
                **asdict(settings),
                "threshold": settings.limit,
                "rule": RULE,
                "draws": k + 1,
                "kept_seed": s,
                "kept_imbalance": round(value, 6),
                "kept_f": [round(v, 6) for v in f.tolist()],
                "seeds_tried": tried,
                "imbalances": values,
            }
            log.info(
                "init_filter %s: kept draw %d (seed %d), imbalance %.4f %s %.2f",
                settings.mode, k + 1, s, value, ">" if settings.mode == "high" else "<",
                settings.limit,
            )  # fmt: skip
            return model.cpu(), record
    side = "above" if settings.mode == "high" else "below"
    best = max(values) if settings.mode == "high" else min(values)
    raise InitFilterExhausted(
        f"init_filter.max_draws={settings.max_draws} reached: no initialization had an "
        f"imbalance {side} init_filter.threshold={settings.limit} on {x.shape[0]} train points "
        f"(the {'largest' if settings.mode == 'high' else 'smallest'} was {best:.4f}); raise "
        "init_filter.max_draws or move the threshold"
    )
