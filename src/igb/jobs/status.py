"""The job folder's status file: what a folder holds is a result only once it says so.

``status.json`` moves through ``running`` -> ``finished`` | ``failed`` | ``diverged`` |
``interrupted``. Analysis tools and relaunches read it; a folder without
``"status": "finished"`` is never taken for a result. ``finished`` and ``diverged`` are
outcomes (a relaunch skips them); ``interrupted``, ``failed`` and a stale ``running`` are
resumed from the folder's last checkpoint. A ``running`` status found by the next start
(which holds the folder's lock, :mod:`igb.jobs.lock`) was left by a process that is gone:
that attempt is recorded as ``interrupted``. Only the global-rank-0 process of a job
writes the file (DDP ranks share the folder).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from igb.jobs.files import atomic_write_json

if TYPE_CHECKING:
    from igb.jobs.lock import JobLock

STATUS_FILE = "status.json"
RUNNING = "running"
FINISHED = "finished"
DIVERGED = "diverged"
INTERRUPTED = "interrupted"
#: a job of a sweep that repeats another job of it (:mod:`igb.jobs.twins`): not run, not counted
TWIN = "twin"
#: what :meth:`JobFolder.current` says of a ``running`` job whose lock a live process holds
ELSEWHERE = "running elsewhere"
#: what a grid's report and the analysis say of a folder whose records do not hold what its
#: status says (:func:`igb.jobs.integrity.folder_damage`); never written to status.json
DAMAGED = "damaged"
#: the environment variable naming the launch of a grid (set by its launcher, recorded by
#: every job it runs as ``launch``): the report tells the jobs it ran from those it found done
LAUNCH_ENV = "IGB_LAUNCH"
#: every status a job records
STATUSES = (RUNNING, FINISHED, "failed", DIVERGED, INTERRUPTED, TWIN)
#: outcomes of a job's configuration: a relaunch skips them (``skip_finished``)
TERMINAL = (FINISHED, DIVERGED)

#: scheduler facts recorded with every start of a job (which SLURM job ran it, how often)
_CLUSTER_ENV = {
    "slurm_job_id": "SLURM_JOB_ID",
    "slurm_array_job_id": "SLURM_ARRAY_JOB_ID",
    "slurm_array_task_id": "SLURM_ARRAY_TASK_ID",
    "slurm_restart_count": "SLURM_RESTART_COUNT",
    "slurm_node": "SLURMD_NODENAME",
}


#: fields that describe one attempt (moved under ``previous`` when the next one starts)
_ATTEMPT_KEYS = (
    "status", "error", "traceback", "signal", "global_step", "checkpoint", "updated",
    "resumed_from_step", "objective", "metrics", "launch", "chance", "igb_records",
    *_CLUSTER_ENV,
)  # fmt: skip


#: (field, accepted types, what it must be) of the fields a relaunch relies on
_FIELD_TYPES: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("status", str, "a string"),
    ("attempt", int, "an integer"),
    ("previous", dict, "an object"),
    ("config_hash", str, "a string"),
    ("pid", int, "an integer"),
    ("global_step", (int, type(None)), "an integer"),
)


def _gone(status: dict[str, Any]) -> str:
    return (
        f"process {status.get('pid', '?')} on {status.get('host', '?')} ended without "
        "recording an outcome (killed)"
    )


def cluster_env() -> dict[str, str]:
    """The SLURM ids of the running job ({} outside SLURM)."""
    return {key: os.environ[var] for key, var in _CLUSTER_ENV.items() if var in os.environ}


#: where a launcher puts the process's rank, in the order Lightning reads them: ``LOCAL_RANK``
#: before ``SLURM_PROCID``, which SLURM sets even where it does not start the processes
RANK_ENV = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
_LIGHTNING_RANK = "lightning.fabric.utilities.rank_zero"


def process_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's global rank: Lightning's own value once Lightning is loaded (a DDP
    strategy sets it after start-up), else the first of :data:`RANK_ENV` that is set, as
    Lightning reads it at import (0 outside a multi-process launch). Reading the
    environment keeps an ensemble, which never needs Lightning, from importing it."""
    if environ is None:
        loaded = sys.modules.get(_LIGHTNING_RANK)
        rank = getattr(getattr(loaded, "rank_zero_only", None), "rank", None)
        if rank is not None:
            return int(rank)
        environ = os.environ
    for key in RANK_ENV:
        value = environ.get(key)
        if value is not None:
            return int(value)
    return 0


def is_rank_zero() -> bool:
    """Whether this process is global rank 0 (True outside DDP)."""
    return process_rank() == 0


def job_order(folder: Path) -> tuple[str, float, str]:
    """Sort key of job folders: by parent folder, then in job order 0, 1, 2, ..., 10 (not
    0, 1, 10, 2), then the other names alphabetically."""
    name = folder.name
    return (str(folder.parent), int(name) if name.isdigit() else math.inf, name)


class JobFolder:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        #: the folder's lock while a job shared by several processes runs (:mod:`.runner`)
        self.lock: JobLock | None = None

    @property
    def status_file(self) -> Path:
        return self.path / STATUS_FILE

    def read(self) -> dict[str, Any]:
        """The status file's fields ({} when it is absent or damaged: see :meth:`damage`)."""
        data, _ = self._load()
        return data

    def damage(self) -> str | None:
        """Why ``status.json`` cannot be trusted (not JSON, not an object, a field of the
        wrong type); None when it is sound or absent."""
        return self._load()[1]

    def _load(self) -> tuple[dict[str, Any], str | None]:
        try:
            text = self.status_file.read_text()
        except FileNotFoundError:
            return {}, None
        except (OSError, UnicodeDecodeError) as exc:
            return {}, f"unreadable: {exc}"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return {}, f"not JSON: {exc.msg} at line {exc.lineno}"
        if not isinstance(data, dict):
            return {}, f"not a JSON object but {type(data).__name__}"
        for key, types, what in _FIELD_TYPES:
            if key in data and not isinstance(data[key], types):
                return {}, f"'{key}' is {data[key]!r}, not {what}"
        if data.get("status") not in (None, *STATUSES):
            return {}, f"'status' is {data['status']!r}, not one of {', '.join(STATUSES)}"
        if isinstance(data.get("attempt"), bool) or data.get("attempt", 1) < 1:
            return {}, f"'attempt' is {data['attempt']!r}, not a count >= 1"
        return data, None

    def current(self) -> dict[str, Any]:
        """The status file, with a ``running`` status checked against the folder's lock:
        held by a live process (:data:`ELSEWHERE`; ``holder`` names it) or left by a
        process that is gone (:data:`INTERRUPTED`)."""
        from igb.jobs.lock import live_holder

        status = self.read()
        if status.get("status") == RUNNING:
            holder = live_holder(self.path)
            if holder is not None:
                status.update(status=ELSEWHERE, holder=holder)
            else:
                status.update(status=INTERRUPTED, error=_gone(status))
        return status

    @property
    def status(self) -> str | None:
        return self.read().get("status")

    def is_finished(self) -> bool:
        return self.status == FINISHED

    def is_done(self) -> bool:
        """Finished or diverged: an outcome that a relaunch would only reproduce."""
        return self.status in TERMINAL

    def mark(self, status: str, **info: Any) -> None:
        """Atomically rewrite the status file, keeping earlier fields (start time, ids).

        A no-op outside global rank 0 (DDP ranks > 0 share the job folder)."""
        if not is_rank_zero():
            return
        data = self.read()
        data.update(info)
        data.update(status=status, updated=time.time(), host=socket.gethostname())
        data.setdefault("started", data["updated"])
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.status_file, data, sync=True)

    def start(self, **info: Any) -> dict[str, Any]:
        """Mark a new attempt ``running``; returns the previous attempt's status file.

        Counts attempts, and moves the previous attempt's outcome (status, error, step)
        under ``previous`` so that a resumed job's file describes the attempt running now.
        """
        before = self.read()
        if is_rank_zero():
            data = {k: v for k, v in before.items() if k not in _ATTEMPT_KEYS}
            if before.get("status"):
                data["previous"] = {k: before[k] for k in _ATTEMPT_KEYS if k in before}
            if before.get("status") == RUNNING:  # its process died without a word
                data["previous"].update(status=INTERRUPTED, error=_gone(before))
            data["attempt"] = int(before.get("attempt", 0)) + 1
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.status_file, data, sync=True)
            self.mark(RUNNING, **info)
        return before

    def mark_failed(self, exc: BaseException, status: str = "failed") -> None:
        self.mark(
            status,
            error=f"{type(exc).__name__}: {exc}".splitlines()[0],
            traceback="".join(traceback.format_exception(exc)),
        )
