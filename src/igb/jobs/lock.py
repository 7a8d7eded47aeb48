"""One writer per job folder: an exclusive ``flock`` on ``<folder>/.igb.lock``.

The lock lives exactly as long as the process that holds it (the kernel drops it when
the process dies, however it dies), so a ``running`` status whose lock is free was left
by a process that is gone. The lock file holds the holder's pid, host and start time,
for the one line a second launcher reports. On NFS, Linux implements ``flock`` with
byte-range locks that all clients see.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from igb.errors import JobError

LOCK_FILE = ".igb.lock"
#: taken in turn by the shards of one ensemble to check and claim its folder
SETUP_LOCK_FILE = ".igb.setup.lock"
#: what ``flock`` answers on a file system that does not implement it
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class NoLocking(JobError):
    """The job folder's file system has no ``flock``: one writer cannot be guaranteed."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(
            f"cannot lock {path}: its file system does not support flock ({exc.strerror}); "
            "Lustre and GPFS need the 'flock' mount option: put the outputs (hydra.run.dir, "
            "hydra.sweep.dir or $IGB_ROOT) on a file system that has it"
        )


def _flock(fd: int, path: Path, operation: int) -> None:
    """``fcntl.flock``, with a file system that has none said in one line."""
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        raise
    except OSError as exc:
        if exc.errno in _NO_FLOCK:
            raise NoLocking(path, exc) from None
        raise


class JobBusy(RuntimeError):
    """Another live process holds the job folder."""

    def __init__(self, folder: Path, holder: dict[str, Any]) -> None:
        self.folder = folder
        self.holder = holder
        since = holder.get("started")
        when = time.strftime(" since %H:%M:%S", time.localtime(since)) if since else ""
        super().__init__(
            f"{folder} is being run by pid {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')}{when}; not touching it (wait for that process to "
            "end, or launch into another folder)"
        )


class JobLock:
    """``JobLock(folder).acquire()`` or :class:`JobBusy`; ``release()`` when done."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, attempts: int = 3, shared: bool = False) -> JobLock:
        """Take the lock (retrying briefly: a reader may test it for a moment). ``shared``:
        held together with the other shards of one ensemble, waiting while a process holds
        it alone (a shard finishing the job); a launch that needs the folder alone is then
        refused (:class:`JobBusy`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(attempts):
            try:
                _flock(fd, self.path, fcntl.LOCK_SH if shared else fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except NoLocking:
                os.close(fd)
                raise
            except BlockingIOError:
                if attempt + 1 == attempts:
                    holder = _read_holder(self.path)
                    os.close(fd)
                    raise JobBusy(self.folder, holder) from None
                time.sleep(0.05)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def try_exclusive(self) -> bool:
        """Let go of a shared hold and take the lock alone if no other process holds it;
        False (and nothing held) when one does. Of shards that try at once, one succeeds:
        each lets go before it tries, so the last to try finds the others gone."""
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        for attempt in range(3):  # a reader (live_holder) may test it for a moment
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                time.sleep(0.05 * (attempt + 1))
        return False

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def live_holder(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The pid/host of the live process running ``folder`` (None: nobody holds it).

    Tests the lock without waiting; a folder without a lock file has no holder."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        _flock(fd, path, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path) or {"pid": "?", "host": "?"}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def try_lock(path: Path, wait: bool = False) -> int | None:
    """An exclusive lock on ``path`` (created): its file descriptor, to give to
    :func:`unlock`, or None when another process holds it (``wait``: until it lets go). The
    kernel drops it when the process dies, so a killed process's block is free for the next
    one."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
