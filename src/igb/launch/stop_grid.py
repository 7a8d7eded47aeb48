"""Stopping a parallel grid: SIGTERM or SIGINT to the launcher stops its workers as well.

With ``hydra/launcher=local`` (joblib's loky processes) the jobs run in worker processes
that outlive a launcher killed by a signal: they kept training, unwatched, and the grid's
report was never printed. :func:`install_stop_handlers` gives the launcher a handler that
sends SIGTERM to every process it started (each running job then checkpoints and records
``interrupted``, through its own :class:`igb.jobs.signals.SignalGuard`), waits until no
job of the grid is running, ends the idle workers (SIGTERM, then SIGKILL after a grace
period), prints the grid's report and exits with ``128 + signal``. Linux only (the
process tree is read from ``/proc``); elsewhere nothing is installed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from igb.jobs.runner import STOP_MARKER

log = logging.getLogger(__name__)

#: how long running jobs get to checkpoint and record ``interrupted``
JOBS_GRACE_S = 120.0
#: how long idle workers get to exit after SIGTERM before SIGKILL
WORKERS_GRACE_S = 5.0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the process tree (children first)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we read
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop(0)
        out.append(child)
        todo.extend(children.get(child, []))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; its parent has not reaped it yet


def _send(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait(done: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def install_stop_handlers(
    sweep_dir: Path, jobs_running: Callable[[], bool], report: Callable[[], None]
) -> None:
    """SIGTERM and SIGINT stop the workers, then ``report()``, then exit ``128 + signal``.

    First the sweep folder is marked stopping (:data:`igb.jobs.runner.STOP_MARKER`), so a
    job a worker takes up after its running one was interrupted does not start.

    ``jobs_running()`` says whether a job of the grid still runs (its status and lock);
    ``report()`` prints the grid's report (it may raise SystemExit with a message).
    """
    if not Path("/proc/self/stat").exists():
        return
    me = os.getpid()

    def stop(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        log.warning("%s: stopping the grid's workers (running jobs checkpoint first)", name)
        try:
            (sweep_dir / STOP_MARKER).touch()
        except OSError as exc:
            log.error("could not mark %s as stopping: %s", sweep_dir, exc)
        _send(descendants(me), signal.SIGTERM)
        if not _wait(lambda: not jobs_running(), JOBS_GRACE_S):
            log.error("jobs still running after %.0f s: ending them", JOBS_GRACE_S)
        _send(descendants(me), signal.SIGTERM)  # the idle workers and their helpers
        if not _wait(lambda: not any(map(_alive, descendants(me))), WORKERS_GRACE_S):
            _send([p for p in descendants(me) if _alive(p)], signal.SIGKILL)
        code = 128 + signum
        try:
            report()
        except SystemExit as exc:  # the report's closing line (failed / interrupted jobs)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - stopping must not fail on the report
            log.error("the grid's report failed: %s", exc)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
