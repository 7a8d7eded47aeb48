"""Run an entry point as on a file system without ``flock`` (Lustre or GPFS mounted
without the ``flock`` option): ``python -m helpers.no_flock <script> <overrides>``, with
tests/ on ``PYTHONPATH``.

Such a mount answers ``flock`` with ENOSYS; none can be made on this machine without root
(FUSE, Lustre), so ``fcntl.flock`` gives that answer, in the entry point's own process;
the rest (Hydra, the pre-flight, the job runner, the message and the exit) is the entry's.
"""

from __future__ import annotations

import errno
import fcntl
import os
import runpy
import sys


def no_flock(fd: int, operation: int) -> None:
    """What ``flock(2)`` answers on a file system that does not implement it."""
    raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))


if __name__ == "__main__":
    fcntl.flock = no_flock
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
