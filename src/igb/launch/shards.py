"""``python ensemble.py -m ensemble.shards=K ...``: one ensemble spread over K processes.

Hydra's launcher runs one process per job. A sharded ensemble is one job run by K
processes: the launch becomes K jobs, ``ensemble.shard=0..K-1``, that all write into one
job folder (``hydra.sweep.subdir``, the same for every shard), where a lock per block of
seeds keeps any block from being evaluated twice and the last shard writes the results
(:mod:`igb.ensemble.run`). The launcher decides where the processes run: in parallel on
this machine (``hydra/launcher=local``) or as one SLURM job array (``hydra/launcher=slurm``).
Other keys must not be swept in the same launch: the K jobs are one configuration.
Without ``-m``, the same command run K times with one ``hydra.run.dir`` does the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from igb.errors import ConfigError

KEY = "ensemble.shards"
INDEX = "ensemble.shard"
#: the job folder of every shard, under the sweep folder
SUBDIR = "0"
_MULTIRUN = ("-m", "--multirun")
_SWEEPS = ("range(", "choice(", "glob(", "interval(")


def _top_level_comma(value: str) -> bool:
    depth = 0
    for char in value:
        depth += char in "[{(" and 1 or (-1 if char in "]})" else 0)
        if char == "," and depth == 0:
            return True
    return False


def _shards(argv: Sequence[str]) -> int:
    values = [a.split("=", 1)[1] for a in argv if a.startswith(f"{KEY}=")]
    if not values:
        return 1
    try:
        return int(values[-1])
    except ValueError:
        return 1  # the pre-flight names the key and the allowed values


def shard_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with the K jobs of ``ensemble.shards=K`` in a multirun (unchanged otherwise);
    a sweep of another key in the same launch is refused (:class:`ConfigError`)."""
    argv = list(argv)
    k = _shards(argv)
    if k <= 1 or not any(a in _MULTIRUN for a in argv):
        return argv
    swept = [
        a for a in argv
        if "=" in a and not a.startswith(("-", "hydra.", f"{INDEX}="))
        and (_top_level_comma(a.split("=", 1)[1]) or a.split("=", 1)[1].startswith(_SWEEPS))
    ]  # fmt: skip
    if swept:
        raise ConfigError(
            KEY,
            f"{KEY}={k} spreads one ensemble over {k} processes; sweep no other key in the "
            f"same launch (found {swept[0]}): launch each configuration on its own",
        )
    extra = [] if any(a.startswith(f"{INDEX}=") for a in argv) else [f"{INDEX}=range({k})"]
    if not any(a.startswith("hydra.sweep.subdir=") for a in argv):
        extra.append(f"hydra.sweep.subdir={SUBDIR}")
    return argv + extra


def one_job_per_shard_set(jobs: Sequence[Sequence[str]]) -> list[list[str]]:
    """A grid's jobs with the shards of one ensemble counted once (they share its folder)."""
    out: list[list[str]] = []
    for job in jobs:
        kept = [o for o in job if not str(o).startswith(f"{INDEX}=")]
        if kept not in out:
            out.append(kept)
    return out
