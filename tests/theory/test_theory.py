"""igb.theory.gaussian: the law of f_0, the Gaussian model of f_max, regimes and the 1/N floor."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from igb.metrics import centred_logit_moments, gamma_from_moments
from igb.theory.gaussian import (
    NEUTRAL_TOL,
    REGIMES,
    f0_cdf,
    f0_density,
    f_max_density,
    gamma_finite_sample_floor,
    regime,
    regime_of_interval,
    sample_f0,
    sample_f_max,
)

# ------------------------------------------------------------------ law of f_0


@pytest.mark.parametrize("gamma", [0.05, 0.5, 1.0, 3.0])
def test_f0_density_integrates_to_one(gamma):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        total, _ = integrate.quad(f0_density, 0, 1, args=(gamma,), points=[0.5], limit=500)
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("gamma", [0.05, 0.5, 3.0])
def test_f0_cdf_is_the_integral_of_the_density(gamma):
    for q in (0.1, 0.3, 0.5, 0.8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            mass, _ = integrate.quad(f0_density, 0, q, args=(gamma,), limit=500)
        assert mass == pytest.approx(float(f0_cdf(q, gamma)), abs=1e-6)


def test_f0_density_shape_in_each_regime():
    grid = np.linspace(0, 1, 101)  # includes the end points 0 and 1
    np.testing.assert_allclose(f0_density(grid, 1.0), 1.0, rtol=1e-12)  # uniform
    ends, middle = np.array([0.01, 0.99]), 0.5
    deep = f0_density(ends, 3.0)
    assert np.all(deep > 3 * f0_density(middle, 3.0))  # bimodal: piles up at 0 and 1
    assert np.all(np.isinf(f0_density(np.array([0.0, 1.0]), 3.0)))
    prej = f0_density(ends, 0.5)
    assert np.all(prej < f0_density(middle, 0.5) / 3)  # unimodal around 1/2
    assert np.all(f0_density(np.array([0.0, 1.0]), 0.5) == 0)
    # the value at 1/2 is gamma^(-1/2), for any gamma
    for gamma in (0.01, 0.5, 2.0):
        assert f0_density(0.5, gamma) == pytest.approx(gamma**-0.5)
    # symmetric about 1/2, zero outside [0, 1]
    np.testing.assert_allclose(f0_density(grid, 0.3), f0_density(1 - grid, 0.3), rtol=1e-9)
    assert np.all(f0_density(np.array([-0.1, 1.1]), 0.5) == 0)


def test_f0_density_rejects_gamma_zero():
    with pytest.raises(ValueError, match="point mass"):
        f0_density(0.5, 0.0)
    with pytest.raises(ValueError):
        f0_density(0.5, -1.0)
    assert np.all(sample_f0(0.0, 10) == 0.5)  # the neutral limit itself


@pytest.mark.parametrize("gamma", [0.1, 1.0, 4.0])
def test_sample_f0_matches_density_and_cdf(gamma):
    draws = sample_f0(gamma, 20000, seed=11)
    assert stats.kstest(draws, lambda q: f0_cdf(q, gamma)).pvalue > 0.01
    # the binned Monte-Carlo density follows f0_density (away from divergent ends)
    edges = np.linspace(0.05, 0.95, 19)
    hist, _ = np.histogram(draws, bins=edges)
    mc = hist / (draws.size * np.diff(edges))
    exact = np.array(
        [integrate.quad(f0_density, a, b, args=(gamma,))[0] for a, b in zip(edges[:-1], edges[1:])]
    ) / np.diff(edges)
    assert np.max(np.abs(mc - exact)) < 0.15 * max(1.0, exact.max())


# -------------------------------------------------------------- law of f_max


@pytest.mark.parametrize("gamma", [0.2, 1.0, 3.0])
def test_sample_f_max_binary_is_max_of_f0_and_one_minus_f0(gamma):
    fmax = sample_f_max(gamma, 2, 4000, seed=1)
    f0 = sample_f0(gamma, 4000, seed=2)
    assert stats.ks_2samp(fmax, np.maximum(f0, 1 - f0)).pvalue > 0.01
    # and against the exact CDF P(max(f0, 1-f0) <= q) = 2 F(q) - 1 on [1/2, 1]
    assert stats.kstest(fmax, lambda q: 2 * f0_cdf(q, gamma) - 1).pvalue > 0.01


def test_infinite_data_integral_matches_many_points():
    # same seed -> same centres; 2e5 points per init approximate N -> infinity
    for gamma in (0.3, 2.0):
        exact = sample_f_max(gamma, 10, 6, n_points=None, seed=5)
        mc = sample_f_max(gamma, 10, 6, n_points=200_000, seed=5)
        sd = np.sqrt(exact * (1 - exact) / 200_000)
        assert np.all(np.abs(mc - exact) < 5 * sd + 1e-9)


@pytest.mark.parametrize("num_classes", [2, 3, 10, 100])
def test_f_max_at_least_one_over_c(num_classes):
    for gamma in (0.0, 0.05, 1.0, 9.0):
        for n_points in (None, 37):
            fmax = sample_f_max(gamma, num_classes, 300, n_points=n_points, seed=3)
            assert np.all(fmax >= 1 / num_classes - 1e-12)
            assert np.all(fmax <= 1.0 + 1e-12)
    # neutral with infinite data: every class gets exactly 1/C
    np.testing.assert_allclose(sample_f_max(0.0, num_classes, 50), 1 / num_classes, rtol=1e-9)


def test_f_max_grows_with_gamma_and_finite_points_add_noise():
    means = [sample_f_max(g, 10, 2000, seed=4).mean() for g in (0.05, 0.5, 2.0, 8.0)]
    assert all(a < b for a, b in zip(means, means[1:]))
    assert means[-1] > 0.7  # deeply prejudiced: most points go to one class
    # at gamma = 0, finite evaluation sets still show f_max > 1/C (multinomial noise)
    finite = sample_f_max(0.0, 10, 500, n_points=100, seed=4)
    assert finite.mean() > 0.1 + 0.02


def test_f_max_density_matches_binary_closed_form():
    centres, dens = f_max_density(0.5, 2, bins=20, n_inits=40000, seed=6)
    width = centres[1] - centres[0]
    assert centres[0] == pytest.approx(0.5 + width / 2)
    assert np.sum(dens * width) == pytest.approx(1.0)
    # max(f0, 1-f0) has density 2 p(f0) on [1/2, 1]: compare bin averages
    edges = np.append(centres - width / 2, 1.0)
    exact = 2 * np.diff(f0_cdf(edges, 0.5)) / width
    sd = np.sqrt(exact / (40000 * width))  # Poisson noise of each bin's density
    assert np.max(np.abs(dens - exact) / sd) < 4.5
    assert np.max(np.abs(dens - 2 * f0_density(centres, 0.5))) < 0.25
    # explicit edges: normalised over all draws, so a half range holds about half the mass
    c2, d2 = f_max_density(1.0, 2, bins=np.linspace(0.5, 0.75, 6), n_inits=20000, seed=6)
    assert np.sum(d2 * 0.05) == pytest.approx(0.5, abs=0.03)  # uniform f0 at gamma = 1
    np.testing.assert_allclose(c2, np.linspace(0.525, 0.725, 5))


# ------------------------------------------------------- regimes and the floor


def test_regime_thresholds():
    assert REGIMES == ("neutral", "prejudiced", "deeply_prejudiced")
    assert regime(0.0) == "neutral"
    assert regime(NEUTRAL_TOL * 0.99) == "neutral"
    assert regime(NEUTRAL_TOL) == "prejudiced"
    assert regime(0.5) == "prejudiced"
    assert regime(0.999) == "prejudiced"
    assert regime(1.0) == "deeply_prejudiced"
    assert regime(25.0) == "deeply_prejudiced"
    assert regime(0.02, neutral_tol=0.05) == "neutral"
    with pytest.raises(ValueError):
        regime(math.nan)
    with pytest.raises(ValueError):
        regime(-0.1)


def test_neutral_tol_sits_between_the_floor_and_prejudiced_values():
    for n_points in (1000, 5000, 10000):
        assert regime(gamma_finite_sample_floor(n_points)) == "neutral"
        assert NEUTRAL_TOL >= 10 * gamma_finite_sample_floor(n_points)
    assert regime(0.05) == "prejudiced"


def test_finite_sample_floor_matches_a_neutral_ensemble():
    assert gamma_finite_sample_floor(1000) == pytest.approx(1e-3)
    n_points = 200
    gen = torch.Generator().manual_seed(0)
    logits = 3.0 * torch.randn(800, n_points, 6, generator=gen)  # no class centres at all
    mu, s2 = centred_logit_moments(logits)
    gamma_hat = gamma_from_moments(mu, s2)
    assert gamma_hat == pytest.approx(gamma_finite_sample_floor(n_points), rel=0.08)
    with pytest.raises(ValueError):
        gamma_finite_sample_floor(0)


def test_regime_of_an_interval_names_every_regime_it_spans():
    assert regime_of_interval(0.0, NEUTRAL_TOL * 0.99) == "neutral"
    assert regime_of_interval(0.008, 0.013) == "neutral or prejudiced"  # straddles 0.01
    assert regime_of_interval(NEUTRAL_TOL, 0.5) == "prejudiced"
    assert regime_of_interval(0.5, 2.0) == "prejudiced or deeply_prejudiced"
    assert regime_of_interval(1e-4, 3.0) == "neutral or prejudiced or deeply_prejudiced"
    assert regime_of_interval(-1e-6, 1e-3) == "neutral"  # a bootstrap bound just below 0
    assert regime_of_interval(0.02, 0.04, neutral_tol=0.05) == "neutral"
