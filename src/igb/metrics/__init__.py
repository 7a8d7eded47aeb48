"""Bias metrics: prediction fractions, centred-logit moments, per-class scores, gamma.

Names follow docs/science.md: ``f`` (prediction fractions), ``f_max``, ranked
fractions, normalised entropy, centred-logit moments ``mu``/``s2``, the
single-initialization bias degree ``g`` and the ensemble IGB strength ``gamma``.
"""

from igb.metrics.bias_statistics import BIAS_KEYS, TARGET_KEYS, BiasStatistics
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
