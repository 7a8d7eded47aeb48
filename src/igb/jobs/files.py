"""The one way a job writes a file that others read: atomically, and saying when a disk is full.

A reader (a relaunch, ``multirun_analysis``, a person) must never see half a
``status.json``, ``last.ckpt``, ``inits.csv`` or ``summary.json``: each is written to a
temporary file in the same folder, then renamed over the old one (``os.replace`` is
atomic within a file system). When the write fails, the temporary file is removed and the
old file is left as it was; a full disk (``ENOSPC``, ``EDQUOT``) becomes a
:class:`DiskFull` whose message is one line naming the disk condition and the file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from igb.errors import JobError

#: errno values that mean "no room on this file system" (full disk, quota exceeded)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(JobError):
    """A write failed for lack of space; the message names the file and the way out."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a full-disk error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFull):
            return True
        if isinstance(current, OSError) and current.errno in NO_SPACE:
            return True
        if "No space left on device" in str(current):  # torch's zip writer says only this
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full(path: str | os.PathLike[str], exc: BaseException | None = None) -> DiskFull:
    """The one line said when ``path`` could not be written for lack of space."""
    reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else "disk full"
    return DiskFull(
        f"no space left to write {path} ({reason}); free space on that file system and "
        "run the same command again to continue from the last checkpoint"
    )


def temporary_path(path: Path) -> Path:
    """``.<name>.tmp<pid><suffix>``: hidden, per process, same folder (same file system)."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[Path], None], sync: bool = False
) -> None:
    """Call ``write(tmp)``, then rename ``tmp`` over ``path``; on any failure remove ``tmp``
    and leave ``path`` as it was. Raises :class:`DiskFull` when the disk is full. ``sync``:
    the file and the rename reach the disk before this returns (what a node crash must not
    take back: a job's status)."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        if sync:
            _fsync(tmp)
        os.replace(tmp, path)
        if sync:
            with contextlib.suppress(OSError):  # a folder cannot be opened everywhere
                _fsync(path.parent)
    except Exception as exc:
        if is_disk_full(exc) and not isinstance(exc, DiskFull):
            raise disk_full(path, exc) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str, sync: bool = False) -> None:
    """:func:`atomic_write` of a text file."""
    atomic_write(path, lambda tmp: tmp.write_text(text), sync=sync)


def atomic_write_json(path: str | os.PathLike[str], data: Any, sync: bool = False) -> None:
    """:func:`atomic_write` of ``data`` as indented JSON (``str`` of what JSON cannot hold)."""
    atomic_write_text(path, json.dumps(data, indent=2, default=str), sync=sync)
