"""Bias metrics: prediction fractions, centred-logit moments, per-class scores, gamma.

Names follow ``science.md``: ``f`` (prediction fractions), ``f_max``, ranked
fractions, normalised entropy, centred-logit moments ``mu``/``s2``, the
single-initialization bias degree ``g`` and the ensemble IGB strength ``gamma``.
"""

from igb.metrics.functional import (
    bias_degree,
    centred_logit_moments,
    normalized_entropy,
    prediction_fractions,
    ranked_fractions,
)
from igb.metrics.gamma import gamma_bootstrap_ci, gamma_from_moments
from igb.metrics.per_class import (
    BIAS_KEYS,
    TARGET_KEYS,
    BiasStatistics,
    PerClassAccuracy,
    PerClassLoss,
)
from igb.metrics.prediction import BiasDegree, CentredLogitMoments, PredictionFractions

__all__ = [
    "prediction_fractions",
    "ranked_fractions",
    "normalized_entropy",
    "centred_logit_moments",
    "bias_degree",
    "PredictionFractions",
    "CentredLogitMoments",
    "BiasDegree",
    "PerClassAccuracy",
    "PerClassLoss",
    "BiasStatistics",
    "BIAS_KEYS",
    "TARGET_KEYS",
    "gamma_from_moments",
    "gamma_bootstrap_ci",
]
