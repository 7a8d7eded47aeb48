"""Twins: jobs of one sweep whose configurations differ only in keys that cannot change them.

``norm=none,pre,post norm.kind=batch,layer`` composes two ``norm=none`` jobs that differ
only in ``norm.kind``, which a network without norms never reads: one job under two names,
with the same seeds. Their :func:`igb.jobs.identity.config_hash` is one (the unused keys
count as the values that stand for them), so the later of the two finds the earlier one's
``status.json`` in the sweep folder and is recorded as its twin, without running: the
grid's report and the analysis count the job once. A twin is found by the record the
other job writes when it starts: two twins started at the same instant by parallel
workers may both run (the same result twice, never a wrong one).
"""

from __future__ import annotations

from pathlib import Path

from igb.jobs.status import TWIN, JobFolder, job_order


def twin_of(folder: Path, config_id: str) -> Path | None:
    """The other job of ``folder``'s sweep folder that runs (or ran) the configuration whose
    hash is ``config_id``; None when there is none or ``folder`` holds a result already."""
    own = JobFolder(folder)
    if own.is_done() or not folder.parent.is_dir():
        return None
    for sibling in sorted(folder.parent.iterdir(), key=job_order):
        if sibling == folder or not sibling.is_dir() or sibling.name.startswith("."):
            continue
        status = JobFolder(sibling).read()
        if status.get("config_hash") == config_id and status.get("status") != TWIN:
            return sibling
    return None


def record_twin(folder: Path, twin: Path, config_id: str) -> float:
    """Record ``folder`` as the twin of ``twin``; the twin's objective (NaN if none yet)."""
    JobFolder(folder).mark(TWIN, twin_of=twin.name, config_hash=config_id)
    return float(JobFolder(twin).read().get("objective", float("nan")))
