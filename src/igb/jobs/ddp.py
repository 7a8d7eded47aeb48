"""``trainer=ddp`` on one machine under Hydra: start the other ranks as this job's twins.

Lightning's subprocess launcher starts ranks 1..N-1 by re-running the script with
``sys.argv[1:] + hydra.run.dir=<hydra.run.dir>`` (a private hook, see :mod:`igb.compat`). In a
multirun that command still holds ``-m`` and the whole grid (each rank would run every
job), and ``hydra.run.dir`` is not the job's folder (the ranks would disagree on
``checkpoints/last.ckpt`` and on where to resume). :class:`RankCommand` builds the
command from the running job instead: this job's overrides only, as a single run, in
this job's folder (``hydra.run.dir=<job folder>``, no ``.hydra`` copy, its own log file).
What it needs of the job is read from Hydra's job config by the caller, so that this
module needs no Hydra. :func:`install` puts it in Lightning's place.

:func:`job_scope` undoes what a launch leaves in the process (the process group, the
``LOCAL_RANK``/``WORLD_SIZE``/``MASTER_*`` variables that would make Lightning believe the
next job's ranks already exist), so the next job of a multirun run by the same process
starts its own ranks.

Under SLURM the ranks are SLURM tasks (``hydra.launcher.tasks_per_node`` = devices) and
Lightning starts no processes, so none of this applies there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from igb.errors import ConfigError


def _quote(value: str) -> str:
    """A Hydra override value quoted so that any path parses as one string."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _entry_command() -> list[str]:
    import __main__  # what the parent runs: re-run the same entry point

    spec = getattr(__main__, "__spec__", None)
    if spec is not None and spec.name not in ("__main__",):
        if spec.name.startswith(("joblib", "loky", "submitit", "multiprocessing")):
            raise ConfigError(
                "trainer.strategy",
                f"trainer=ddp with devices > 1 cannot start its ranks from a {spec.name} "
                "worker; run the grid with the basic launcher, or under SLURM with "
                "hydra.launcher.tasks_per_node equal to trainer.devices",
            )
        return [sys.executable, "-m", spec.name]
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not script.endswith(".py") or not os.path.isfile(script):
        raise ConfigError(
            "trainer.strategy",
            f"trainer=ddp with devices > 1 needs a script to start its ranks from, not {script!r}",
        )
    return [sys.executable, script]


@dataclass(frozen=True)
class RankCommand:
    """What starting a rank of the running Hydra job takes from the job's config."""

    #: the job's own overrides (``hydra.overrides.task``)
    overrides: tuple[str, ...]
    #: the job's folder (``hydra.runtime.output_dir``)
    output_dir: str
    #: ``hydra.job.name``
    job_name: str
    #: whether Hydra's job logging writes a file (each rank then writes its own)
    file_log: bool
    #: the folder the launch started in (Hydra's original working directory)
    cwd: str

    def command(self, local_rank: int) -> tuple[Sequence[str], str]:
        """Command and cwd that start rank ``local_rank`` of the job."""
        out = self.output_dir
        command = _entry_command() + list(self.overrides)
        command += [
            f"hydra.run.dir={_quote(out)}",
            "hydra.output_subdir=null",
            f"hydra.job.name={self.job_name}",
        ]
        if self.file_log:
            log_file = os.path.join(out, f"{self.job_name}.rank{local_rank}.log")
            command.append(f"hydra.job_logging.handlers.file.filename={_quote(log_file)}")
        return command, self.cwd


def install(rank: Callable[[], RankCommand]) -> None:
    """Make Lightning's subprocess launcher start ranks with :meth:`RankCommand.command` of
    ``rank()``, called when a rank starts (Lightning asks only inside a Hydra job)."""
    from igb.compat import set_ddp_subprocess_command

    set_ddp_subprocess_command(lambda local_rank: rank().command(local_rank))


#: variables Lightning's subprocess launcher sets in the launching process
_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def job_scope() -> Iterator[None]:
    """Leave the process as the job found it: no process group, the launch variables
    restored (a no-op for jobs that did not launch ranks)."""
    before = {k: os.environ.get(k) for k in _LAUNCH_ENV}
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
