"""The per-initialization statistics of an ensemble (:func:`igb.metrics.logit_statistics`
of each initialization's logits) and where they are kept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from igb.metrics import gamma_from_moments


@dataclass
class EnsembleResult:
    """Per-initialization statistics (numpy, row ``k`` is seed ``seeds[k]``) and how."""

    seeds: np.ndarray
    f: np.ndarray
    f_max: np.ndarray
    entropy: np.ndarray
    mu: np.ndarray
    s2: np.ndarray
    bias_degree: np.ndarray
    #: moments of the raw (uncentred) logits, for the authors' estimators
    raw_mu: np.ndarray
    raw_s2: np.ndarray
    method: str
    device: str
    workers: int = 1
    chunk_size: int | None = None
    eval_time_s: float = 0.0
    #: initializations read from blocks an earlier attempt saved (not timed by this run)
    n_resumed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_inits(self) -> int:
        return int(self.seeds.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.f.shape[1])

    @property
    def gamma(self) -> float:
        return gamma_from_moments(self.mu, self.s2)


class StatisticsStore:
    """Preallocated per-initialization arrays, filled by row (threads write disjoint rows)."""

    def __init__(self, n: int, c: int) -> None:
        self.arrays = {
            "f": np.empty((n, c)),
            "f_max": np.empty(n),
            "entropy": np.empty(n),
            "mu": np.empty((n, c)),
            "s2": np.empty((n, c)),
            "bias_degree": np.empty(n),
            "raw_mu": np.empty((n, c)),
            "raw_s2": np.empty((n, c)),
        }

    def put(self, rows: slice | int, stats: Mapping[str, Tensor]) -> None:
        for key, arr in self.arrays.items():
            value = stats[key].cpu().numpy()
            arr[rows] = value[0] if isinstance(rows, int) else value
