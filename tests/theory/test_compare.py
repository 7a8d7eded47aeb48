"""The measurement held against the prediction: the finite-width one where there is one,
and a measured 1e-14 against a predicted 0 as agreement (igb.theory.compare, and the
analysis's theory columns and end-of-grid lines built on it)."""

from __future__ import annotations

import pandas as pd
import pytest

from igb.jobs.summary import headline
from igb.theory import compare
from multirun_analysis.results import theory_columns


def test_finite_width_prediction_is_preferred() -> None:
    assert compare.predicted({"gamma_theory": 0.02, "gamma_theory_finite": 0.3}) == (0.3, "finite")
    assert compare.predicted({"gamma_theory": 0.02, "gamma_theory_finite": None}) == (
        0.02, "infinite")  # fmt: skip
    assert compare.predicted({"gamma_theory": None}) == (None, "infinite")


def test_zero_against_rounding_agrees() -> None:
    assert compare.agrees(0.0, 1e-15, 1e-13) is True
    assert compare.ratio(1e-14, 0.0) == 1.0
    assert compare.agrees(0.0, 1e-3, 2e-3) is False
    assert compare.ratio(0.5, 0.0) is None
    assert compare.agrees(None, 0.1, 0.2) is None


def test_theory_columns_hold_the_measurement_against_the_finite_width_value() -> None:
    jobs = pd.DataFrame({
        "gamma": [0.31, 1e-14, 0.5],
        "gamma_ci_lo": [0.25, 1e-15, 0.4],
        "gamma_ci_hi": [0.38, 1e-13, 0.6],
        "gamma_theory": [0.0173, 0.0, None],
        "gamma_theory_finite": [0.33, None, None],
    })  # fmt: skip
    out = theory_columns(jobs)
    assert out["gamma_predicted"].tolist()[:2] == [0.33, 0.0]
    assert out["gamma_predicted_at"].tolist()[:2] == ["finite", "infinite"]
    assert out["theory_in_ci"].tolist() == [True, True, None]
    assert out["gamma_ratio"].iloc[0] == pytest.approx(0.31 / 0.33)
    assert out["gamma_ratio"].iloc[1] == 1.0


def test_end_of_grid_line_names_the_prediction() -> None:
    summary = {"gamma": 0.31, "gamma_ci": [0.25, 0.38], "gamma_theory": 0.0173,
               "gamma_theory_finite": 0.33, "choices": {"width": 100}}  # fmt: skip
    line = compare.headline(summary)
    assert line == "predicted 0.33 (width 100), inside the interval"
    status = {"status": "finished", "gamma": 0.31, "regime": "prejudiced", "theory": line}
    assert headline(status) == "gamma 0.3100 (prejudiced)  " + line
