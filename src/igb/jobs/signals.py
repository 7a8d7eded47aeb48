"""Stop signals of a job: SIGTERM (SLURM preemption or ``scancel``), SIGUSR1 and SIGUSR2
(``sbatch --signal=USR1@90``, submitit's pre-timeout signal).

:class:`SignalGuard` owns these signals for the whole life of one job. Outside training a
signal stops the job at once (:class:`JobInterrupted`). While training runs under
:meth:`SignalGuard.deferred`, the handler only records the signal; the training loop
(:class:`igb.jobs.checkpoint.ResumeCallback`) then saves ``checkpoints/last.ckpt`` at its next safe
point and raises :class:`JobInterrupted`. Once the job folder records the interruption,
:meth:`SignalGuard.chain` hands the signal to whoever handled it before the job started:
under submitit that is its requeue handler (SIGUSR2: ``scontrol requeue`` + exit), so the
requeued job reruns in the same folder and resumes.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

#: the signals a job checkpoints on and stops for
STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")


def signal_name(signum: int | None) -> str:
    if signum is None:
        return "none"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


class JobInterrupted(SystemExit):
    """The job stopped because of a signal (after saving a checkpoint when it trained).

    A ``SystemExit`` with the shell's code for death by that signal (128 + signum), so an
    uncaught one ends the process quietly with that code.
    """

    def __init__(self, signum: int, step: int | None = None, checkpoint: str | None = None):
        super().__init__(128 + int(signum))
        self.signum = int(signum)
        self.step = step
        self.checkpoint = checkpoint

    def __str__(self) -> str:
        where = f" at step {self.step}" if self.step is not None else ""
        saved = f", checkpoint {self.checkpoint}" if self.checkpoint else ", no checkpoint saved"
        return f"interrupted by {signal_name(self.signum)}{where}{saved}"


class SignalGuard:
    """Context manager: install handlers for ``signals`` (main thread only), restore on exit."""

    def __init__(self, signals: Iterable[str | int] = STOP_SIGNALS) -> None:
        self.signals = [
            s if isinstance(s, int) else getattr(signal, s)
            for s in signals
            if isinstance(s, int) or hasattr(signal, s)
        ]
        #: the first stop signal received (None: none yet)
        self.received: int | None = None
        self._deferring = 0
        self._previous: dict[int, Any] = {}
        self._installed = False

    # -- installation ------------------------------------------------------------------------
    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            log.debug("not in the main thread: stop signals keep their handlers")
            return self
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._installed:
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._installed = False

    def reinstall(self) -> None:
        """Take the signals back (Lightning replaces the SIGTERM handler when a fit starts)."""
        if self._installed and threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                if signal.getsignal(signum) is not self._handle:
                    signal.signal(signum, self._handle)

    # -- handling -----------------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # already stopping: let that finish
            log.warning("received %s while stopping; ignored", signal_name(signum))
            return
        self.received = signum
        log.warning(
            "received %s: %s",
            signal_name(signum),
            "checkpointing at the next safe point of training, then stopping"
            if self._deferring
            else "stopping",
        )
        if not self._deferring:
            raise JobInterrupted(signum)

    @contextmanager
    def deferred(self) -> Iterator[SignalGuard]:
        """While inside, a signal is only recorded (the training loop acts on it)."""
        self._deferring += 1
        try:
            yield self
        finally:
            self._deferring -= 1

    def chain(self, signum: int) -> None:
        """Call the handler that was installed before the guard (e.g. submitit's requeue).

        It may requeue and exit (``SystemExit``) or raise; when there is none, or it
        returns, the caller re-raises its :class:`JobInterrupted`.
        """
        previous = self._previous.get(signum)
        if callable(previous):
            log.info("handing %s on to %s", signal_name(signum), _describe(previous))
            previous(signum, None)


def _describe(handler: Any) -> str:
    owner = getattr(handler, "__self__", None)
    name = getattr(handler, "__qualname__", repr(handler))
    return f"{type(owner).__module__}.{name}" if owner is not None else name
