"""The jobs the pre-flight checks for a sweeper it cannot expand (Optuna, Ax, Nevergrad...).

Such a sweeper picks its jobs while it runs, from a search space (``hydra.sweeper.params``
and the command line's sweep overrides: ``choice``, ``range``, ``interval``, each maybe
under ``tag(log, ...)`` or ``int(...)``). The pre-flight cannot know those jobs, but every
one of them lies in the space: :func:`probe_jobs` gives the first job (each parameter at
its first value) and, one parameter at a time, that job with the parameter at each bound
of its range (or each of its choices). A bad bound or choice is reported before the
sweeper starts; a value inside an interval is checked by the job itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    Glob,
    IntervalSweep,
    Override,
    RangeSweep,
)

#: the ``_target_`` of Hydra's basic sweeper, the one the pre-flight expands job by job
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _structured(key: str, spec: Mapping[str, Any]) -> list[str]:
    """Points of a parameter given as a distribution mapping (the Optuna sweeper's other
    form: ``{type: float, low: 0.001, high: 1.0, log: true}`` or ``{choices: [...]}``)."""
    if "choices" in spec:
        return [f"{key}={c}" for c in spec["choices"]]
    return [f"{key}={spec[b]}" for b in ("low", "high") if b in spec]


def _points(override: Override) -> list[str]:
    """The override at each value the pre-flight checks: every choice, a range's first and
    last value, an interval's two ends; a plain override as it is; none for a glob (its
    options depend on the config tree and are each checked as an option of their group)."""
    key = override.get_key_element()
    value = override.value()
    if isinstance(value, ChoiceSweep):
        return [f"{key}={v}" for v in override.sweep_string_iterator()]
    if isinstance(value, RangeSweep):
        values = list(override.sweep_string_iterator())
        return [f"{key}={v}" for v in dict.fromkeys(values[:1] + values[-1:])]
    if isinstance(value, IntervalSweep):
        return [f"{key}={v}" for v in dict.fromkeys((value.start, value.end))]
    if isinstance(value, Glob):
        return []
    return [override.input_line or f"{key}={override.get_value_element_as_str()}"]


def probe_jobs(params: Mapping[str, Any], overrides: Sequence[str]) -> list[list[str]]:
    """The first job of a search space and, one parameter at a time, the jobs at its bounds
    (``hydra.sweeper.params`` first, the command line winning on a key given by both, as
    Hydra's sweepers merge them). Duplicates are left out."""
    by_key: dict[str, list[str]] = {}
    parser = OverridesParser.create()
    for key, spec in params.items():
        if isinstance(spec, Mapping):
            by_key[str(key)] = _structured(str(key), spec)
        else:
            by_key[str(key)] = _points(parser.parse_override(f"{key}={spec}"))
    for override in parser.parse_overrides([str(o) for o in overrides]):
        by_key.pop(override.get_key_element(), None)
        by_key[override.get_key_element()] = _points(override)
    points = [p for p in by_key.values() if p]
    first = [p[0] for p in points]
    jobs = [first]
    for i, values in enumerate(points):
        for value in values[1:]:
            job = [*first[:i], value, *first[i + 1 :]]
            if job not in jobs:
                jobs.append(job)
    return jobs
