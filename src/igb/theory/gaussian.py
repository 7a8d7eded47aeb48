"""The Gaussian model of initial guessing bias: laws of ``f_0`` and ``f_max``, regimes.

Model (docs/science.md): for one initialization, the logit of class ``c`` at a point
``x`` is ``mu_c + eps_c(x)``, with class centres ``mu_c`` iid ``N(0, gamma s^2)``
across initializations and per-point noise ``eps_c(x)`` iid ``N(0, s^2)``. The
scale ``s`` drops out of every prediction, so it is set to 1 here. ``gamma`` is
the ensemble IGB strength measured by :func:`igb.metrics.gamma_from_moments`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NEUTRAL_TOL",
    "REGIMES",
    "f0_density",
    "f0_cdf",
    "sample_f0",
    "sample_f_max",
    "class_probabilities",
    "f_max_density",
    "histogram_density",
    "regime",
    "gamma_finite_sample_floor",
]

#: names of the three regimes, in increasing order of gamma
REGIMES = ("neutral", "prejudiced", "deeply_prejudiced")

#: gamma below which a measured ensemble counts as Neutral. A network that is exactly
#: neutral, measured on N evaluation points, still shows a plug-in gamma of about 1/N
#: (:func:`gamma_finite_sample_floor`): 1e-3 for N = 1000, 1e-4 for N = 10000. The
#: tolerance must sit clearly above that floor for evaluation sets in the thousands,
#: yet far below the gammas of prejudiced initializations (about 0.05 to 1, where
#: ``p(f_0)`` is visibly wider than a spike at 1/2: at gamma = 0.01 the standard
#: deviation of ``f_0`` is about 0.04, i.e. every initialization splits the data
#: within a few percent of evenly). 1e-2 satisfies both.
NEUTRAL_TOL = 1e-2

#: trapezoid grid for the infinite-data ``f_max`` integral over t ~ N(0, 1)
_T_GRID = np.linspace(-10.0, 10.0, 401)
_T_WEIGHTS = (_T_GRID[1] - _T_GRID[0]) * np.exp(-0.5 * _T_GRID**2) / np.sqrt(2.0 * np.pi)
#: window (around the largest centre) of the class-probability integral
_S_GRID = np.linspace(-10.0, 10.0, 81)
#: quadrature nodes per (initialization, class) of :func:`class_probabilities`: its cost
LAW_NODES = _S_GRID.size
#: upper bound on array elements held at once by the samplers
_CHUNK_ELEMENTS = 4_000_000


def _ndtr(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF (scipy.special, imported on first use: a job's summary needs
    only :func:`regime`, not scipy)."""
    from scipy import special

    return special.ndtr(x)


def _ndtri(p: np.ndarray) -> np.ndarray:
    """The standard normal quantile (scipy.special, imported on first use)."""
    from scipy import special

    return special.ndtri(p)


def _check_gamma(gamma: float) -> float:
    gamma = float(gamma)
    if not np.isfinite(gamma) or gamma < 0:
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma}")
    return gamma


def f0_density(f0, gamma: float) -> np.ndarray:
    """Density of the class-0 fraction ``f_0`` of a binary classifier.

    ``p(f_0) = gamma^(-1/2) * exp(-(1/gamma - 1) * Phi^{-1}(f_0)^2 / 2)`` on
    ``[0, 1]``, the law of ``f_0 = Phi(sqrt(gamma) z)``, ``z ~ N(0, 1)``
    (change of variables ``u = Phi^{-1}(f_0) ~ N(0, gamma)``, ``df_0 = phi(u) du``).

    - ``gamma = 1``: uniform; ``gamma < 1``: unimodal at 1/2; ``gamma > 1``: bimodal,
      diverging at 0 and 1.
    - At ``f_0`` exactly 0 or 1 (``Phi^{-1} = -+inf``) the limit is returned: 0 for
      ``gamma < 1``, 1 for ``gamma = 1``, ``inf`` for ``gamma > 1``. Outside
      ``[0, 1]`` the density is 0.
    - ``gamma -> 0`` is a point mass at ``f_0 = 1/2`` (Neutral), which has no density:
      ``gamma <= 0`` raises ``ValueError``. Small positive gamma gives a narrow
      Gaussian-like spike of standard deviation ``~ sqrt(gamma) / sqrt(2 pi)``.
    """
    gamma = _check_gamma(gamma)
    if gamma == 0:
        raise ValueError(
            "f0_density: at gamma = 0 f_0 is a point mass at 1/2 (Neutral), which has "
            "no density; use a small positive gamma for a narrow spike"
        )
    f0 = np.asarray(f0, dtype=np.float64)
    inside = (f0 > 0) & (f0 < 1)
    u = _ndtri(np.where(inside, f0, 0.5))
    with np.errstate(over="ignore"):
        dens = gamma**-0.5 * np.exp(-(1.0 / gamma - 1.0) * u * u / 2.0)
    end_value = 0.0 if gamma < 1 else (1.0 if gamma == 1 else np.inf)
    at_end = (f0 == 0) | (f0 == 1)
    out = np.where(inside, dens, np.where(at_end, end_value, 0.0))
    return out if out.ndim else out[()]


def f0_cdf(f0, gamma: float) -> np.ndarray:
    """CDF of ``f_0``: ``P(f_0 <= q) = Phi(Phi^{-1}(q) / sqrt(gamma))`` (step at 1/2 if gamma=0)."""
    gamma = _check_gamma(gamma)
    q = np.clip(np.asarray(f0, dtype=np.float64), 0.0, 1.0)
    if gamma == 0:
        return np.where(q >= 0.5, 1.0, 0.0)
    with np.errstate(divide="ignore"):
        return _ndtr(_ndtri(q) / np.sqrt(gamma))


def sample_f0(gamma: float, n: int, seed: int = 0) -> np.ndarray:
    """``n`` draws of ``f_0 = Phi(sqrt(gamma) z)``, ``z ~ N(0, 1)`` (infinite data)."""
    gamma = _check_gamma(gamma)
    z = np.random.default_rng(seed).standard_normal(int(n))
    return _ndtr(np.sqrt(gamma) * z)


def _f_max_given_centres(mu: np.ndarray) -> np.ndarray:
    """Infinite-data ``f_max`` for each row of centres ``mu`` (n, C), noise N(0, 1).

    ``f_c = P(argmax_k (mu_k + eps_k) = c)`` increases with ``mu_c`` (swap the noise of
    two classes), so ``f_max`` is the win probability of the class with the largest
    centre ``c*``: ``f_max = int phi(t) prod_{k != c*} Phi(mu_c* - mu_k + t) dt``. The
    integrand is smooth and Gaussian-damped, so a trapezoid rule on t in [-10, 10]
    with step 0.05 gives it to ~1e-10.
    """
    n, c = mu.shape
    out = np.empty(n)
    rows = max(1, _CHUNK_ELEMENTS // (c * _T_GRID.size))
    for start in range(0, n, rows):
        m = mu[start : start + rows]
        gap = m.max(axis=1, keepdims=True) - m  # >= 0; 0 at the winning class
        gap[np.arange(m.shape[0]), m.argmax(axis=1)] = np.inf  # Phi(inf) = 1: drop c*
        cdf = _ndtr(gap[:, :, None] + _T_GRID[None, None, :])
        out[start : start + rows] = cdf.prod(axis=1) @ _T_WEIGHTS
    return np.clip(out, 1.0 / c, 1.0)


def class_probabilities(mu: np.ndarray) -> np.ndarray:
    """``P(argmax_k (mu_k + eps_k) = c | mu)`` for each row of centres ``mu`` (n, C).

    ``p_c = int phi(s - mu_c) prod_{k != c} Phi(s - mu_k) ds``: one product over every
    class, ``P(s) = prod_k Phi(s - mu_k)``, serves every ``c`` as ``phi(s - mu_c) P(s) /
    Phi(s - mu_c)``. Below ``max(mu) - 10`` the product is below ``Phi(-10)`` and above
    ``max(mu) + 10`` every ``phi(s - mu_c)`` is below ``phi(10)``, so a trapezoid rule on
    that window (step 0.25: the integrand is smooth and Gaussian-damped) gives the
    probabilities to far better than a histogram can show; rows are renormalised to 1.
    """
    n, c = mu.shape
    out = np.empty((n, c))
    rows = max(1, _CHUNK_ELEMENTS // (c * _S_GRID.size))
    for start in range(0, n, rows):
        m = mu[start : start + rows]
        s = m.max(axis=1, keepdims=True) + _S_GRID[None, :]  # (r, S)
        diff = s[:, None, :] - m[:, :, None]  # (r, C, S)
        cdf = _ndtr(diff)
        total = cdf.prod(axis=1, keepdims=True)  # (r, 1, S)
        dens = np.exp(-0.5 * diff * diff) / np.sqrt(2.0 * np.pi)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(cdf > 0, total / cdf, 0.0)
        p = (dens * ratio).sum(axis=2)
        out[start : start + rows] = p / p.sum(axis=1, keepdims=True)
    return out


def sample_f_max(
    gamma: float,
    num_classes: int,
    n_inits: int,
    n_points: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """``n_inits`` draws of ``f_max`` in the Gaussian model with ``C = num_classes``.

    Per initialization: centres ``mu_c ~ N(0, gamma)`` iid, per-point noise
    ``eps_c ~ N(0, 1)`` iid; ``f_c`` is the fraction of points whose
    ``argmax_k (mu_k + eps_k)`` is ``c`` and ``f_max = max_c f_c``.

    - ``n_points`` an int: ``f_max`` of that many points, carrying the finite-sample noise
      of a real evaluation set. Given the centres the points are independent, so the
      class counts are ``Multinomial(n_points, p(mu))`` with ``p`` of
      :func:`class_probabilities`: drawn at once, at a cost that does not grow with
      ``n_points``.
    - ``n_points=None``: the infinite-data limit ``f_c = P(argmax = c | mu)``, computed
      by deterministic numerical integration (no inner Monte Carlo):
      ``f_max = int phi(t) prod_{k != c*} Phi(mu_c* - mu_k + t) dt`` with ``c*`` the
      class of the largest centre (trapezoid rule, vectorised over initializations).

    For ``C = 2`` and ``n_points=None`` this is ``Phi(sqrt(gamma) |z|)``, the law of
    ``max(f_0, 1 - f_0)``. Always ``f_max >= 1 / C``.
    """
    gamma = _check_gamma(gamma)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if n_points is not None and n_points < 1:
        raise ValueError(f"n_points must be a positive int or None, got {n_points}")
    rng = np.random.default_rng(seed)
    mu = np.sqrt(gamma) * rng.standard_normal((int(n_inits), num_classes))
    if n_points is None:
        return _f_max_given_centres(mu)
    counts = rng.multinomial(int(n_points), class_probabilities(mu))
    return counts.max(axis=1) / n_points


def f_max_density(
    gamma: float,
    num_classes: int,
    bins,
    n_inits: int = 20000,
    seed: int = 0,
    n_points: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted density of ``f_max``, as a histogram of :func:`sample_f_max` draws.

    ``bins``: an int (that many equal bins on ``[1/C, 1]``) or an array of bin edges
    (use the edges of the measured histogram to overlay the two). Returns
    ``(centres, density)``; the density is ``count / (n_inits * bin_width)``, i.e.
    normalised over all draws, so it is the model's density even where the edges do
    not cover ``[1/C, 1]``.
    """
    samples = sample_f_max(gamma, num_classes, n_inits, n_points=n_points, seed=seed)
    if np.ndim(bins) == 0:
        edges = np.linspace(1.0 / num_classes, 1.0, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
    return histogram_density(samples, edges)


def histogram_density(samples: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(centres, count / (len(samples) * bin_width))`` of ``samples`` on ``edges``:
    normalised over all samples, also those outside the edges."""
    counts, edges = np.histogram(samples, bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    return centres, counts / (samples.size * np.diff(edges))


def regime(gamma: float, neutral_tol: float = NEUTRAL_TOL) -> str:
    """The regime of an IGB strength: one of :data:`REGIMES`.

    ``"neutral"`` if ``gamma < neutral_tol`` (see :data:`NEUTRAL_TOL` for why not 0),
    ``"prejudiced"`` if ``neutral_tol <= gamma < 1`` (``p(f_0)`` unimodal around 1/2),
    ``"deeply_prejudiced"`` if ``gamma >= 1`` (uniform at 1, bimodal above).
    """
    g = float(gamma)
    if not g >= 0:  # also catches NaN
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if g < neutral_tol:
        return "neutral"
    return "prejudiced" if g < 1 else "deeply_prejudiced"


def regime_of_interval(lo: float, hi: float, neutral_tol: float = NEUTRAL_TOL) -> str:
    """The regime an interval ``[lo, hi]`` of gamma supports: its :func:`regime` when the
    whole interval lies in one regime, else every regime it spans joined by ``" or "``
    (``"neutral or prejudiced"`` when it straddles ``neutral_tol``). A measured gamma of
    0.0103 with the interval [0.008, 0.013] is then not called prejudiced."""
    low, high = regime(max(float(lo), 0.0), neutral_tol), regime(max(float(hi), 0.0), neutral_tol)
    return " or ".join(REGIMES[REGIMES.index(low) : REGIMES.index(high) + 1])


def gamma_finite_sample_floor(n_points: int) -> float:
    """Plug-in gamma of an exactly neutral network measured on ``N`` points: ``1 / N``.

    Derivation: neutral means every true centre is 0. The centred logit ``d_c(x)`` at
    ``N`` independent points has variance ``sigma_c^2``, so the plug-in centre
    ``mu_c = mean_x d_c(x)`` has ``E[mu_c^2] = sigma_c^2 / N`` and the population
    variance ``s2_c`` has ``E[s2_c] = sigma_c^2 (N - 1) / N``. Hence
    ``E[mean mu^2] / E[mean s2] = 1 / (N - 1) ~ 1 / N``; more generally the plug-in
    estimate of a true ``gamma`` is ``(gamma + 1/N) / (1 - 1/N) ~ gamma + 1/N``.
    """
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    return 1.0 / n_points
