"""Log-spaced measurement times: resolve the fast transient right after initialization."""

from __future__ import annotations

import math


def log_spaced_steps(n: int, total: int) -> list[int]:
    """``min(n, total)`` distinct integer optimizer steps, log-spaced over ``[1, total]``.

    Rounded geometric spacing repeats the first steps (1, 1, 1, 2, ...); here every
    point is pushed to at least one past the previous, then pulled back so the last
    is ``total``, which keeps the count while staying as close to geometric as the
    integers allow: ``log_spaced_steps(5, 1000) == [1, 6, 32, 178, 1000]``.
    """
    if n <= 0 or total <= 0:
        return []
    n = min(n, total)
    if n == 1:
        return [total]
    steps = [round(math.exp(math.log(total) * i / (n - 1))) for i in range(n)]
    for i in range(1, n):  # strictly increasing
        steps[i] = max(steps[i], steps[i - 1] + 1)
    for i in range(n - 1, -1, -1):  # and within [1, total]
        steps[i] = min(steps[i], total - (n - 1 - i))
    return steps
