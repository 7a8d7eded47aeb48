"""Bias metrics: prediction fractions, centred-logit moments, per-class scores, gamma.

Names follow docs/science.md: ``f`` (prediction fractions), ``f_max``, ranked
fractions, normalised entropy, centred-logit moments ``mu``/``s2``, the
single-initialization bias degree ``g`` and the ensemble IGB strength ``gamma``.

The torchmetrics ``Metric`` (:mod:`.bias_statistics`) is loaded on first use: torchmetrics
brings scipy, matplotlib and torchvision, which ensembles and the theory never need.

May import only ``igb.nn`` and ``igb.errors``.
"""

from typing import Any

from igb.metrics.functional import (
    bias_degree,
    centred_logit_moments,
    centred_sums,
    logit_statistics,
    moments_from_sums,
    normalized_entropy,
    prediction_counts,
    ranked_fractions,
    statistics_from_sums,
)
from igb.metrics.gamma import gamma_bootstrap_ci, gamma_from_moments, ratio_bootstrap_ci
from igb.metrics.head_gamma import feature_moments, head_gamma, reduce_features

_IN_BIAS_STATISTICS = ("BIAS_KEYS", "TARGET_KEYS", "BiasStatistics")


def __getattr__(name: str) -> Any:
    if name in _IN_BIAS_STATISTICS:
        from igb.metrics import bias_statistics

        return getattr(bias_statistics, name)
    raise AttributeError(f"module 'igb.metrics' has no attribute {name!r}")


__all__ = [
    "BIAS_KEYS",
    "TARGET_KEYS",
    "BiasStatistics",
    "bias_degree",
    "centred_logit_moments",
    "centred_sums",
    "gamma_bootstrap_ci",
    "gamma_from_moments",
    "feature_moments",
    "head_gamma",
    "reduce_features",
    "ratio_bootstrap_ci",
    "logit_statistics",
    "moments_from_sums",
    "normalized_entropy",
    "prediction_counts",
    "ranked_fractions",
    "statistics_from_sums",
]
