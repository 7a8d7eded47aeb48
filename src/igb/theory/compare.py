"""Measured gamma beside the predicted one: which prediction, and when they agree.

One rule for every place that puts them side by side (the end-of-grid lines, the
report's table and ``gamma_compare.png``, the histograms): the prediction is the one at
the network's width where the finite-width walk gives one (``gamma_theory_finite``),
otherwise the infinite-width one (``gamma_theory``); a prediction agrees with a
measurement when it lies in the measured interval widened by :data:`ZERO`, so that a
measured 1e-14 (rounding of means that vanish exactly) agrees with a predicted 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: gammas this small are zero: the float rounding of class means that vanish exactly
ZERO = 1e-9


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def predicted(record: Mapping[str, Any]) -> tuple[float | None, str]:
    """``(gamma, "finite" | "infinite")`` of a summary.json / jobs-table row (None: none)."""
    finite = _number(record.get("gamma_theory_finite"))
    if finite is not None:
        return finite, "finite"
    return _number(record.get("gamma_theory")), "infinite"


def agrees(prediction: float | None, lo: float | None, hi: float | None) -> bool | None:
    """Whether ``prediction`` lies in ``[lo, hi]`` widened by :data:`ZERO` (None: unknown)."""
    p, a, b = _number(prediction), _number(lo), _number(hi)
    if p is None or a is None or b is None:
        return None
    return a - ZERO <= p <= b + ZERO


def ratio(measured: float | None, prediction: float | None) -> float | None:
    """measured / predicted; 1 where both are zero (at most :data:`ZERO`); None where only
    the prediction is."""
    m, p = _number(measured), _number(prediction)
    if m is None or p is None:
        return None
    if abs(p) <= ZERO:
        return 1.0 if abs(m) <= ZERO else None
    return m / p


def headline(summary: Mapping[str, Any]) -> str:
    """``predicted 0.41 (width 100), inside the interval`` for the end-of-grid line, or ''."""
    value, which = predicted(summary)
    if value is None:
        return ""
    width = (summary.get("choices") or {}).get("width")
    where = f"width {width}" if which == "finite" and width else "infinite width"
    lo, hi = (summary.get("gamma_ci") or [None, None])[:2]
    ok = agrees(value, lo, hi)
    verdict = "" if ok is None else (", inside the interval" if ok else ", outside the interval")
    return f"predicted {value:.4g} ({where}){verdict}"
