"""Figures drawn in a process started early, so that matplotlib's import and the drawing
overlap with the job's own work (torch's import, composing, evaluating) instead of adding to
its wall time.

A small ensemble job spends about as long importing matplotlib and drawing
``histogram.png`` as it spends evaluating. :func:`start` launches
``python -m igb.ensemble.figure_worker``, which imports the plotting modules and waits;
:func:`call` hands it one drawing (a function named ``module:name`` and its arguments,
pickled) and waits for the answer. The drawing is the same function either way: where the
worker cannot be started, has died, or is switched off (``IGB_FIGURE_WORKER=0``), it runs in
this process. The worker ignores Ctrl-C (the job decides what an interrupt means) and ends
when its input closes, i.e. when the job's process ends, however it ends.
"""

from __future__ import annotations

import atexit
import importlib
import os
import pickle
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

#: what the worker imports while it waits for its first drawing
PRELOAD = ("matplotlib.pyplot", "scipy.special", "igb.ensemble.plot")
#: ``0`` draws every figure in the job's own process
SWITCH_ENV = "IGB_FIGURE_WORKER"
_HEADER = struct.Struct("!Q")

_worker: subprocess.Popen[bytes] | None = None


def running_elsewhere(loadavg: str | None = None) -> int | None:
    """How many threads besides this one are runnable right now (``/proc/loadavg``'s fourth
    field counts this process too); None where the kernel does not say. Right now, not the
    one-minute average: that one still counts the processes that have just ended."""
    try:
        text = loadavg if loadavg is not None else Path("/proc/loadavg").read_text()
        return int(text.split()[3].split("/")[0]) - 1
    except (OSError, IndexError, ValueError):
        return None


def spare_cpu() -> bool:
    """Whether a CPU is free for the worker: the job was given two or more
    (:func:`igb.jobs.threads.allocated_cpus`) and no more than one less than that are busy
    (:func:`running_elsewhere`; the one-minute load where that is unknown). Without one,
    the worker's start-up would only add to the job's CPU time."""
    from igb.jobs.threads import allocated_cpus

    cpus = os.cpu_count() or 1
    busy = running_elsewhere()
    if busy is None:
        busy = int(os.getloadavg()[0]) if hasattr(os, "getloadavg") else cpus
    return allocated_cpus() >= 2 and busy <= cpus - 2


def start(require_spare_cpu: bool = True) -> None:
    """Start the worker unless one is running, the switch is off or (``require_spare_cpu``)
    no CPU is spare; never fails: a worker that cannot start means drawing here."""
    global _worker
    if running():
        return
    if os.environ.get(SWITCH_ENV, "1") == "0" or (require_spare_cpu and not spare_cpu()):
        return
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    try:
        _worker = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
    except OSError:
        _worker = None
        return
    atexit.register(stop, wait=False)


def process() -> subprocess.Popen[bytes] | None:
    """The worker's process (None before :func:`start` or after :func:`stop`)."""
    return _worker


def running() -> bool:
    """Whether a worker is up (a drawing would go to it)."""
    return _usable() is not None


def _usable() -> subprocess.Popen[bytes] | None:
    """The worker, if it is up and takes requests."""
    worker = _worker
    if worker is None or worker.poll() is not None or worker.stdin is None:
        return None
    return worker


def stop(wait: bool = True) -> None:
    """Close the worker's input (it exits) and, with ``wait``, reap it (at this process's
    exit nothing waits: the worker ends by itself)."""
    global _worker
    worker, _worker = _worker, None
    if worker is None:
        return
    for stream in (worker.stdin, worker.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    if not wait:
        return
    try:
        worker.wait(timeout=5)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def prepare(target: str, *args: Any, **kwargs: Any) -> None:
    """Have the worker call ``module:function(*args, **kwargs)`` now, for what it keeps
    (work a later drawing needs, done while this process goes on); nothing without a
    worker, and no answer: a later :func:`call` does whatever is still missing."""
    worker = _usable()
    if worker is None:
        return
    try:
        send(worker.stdin, (target, args, kwargs, False))
    except (OSError, pickle.PickleError):
        stop()


def call(target: str, *args: Any, **kwargs: Any) -> Any:
    """``module:function(*args, **kwargs)``, in the worker when one runs, else here."""
    worker = _usable()
    if worker is None:
        return run(target, args, kwargs)
    try:
        send(worker.stdin, (target, args, kwargs, True))
        ok, value = receive(worker.stdout)  # type: ignore[arg-type]
    except (OSError, EOFError, pickle.PickleError):
        stop()  # it died or cannot take these arguments: draw here (the same function)
        return run(target, args, kwargs)
    if ok:
        return value
    raise value


def run(target: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call the function ``module:name``."""
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)(*args, **kwargs)


def send(stream: IO[bytes], value: Any) -> None:
    """One length-prefixed pickle."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """One length-prefixed pickle; EOFError when the stream ended."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure to round-trip
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def main() -> None:
    """The worker: preload, then draw what arrives until the input closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a drawing prints goes to stderr, not into the replies
    requests = sys.stdin.buffer
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the drawing reports it, as it would in the job's process
    while True:
        try:
            target, args, kwargs, answer = receive(requests)
        except EOFError:
            return
        try:
            reply = (True, run(target, args, kwargs))
        except Exception as exc:  # noqa: BLE001 - raised again in the job's process
            reply = (False, _portable(exc))
        if not answer:
            continue  # prepared ahead: the drawing that needs it reports any error
        try:
            send(replies, reply)
        except OSError:
            return  # the job is gone


if __name__ == "__main__":
    main()
