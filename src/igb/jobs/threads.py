"""Size torch's CPU threads to the job's allocation, as a cluster user expects.

torch starts as many intra-op threads as the machine has cores, whatever the job was given.
Under SLURM a task may hold one CPU of a node (``SLURM_CPUS_PER_TASK``) while its CPU
affinity still spans the node (no cgroup or affinity plugin): two OpenMP threads then share
one CPU with other jobs and their barriers collapse. A job therefore uses the CPUs it was
allocated: ``SLURM_CPUS_PER_TASK`` where SLURM set it, within the process's CPU affinity
(taskset, cpusets), else the affinity. ``OMP_NUM_THREADS``, when set (by the user or a
launcher such as joblib's), is left to decide.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping

log = logging.getLogger(__name__)


def allocated_cpus(
    environ: Mapping[str, str] | None = None, affinity: Collection[int] | None = None
) -> int:
    """The CPUs this process may use (``environ``, ``affinity``: the process's own by default)."""
    environ = os.environ if environ is None else environ
    if affinity is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(
            os.cpu_count() or 1
        )  # fmt: skip
    cpus = max(1, len(affinity))
    slurm = environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        cpus = min(cpus, int(slurm))
    return cpus


def size_threads(environ: Mapping[str, str] | None = None) -> int | None:
    """Set torch's intra-op threads to :func:`allocated_cpus` (unless ``OMP_NUM_THREADS`` is
    set); returns the number set, or None when left alone."""
    environ = os.environ if environ is None else environ
    if environ.get("OMP_NUM_THREADS"):
        return None
    import torch

    cpus = allocated_cpus(environ)
    if torch.get_num_threads() != cpus:
        log.info("torch threads: %d -> %d (the CPUs allocated to this job)",
                 torch.get_num_threads(), cpus)  # fmt: skip
        torch.set_num_threads(cpus)
    return cpus
