"""The authors' estimators of the IGB strength, computed beside igb's gamma.

Their code logs two numbers (``InitVarComp`` and ``SingleInitStats`` in their utilities),
both from the raw logits ``o_c`` of each initialization over the evaluation points:

- ``InitVarComp``: for output node 0, the standard deviation over initializations of its
  mean over the points (``ensemble_centers_std``), the mean over initializations of its
  standard deviation over the points (``dataset_output_std``, torch's unbiased std), and
  their ratio ``sigma_ratio``. For iid output nodes and a spread that varies little
  between initializations, ``sigma_ratio**2`` estimates gamma.
- ``SingleInitStats``: for one initialization, the distance between the output centres
  (``|m_0 - m_1|``; for C > 2 the mean pairwise ``|m_i - m_j|``) over the mean output
  variance; reported here as its mean and median over the ensemble
  (``single_init_ratio_*``). It divides a distance by a variance, so it changes with the
  scale of the logits (halving every logit doubles it), unlike gamma and the bias
  degree; for C = 2 and uncorrelated nodes the bias degree is
  ``g = ratio**2 * mean_var / 2``.

docs/science.md says how they relate to gamma and where they differ.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def init_var_comp(raw_mu: np.ndarray, raw_s2: np.ndarray, n_points: int | None) -> dict[str, float]:
    """Their InitVarComp on node 0 from per-initialization moments ``(K, C)``."""
    means = raw_mu[:, 0]
    var = raw_s2[:, 0] * (n_points / (n_points - 1) if n_points and n_points > 1 else 1.0)
    centres = float(np.std(means))  # numpy's population std, as theirs
    spread = float(np.mean(np.sqrt(var)))
    return {
        "ensemble_centers_std": centres,
        "dataset_output_std": spread,
        "sigma_ratio": centres / spread if spread > 0 else float("nan"),
    }


def single_init_ratios(raw_mu: np.ndarray, raw_s2: np.ndarray) -> np.ndarray:
    """Their SingleInitStats ratio for every initialization: centre distance / mean var."""
    i, j = np.triu_indices(raw_mu.shape[1], k=1)
    distance = np.abs(raw_mu[:, i] - raw_mu[:, j]).mean(axis=1)
    mean_var = raw_s2.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return distance / mean_var


def authors_estimators(
    raw_mu: np.ndarray, raw_s2: np.ndarray, n_points: int | None
) -> dict[str, Any]:
    """Both estimators, for summary.json (``authors``)."""
    ratios = single_init_ratios(raw_mu, raw_s2)
    comp = init_var_comp(raw_mu, raw_s2, n_points)
    return {
        "init_var_comp": comp,
        "sigma_ratio_squared": comp["sigma_ratio"] ** 2,
        "single_init_ratio_mean": float(np.mean(ratios)),
        "single_init_ratio_median": float(np.median(ratios)),
    }
