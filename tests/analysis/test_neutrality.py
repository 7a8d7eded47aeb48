"""Time to neutrality against the split's own class shares (1/C for runs without them),
on hand-made series: an unbalanced split's perfect classifier is neutral."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from igb.data.shares import shares_record
from multirun_analysis.results import (
    SPLIT_SHARES,
    UNIFORM,
    split_shares,
    time_to_neutrality,
    train_results,
)


def _series(fractions: list[list[float]], steps: list[int] | None = None) -> pd.DataFrame:
    """Logged rows of ``igb/val/f/{c}`` and ``igb/val/f_max``, one per step."""
    f = np.asarray(fractions, float)
    steps = steps or list(range(0, 10 * len(f), 10))
    data = {"step": steps, "igb/val/f_max": f.max(axis=1)}
    data.update({f"igb/val/f/{c}": f[:, c] for c in range(f.shape[1])})
    return pd.DataFrame(data)


#: an unbalanced 4-class val split: 12, 6, 3, 3 of 24 points
COUNTS = [12, 6, 3, 3]
SHARES = [0.5, 0.25, 0.125, 0.125]


def test_a_perfect_classifier_is_neutral_against_the_shares_not_against_1_over_c() -> None:
    perfect = _series([SHARES] * 3)  # predicts every point's own class: f = shares
    assert time_to_neutrality(perfect, 4, "val", 0.1, SHARES) == (0.0, SPLIT_SHARES)
    t, ref = time_to_neutrality(perfect, 4, "val", 0.1)  # f_max 0.5 > 1/4 + 0.1
    assert math.isnan(t) and ref == UNIFORM


def test_a_rare_class_over_predicted_is_not_neutral() -> None:
    # f_max 0.45 is under the largest share + tol (0.6), but class 1 is predicted 0.2
    # above its share of 0.25: prejudiced towards it
    f = [0.3, 0.45, 0.125, 0.125]
    t, ref = time_to_neutrality(_series([f, f]), 4, "val", 0.1, SHARES)
    assert math.isnan(t) and ref == SPLIT_SHARES
    # within 0.1 of every share from step 20 on; the swing at step 10 does not count
    rows = [[0.9, 0.05, 0.03, 0.02], SHARES, [0.3, 0.45, 0.125, 0.125], [0.55, 0.3, 0.1, 0.05]]
    rows += [SHARES]
    assert time_to_neutrality(_series(rows), 4, "val", 0.1, SHARES) == (30.0, SPLIT_SHARES)


def test_balanced_shares_agree_with_1_over_c() -> None:
    rng = np.random.default_rng(0)
    f = rng.dirichlet(np.full(5, 3.0), size=40)
    f[25:] = rng.dirichlet(np.full(5, 200.0), size=15)  # settles near 1/5
    s = _series(f.tolist())
    with_shares = time_to_neutrality(s, 5, "val", 0.1, [0.2] * 5)
    without = time_to_neutrality(s, 5, "val", 0.1)
    assert with_shares[0] == without[0] and with_shares[1] == SPLIT_SHARES
    assert not math.isnan(with_shares[0])


def test_shares_record_read_back_and_used_by_the_results() -> None:
    record = shares_record({"train": [5, 5, 5, 5], "val": COUNTS, "test": [0, 0, 0, 0]})
    assert record["splits"]["val"] == {"size": 24, "counts": COUNTS, "shares": SHARES}
    assert record["splits"]["test"]["shares"] is None  # an empty split: nothing to compare
    shares = split_shares(record)
    assert shares == {"train": [0.25] * 4, "val": SHARES}
    assert split_shares({}) == {} and split_shares(None) == {}

    out = train_results(_series([SHARES] * 3), 4, 0.1, shares)
    assert out["val_time_to_neutral"] == 0.0 and out["val_neutral_reference"] == SPLIT_SHARES
    old = train_results(_series([SHARES] * 3), 4, 0.1)  # a run that recorded no shares
    assert math.isnan(old["val_time_to_neutral"]) and old["val_neutral_reference"] == UNIFORM
    # shares for another number of classes than the run has: not used
    wrong = train_results(_series([SHARES] * 3), 4, 0.1, {"val": [0.5, 0.5]})
    assert wrong["val_neutral_reference"] == UNIFORM


def test_without_every_class_fraction_the_1_over_c_rule_is_used() -> None:
    s = _series([[0.25] * 4] * 2).drop(columns=["igb/val/f/3"])
    assert time_to_neutrality(s, 4, "val", 0.1, SHARES) == (0.0, UNIFORM)
