"""What an evaluation of a block of seeds works with besides its plan and inputs.

:class:`igb.ensemble.plan.EvaluationPlan` says what is computed and how; a :class:`Runtime`
holds the objects that carry it out and hear of it: how a model becomes initialization
``seed`` (:mod:`igb.nn.reinit`), where each seed's statistics go, who is told of progress
and the optional per-layer profiler. None of them changes a row of the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from igb.ensemble.profile import Profiler
from igb.ensemble.progress import ProgressFn
from igb.ensemble.statistics import StatisticsStore
from igb.nn.reinit import Reinit


def silent(n: int) -> None:
    """A progress callback that reports nothing."""


@dataclass(frozen=True)
class Runtime:
    """``reinit(model, seed)`` sets a replica's parameters; row ``k`` of ``store`` receives
    the statistics of ``seeds[k]``; ``progress(n)`` hears of finished initializations;
    ``profiler`` (:mod:`.profile`) records every layer's features in the same passes."""

    reinit: Reinit
    store: StatisticsStore
    progress: ProgressFn = silent
    profiler: Profiler | None = None
