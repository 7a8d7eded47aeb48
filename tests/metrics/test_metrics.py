"""igb.metrics: exact values, batch/merge invariance, and recovery of a known gamma."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from igb.metrics import (
    BIAS_KEYS,
    TARGET_KEYS,
    BiasStatistics,
    bias_degree,
    centred_logit_moments,
    gamma_bootstrap_ci,
    gamma_from_moments,
    logit_statistics,
    normalized_entropy,
    ranked_fractions,
)

F64 = torch.float64


def t64(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# ---------------------------------------------------------------- exact values


def test_prediction_fractions_hand_made_with_argmax_tie():
    logits = torch.tensor(
        [[1.0, 1.0, 0.0], [0.0, 2.0, 1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]]
    )  # row 0 ties between class 0 and 1: the first max (0) wins
    f = logit_statistics(logits)["f"]
    assert f.dtype == F64
    torch.testing.assert_close(f, t64([0.5, 0.25, 0.25]), rtol=0, atol=0)
    # a stack of two "initializations": one row of fractions each
    stacked = logit_statistics(torch.stack([logits, logits.flip(-1)]))["f"]
    torch.testing.assert_close(stacked[0], f, rtol=0, atol=0)
    torch.testing.assert_close(stacked[1], t64([0.25, 0.5, 0.25]), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("f", "values", "order"),
    [
        ([0.25, 0.5, 0.25], [0.5, 0.25, 0.25], [1, 0, 2]),
        ([0.2, 0.2, 0.2, 0.4, 0.0], [0.4, 0.2, 0.2, 0.2, 0.0], [3, 0, 1, 2, 4]),
        ([0.1, 0.3, 0.3, 0.3], [0.3, 0.3, 0.3, 0.1], [1, 2, 3, 0]),
    ],
)
def test_ranked_fractions_ties_lower_class_first(f, values, order):
    got_values, got_order = ranked_fractions(t64(f))
    assert got_order.tolist() == order
    torch.testing.assert_close(got_values, t64(values), rtol=0, atol=0)


def test_normalized_entropy_values():
    assert normalized_entropy(torch.full((7,), 1 / 7, dtype=F64)).item() == pytest.approx(1.0)
    assert normalized_entropy(t64([0.0, 1.0, 0.0])).item() == 0.0
    # 0 log 0 = 0: two equal classes out of four -> log 2 / log 4 = 1/2
    assert normalized_entropy(t64([0.5, 0.0, 0.5, 0.0])).item() == pytest.approx(0.5)
    # (1/2 log 2 + 2 * 1/4 log 4) / log 3 = 1.5 log 2 / log 3
    expected = 1.5 * math.log(2) / math.log(3)
    assert normalized_entropy(t64([0.5, 0.25, 0.25])).item() == pytest.approx(expected)
    assert normalized_entropy(t64([1.0])).item() == 0.0  # one class: nothing to spread over


def test_centred_moments_and_bias_degree_hand_computed():
    # d_0 = (o_0 - o_1) / 2 = [0.5, 1.5, 0], d_1 = -d_0
    logits = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 2.0]])
    mu, s2 = centred_logit_moments(logits)
    torch.testing.assert_close(mu, t64([2 / 3, -2 / 3]))
    torch.testing.assert_close(s2, t64([7 / 18, 7 / 18]))  # population variance
    assert bias_degree(mu, s2).item() == pytest.approx((4 / 9) / (7 / 18))  # = 8/7


def test_centred_moments_three_classes_and_stacked():
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0], [6.0, 0.0, 3.0]])
    # d = o - row mean: rows [2,-1,-1], [-1,2,-1], [0,0,0], [3,-3,0]
    mu, s2 = centred_logit_moments(logits)
    torch.testing.assert_close(mu, t64([1.0, -0.5, -0.5]))
    torch.testing.assert_close(s2, t64([14 / 4 - 1.0, 14 / 4 - 0.25, 2 / 4 - 0.25]))
    g = bias_degree(mu, s2).item()
    assert g == pytest.approx((1.0 + 0.25 + 0.25) / 3 / ((2.5 + 3.25 + 0.25) / 3))
    # a stack (inits, N, C) gives one row of moments per slice
    stacked = torch.stack([logits, 2 * logits])
    mu2, s22 = centred_logit_moments(stacked)
    torch.testing.assert_close(mu2, torch.stack([mu, 2 * mu]))
    torch.testing.assert_close(s22, torch.stack([s2, 4 * s2]))
    torch.testing.assert_close(bias_degree(mu2, s22), t64([g, g]))


def test_per_class_accuracy_and_loss_hand_computed():
    logits = torch.tensor(
        [[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 3.0], [0.5, 0.2, 0.1], [0.0, 4.0, 1.0]]
    )
    targets = torch.tensor([0, 0, 1, 1, 1])  # class 2 has no sample
    metric = BiasStatistics(3)
    metric.update(logits, targets)
    stats = metric.compute()
    got = stats["acc_class"]
    assert got.dtype == F64
    assert got[0].item() == 1 / 2  # argmax [0, 1] vs [0, 0]
    assert got[1].item() == 1 / 3  # argmax [2, 0, 1] vs [1, 1, 1]: exact, not float32
    assert math.isnan(got[2].item())
    assert stats["acc"].item() == 2 / 5

    per_sample = F.cross_entropy(logits.double(), targets, reduction="none")
    got = stats["loss_class"]
    assert got[0].item() == pytest.approx(per_sample[:2].mean().item(), rel=1e-12)
    assert got[1].item() == pytest.approx(per_sample[2:].mean().item(), rel=1e-12)
    assert math.isnan(got[2].item())
    # and by hand for one sample: CE of [2, 1, 0] with target 0
    by_hand = -(2.0 - math.log(math.exp(2) + math.exp(1) + 1))
    assert per_sample[0].item() == pytest.approx(by_hand)


def test_bad_inputs_raise():
    m = BiasStatistics(3)
    with pytest.raises(ValueError, match="shape"):
        m.update(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="targets"):
        m.update(torch.zeros(4, 3), torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="targets"):
        m.update(torch.zeros(4, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="num_classes"):
        BiasStatistics(0)
    with pytest.raises(ValueError):
        gamma_from_moments(torch.zeros(3), torch.ones(3))


# ------------------------------------------------- batch-wise / merged == one-shot


def one_shot(logits: torch.Tensor, targets: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Every BiasStatistics output, computed independently in numpy from the definitions."""
    o = logits.double().numpy()
    n, c = o.shape
    f = np.bincount(o.argmax(1), minlength=c) / n
    order = np.argsort(-f, kind="stable")
    d = o - o.mean(1, keepdims=True)
    mu, s2 = d.mean(0), d.var(0)
    nonzero = f[f > 0]
    out = {
        "f": f,
        "f_max": f.max(),
        "f_ranked": f[order],
        "rank_order": order,
        "entropy": -(nonzero * np.log(nonzero)).sum() / np.log(c),
        "mu": mu,
        "s2": s2,
        "bias_degree": (mu**2).mean() / s2.mean(),
    }
    if targets is not None:
        t = targets.numpy()
        log_p = o - o.max(1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
        ce = -log_p[np.arange(n), t]
        correct = (o.argmax(1) == t).astype(float)
        out["acc"] = correct.mean()
        out["loss"] = ce.mean()
        with np.errstate(invalid="ignore"):
            out["acc_class"] = np.array(
                [correct[t == k].mean() if (t == k).any() else np.nan for k in range(c)]
            )
            out["loss_class"] = np.array(
                [ce[t == k].mean() if (t == k).any() else np.nan for k in range(c)]
            )
    return {k: torch.as_tensor(v) for k, v in out.items()}


def assert_stats_equal(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        torch.testing.assert_close(
            got[key].cpu(), value, rtol=1e-10, atol=1e-12, equal_nan=True, msg=key
        )


def make_data(n=103, c=7, seed=0, offset=1.5):
    gen = torch.Generator().manual_seed(seed)
    bias = offset * torch.randn(c, generator=gen)  # a prejudiced "network"
    logits = bias + torch.randn(n, c, generator=gen)
    targets = torch.randint(0, c - 1, (n,), generator=gen)  # class c-1 never a target
    return logits, targets


SPLITS = [1, 50, 0, 31, 21]  # uneven, with an empty batch


@pytest.mark.parametrize("with_targets", [True, False])
def test_bias_statistics_batchwise_equals_one_shot(with_targets):
    logits, targets = make_data()
    m = BiasStatistics(7)
    for lb, tb in zip(logits.split(SPLITS), targets.split(SPLITS)):
        m.update(lb, tb if with_targets else None)
    got = m.compute()
    want = one_shot(logits, targets if with_targets else None)
    expected_keys = set(BIAS_KEYS) | (set(TARGET_KEYS) if with_targets else set())
    assert set(got) == expected_keys
    assert_stats_equal(got, want)
    if with_targets:
        assert math.isnan(got["acc_class"][-1]) and math.isnan(got["loss_class"][-1])
    assert got["rank_order"].dtype == torch.int64


def test_bias_statistics_reset_between_uses():
    a, ta = make_data(seed=1)
    b, _ = make_data(n=40, seed=2, offset=0.0)
    m = BiasStatistics(7)
    m.update(a, ta)
    first = m.compute()
    m.reset()
    m.update(b)  # second use: other data, no targets
    second = m.compute()
    assert_stats_equal(second, one_shot(b, None))  # nothing of `a` survives
    assert not torch.allclose(first["f"], second["f"])


def test_merge_state_across_ranks_equals_one_shot():
    logits, targets = make_data(n=90, seed=4)
    r0, r1 = BiasStatistics(7), BiasStatistics(7)
    r0.update(logits[:37], targets[:37])
    r1.update(logits[37:], targets[37:])
    # what a DDP all-reduce does with dist_reduce_fx="sum": add every state (of the
    # metric and of its per-class accuracy)
    summed = BiasStatistics(7)
    for metric, m0, m1 in (
        (summed, r0, r1),
        (summed.class_accuracy, r0.class_accuracy, r1.class_accuracy),
    ):
        for name in metric._defaults:
            setattr(metric, name, getattr(m0, name) + getattr(m1, name))
        metric._update_count = m0._update_count + m1._update_count  # as after a real sync
    r0.merge_state(r1)
    want = one_shot(logits, targets)
    assert_stats_equal(r0.compute(), want)
    assert_stats_equal(summed.compute(), want)


def test_states_are_sum_reduced():
    m = BiasStatistics(3)
    for metric, dtype in ((m, F64), (m.class_accuracy, torch.int64)):
        for name, fx in metric._reductions.items():
            assert fx is not None and fx.__name__.endswith("sum"), name
            assert getattr(metric, name).dtype == dtype, name


# ------------------------------------------------------ gamma on synthetic logits


def synthetic_moments(gamma, n_inits, num_classes, n_points, scale, seed):
    """Per-init moments, from the real metric, of logits = centre + noise."""
    gen = torch.Generator().manual_seed(seed)
    centres = math.sqrt(gamma) * scale * torch.randn(n_inits, 1, num_classes, generator=gen)
    logits = centres + scale * torch.randn(n_inits, n_points, num_classes, generator=gen)
    metric = BiasStatistics(num_classes)
    mus, s2s = [], []
    for init_logits in logits:
        metric.reset()
        for batch in init_logits.split(n_points // 3 + 1):
            metric.update(batch)
        stats = metric.compute()
        mus.append(stats["mu"])
        s2s.append(stats["s2"])
    return torch.stack(mus), torch.stack(s2s)


@pytest.mark.parametrize(
    ("gamma", "num_classes"), [(0.0, 10), (0.1, 10), (0.5, 5), (1.0, 10), (4.0, 5)]
)
def test_gamma_recovers_known_value(gamma, num_classes):
    n_inits, n = 2000, 1000
    mu, s2 = synthetic_moments(gamma, n_inits, num_classes, n, scale=0.7, seed=int(10 * gamma))
    est = gamma_from_moments(mu, s2)
    lo, hi = gamma_bootstrap_ci(mu, s2, n_boot=1000, seed=1)
    assert lo <= est <= hi
    if gamma == 0:
        # an exactly neutral ensemble: only the finite-sample floor 1/(N-1) ~ 1/N
        assert est < 2 / n
        assert est == pytest.approx(1 / (n - 1), rel=0.1)
        assert lo <= 1 / (n - 1) <= hi
        return
    # plug-in bias (gamma + 1/N) / (1 - 1/N); noise: mean of a chi^2 with
    # ~n_inits (C - 1) dof, relative sd sqrt(2 / (n_inits (C - 1))) <= 1.6%
    expected = (gamma + 1 / n) / (1 - 1 / n)
    assert est == pytest.approx(expected, rel=0.08)
    assert lo <= gamma <= hi
    assert hi - lo < 0.15 * gamma  # the interval is informative, not trivially wide


def test_gamma_bootstrap_ci_properties():
    mu, s2 = synthetic_moments(0.5, 300, 4, 50, scale=1.0, seed=7)
    ci = gamma_bootstrap_ci(mu, s2, n_boot=500, seed=3)
    assert ci == gamma_bootstrap_ci(mu.numpy(), s2.numpy(), n_boot=500, seed=3)  # seeded
    narrow = gamma_bootstrap_ci(mu, s2, n_boot=500, level=0.5, seed=3)
    assert ci[0] < narrow[0] < narrow[1] < ci[1]
    # the percentile interval of the ratio of means, recomputed with an explicit loop
    a, b = (mu.numpy() ** 2).mean(1), s2.numpy().mean(1)
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 300, size=(500, 300))
    ref = np.quantile([a[i].mean() / b[i].mean() for i in idx], [0.025, 0.975])
    np.testing.assert_allclose(ci, ref, rtol=1e-12)
    # gamma_from_moments is the ratio of ensemble means (not the mean of per-init g)
    assert gamma_from_moments(mu, s2) == pytest.approx(a.mean() / b.mean(), rel=1e-12)
