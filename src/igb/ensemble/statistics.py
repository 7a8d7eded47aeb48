"""Per-initialization bias statistics of a stack of initializations, and where they are kept."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from igb.metrics import bias_degree, centred_logit_moments, gamma_from_moments


def init_statistics(logits: Tensor) -> dict[str, Tensor]:
    """Bias statistics of a stack of initializations: logits ``(K, N, C)`` -> float64.

    The quantities of :class:`igb.metrics.BiasStatistics`, one row per initialization:
    ``f`` (K, C) (ties to the first maximal class, like ``argmax``), ``f_max`` (K,),
    ``entropy`` (K,) ``= H(f) / log C``, ``mu`` and ``s2`` (K, C) (centred-logit
    moments, population variance) and ``bias_degree`` (K,) ``= mean mu^2 / mean s2``.
    """
    if logits.ndim != 3:
        raise ValueError(f"logits must have shape (K, N, C), got {tuple(logits.shape)}")
    k, n, c = logits.shape
    offset = torch.arange(k, device=logits.device).unsqueeze(1) * c
    counts = torch.bincount((logits.argmax(dim=2) + offset).flatten(), minlength=k * c)
    f = counts.view(k, c).to(torch.float64) / n
    mu, s2 = centred_logit_moments(logits)
    entropy = -torch.special.xlogy(f, f).sum(dim=1) / math.log(c) if c > 1 else f[:, 0] * 0
    return {
        "f": f,
        "f_max": f.max(dim=1).values,
        "entropy": entropy,
        "mu": mu,
        "s2": s2,
        "bias_degree": bias_degree(mu, s2),
    }


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
    method: str
    device: str
    workers: int = 1
    chunk_size: int | None = None
    eval_time_s: float = 0.0
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
        }

    def put(self, rows: slice | int, stats: Mapping[str, Tensor]) -> None:
        for key, arr in self.arrays.items():
            value = stats[key].cpu().numpy()
            arr[rows] = value[0] if isinstance(rows, int) else value
