"""What a tracking logger (W&B, MLflow) records about a job besides its metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrackedRun:
    """A job's run as the trackers name and find it, built by the job's launch.

    ``name``, ``job_type``, ``tags``, ``group``: the job's identity
    (:func:`igb.jobs.identity.run_identity`), the same on W&B and MLflow. ``config``: the
    resolved configuration as a plain dict, recorded as the run's config (W&B) or
    parameters (MLflow). ``run_id``: the id status.json kept, so that a resumed job
    continues its run (None: a new run).
    """

    name: str | None = None
    job_type: str | None = None
    tags: Sequence[str] | None = None
    group: str | None = None
    config: Mapping[str, Any] | None = None
    run_id: str | None = None
