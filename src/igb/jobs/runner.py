"""The life of one job in its folder, the same for training and ensembles.

:func:`run_job` is what ``igb.training.run.run`` and the ensemble's ``run`` call. In order:

1. **One writer.** The launcher takes an exclusive lock on ``<folder>/.igb.lock``
   (:class:`igb.jobs.lock.JobLock`). A second launcher on the same folder writes nothing
   and reports, in one line, the process that holds it.
2. **Identity.** A folder that already holds a job is only continued, skipped or reported
   when its configuration is the launched one (:func:`igb.jobs.identity.config_differences`;
   with ``config.yaml`` or ``status.json`` gone, the configuration hash that the remaining
   records hold: ``status.json``, ``last.ckpt``, an ensemble's ``partial/`` blocks) and
   its records are sound and agree (:func:`igb.jobs.integrity.folder_damage`).
   Otherwise the launch is refused in one line naming the keys or the file;
   ``restart=true`` moves the folder's results aside (under ``.discarded/<time>/``) and
   starts the job over (once: see :func:`restarting`).
3. **Skip.** ``skip_finished`` (default): a ``finished`` or ``diverged`` job is not run
   again; in a sweep, a job whose configuration another job of the sweep runs already
   (keys that cannot change it differ) is recorded as its twin and not run
   (:mod:`igb.jobs.twins`).
4. **Run.** ``status.json`` says ``running`` (pid, host), the body runs under a
   :class:`igb.jobs.signals.SignalGuard`, and the outcome is recorded: ``finished``,
   ``diverged``, ``failed`` (an exception; in a multirun the grid goes on) or
   ``interrupted`` (a stop signal). A ``running`` status left by a process that is gone
   (its lock is free) is recorded as an interrupted attempt when the job starts again.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igb.errors import JobError
from igb.jobs.files import DiskFull, atomic_write_text, disk_full, is_disk_full
from igb.jobs.identity import (
    JobIdentity,
    comparable,
    describe_differences,
    differences,
    load_saved_config,
)
from igb.jobs.integrity import BLOCKS, TRACES, folder_damage, recorded_hashes
from igb.jobs.lock import SETUP_LOCK_FILE, JobBusy, JobLock, NoLocking, try_lock, unlock
from igb.jobs.records import RECORDS_KEY, fingerprints
from igb.jobs.signals import JobInterrupted, SignalGuard, signal_name
from igb.jobs.status import (
    DIVERGED,
    INTERRUPTED,
    LAUNCH_ENV,
    RUNNING,
    TERMINAL,
    JobFolder,
    cluster_env,
    is_rank_zero,
)
from igb.jobs.threads import size_threads
from igb.jobs.twins import record_twin, twin_of

log = logging.getLogger(__name__)

#: the config key that discards a folder's results and starts its job over
RESTART_KEY = "restart"
#: where ``restart=true`` moves what a folder held (hidden: not a job, not a result)
DISCARDED = ".discarded"
#: what a job folder holds besides Hydra's ``.hydra/`` and the log: moved by a restart
#: (named here, not imported: jobs may not import data or ensemble; split_shares.json is
#: igb.data.shares.SHARES_FILE, profile.* igb.ensemble.run.PROFILE_FILES)
RESULTS = (
    "status.json", "config.yaml", "hparams.yaml", "metrics.csv", "split_shares.json",
    "checkpoints", "wandb", "inits.csv", "summary.json", "histogram.png", "profile.csv",
    "profile.png", BLOCKS,
)  # fmt: skip


@dataclass(frozen=True)
class JobSpec:
    """What the runner knows of a job, built once at the launch from its composed
    configuration (:func:`igb.launch.job_spec.job_spec`)."""

    #: the job's folder (``paths.output_dir``)
    output_dir: Path
    #: what decides whether the folder holds this job
    identity: JobIdentity
    #: the resolved configuration, as the folder's ``config.yaml`` records it
    config_yaml: str
    #: a job of a multirun: a failure is recorded and the grid goes on
    multirun: bool = False


@dataclass
class Outcome:
    """What a job's body returns: its final status, objective and facts for status.json."""

    status: str
    objective: float
    info: dict[str, Any] = field(default_factory=dict)


def refuse(message: str) -> None:
    """The launch must not touch this folder: one line on stderr, exit code 2 (bad input)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


#: the way out of a folder that cannot be continued, said with every refusal
WAY_OUT = (
    "add restart=true to move its results aside (under .discarded/) and start the job over, "
    "or launch into a new folder (hydra.run.dir / hydra.sweep.dir)"
)


def identity_problem(launched: JobIdentity, folder: Path, records: bool = True) -> str | None:
    """One line when ``folder`` holds a job of another configuration than ``launched``, or one
    whose configuration cannot be established (a damaged or missing record: it is never
    resumed, skipped or relabelled silently, :mod:`igb.jobs.integrity`). ``records``:
    check the records too (a grid's pre-flight leaves that to each job, which reports a
    damaged folder and lets the grid go on)."""
    if launched.restart:
        return None
    damage = folder_damage(folder) if records else None
    if damage:
        return f"{damage}: the job in {folder} is not resumed, skipped or relabelled; {WAY_OUT}"
    saved = load_saved_config(folder)
    status = JobFolder(folder).status
    if saved is None or status is None:
        # config.yaml or status.json gone: the hashes the remaining records hold (status.json,
        # last.ckpt, an ensemble's partial/ blocks) must be the launched configuration's
        config_file = str(folder / "config.yaml")
        launched_hash = launched.config_hash
        other = {
            f: h
            for f, h in recorded_hashes(folder).items()
            if h != launched_hash and f != config_file
        }
        if other:
            file, recorded = next(iter(other.items()))
            missing = "config.yaml" if saved is None else "status.json"
            return (
                f"{folder}/{missing} is missing and {file} records another configuration "
                f"(hash {recorded}, launched {launched_hash}); {WAY_OUT}"
            )
        if saved is None:
            return None
    # config.yaml present (with or without status.json): it must be the launched configuration
    old = comparable(saved)
    keys = differences(old, launched.comparable, extending=not launched.skip_finished)
    if not keys:
        return None
    described = describe_differences(old, launched.comparable, keys)
    return (
        f"{folder} holds a job of another configuration "
        f"({status or 'no status.json'}; {described}); {WAY_OUT}"
    )


def restarting(launched: JobIdentity, folder: Path) -> bool:
    """``restart=true`` starts over once: a folder whose job was itself started by
    ``restart=true`` with this configuration is continued (a requeue, or the same command
    run again after an interruption, must not throw the restarted run away)."""
    if not launched.restart:
        return False
    saved = load_saved_config(folder)
    return not (
        saved and saved.get(RESTART_KEY) and not differences(comparable(saved), launched.comparable)
    )


def discard_results(folder: Path) -> Path | None:
    """Move the folder's results under ``.discarded/<time>/`` (nothing is deleted)."""
    present = [folder / name for name in RESULTS if (folder / name).exists()]
    if not present:
        return None
    target = folder / DISCARDED / time.strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True, exist_ok=True)
    for path in present:
        shutil.move(str(path), target / path.name)
    log.warning("restart=true: moved the previous results of %s to %s", folder, target)
    return target


#: in a sweep folder: its launcher is stopping (a stop signal); jobs not yet started stay so
STOP_MARKER = ".igb.stopping"


def grid_stopping(sweep_dir: Path) -> bool:
    """Whether the launcher of the grid in ``sweep_dir`` is stopping (see
    :mod:`igb.launch.stop_grid`): a job handed out now must not start."""
    return (Path(sweep_dir) / STOP_MARKER).exists()


def run_job(
    spec: JobSpec,
    body: Callable[[JobFolder, SignalGuard], Outcome],
    *,
    what: str = "run",
    prepare: Callable[[JobFolder], None] | None = None,
    shared: bool = False,
) -> float:
    """Run ``body`` as the job of ``spec`` in its folder (see the module docstring).

    ``prepare(job)`` runs once the folder is claimed and before it is marked running
    (e.g. checks that a checkpoint to resume from is readable); an exception there is
    recorded as ``failed``. Returns the objective (NaN when the job did not finish, in a
    multirun; outside one the error propagates).

    ``shared``: several processes run this job together (the shards of an ensemble). Each
    holds the folder's lock shared (``job.lock``: the body takes it alone to finish the
    job, once the others are gone), checks, claims or skips the folder in turn with the
    others (a second lock), and joins a job already running rather than starting another
    attempt.
    """
    out, identity, multirun = Path(spec.output_dir), spec.identity, spec.multirun
    job = JobFolder(out)
    if not is_rank_zero():  # DDP ranks > 0: rank 0 owns the folder
        return _run_body(spec, job, body)
    if multirun and grid_stopping(out.parent):
        log.warning("%s: not started, the grid is stopping (a stop signal)", out)
        return math.nan
    try:
        lock = JobLock(out).acquire(shared=shared)
    except (JobBusy, NoLocking) as exc:
        if multirun:  # the grid goes on; the report at its end names this job
            log.error("%s", exc)
            return math.nan
        raise SystemExit(f"error: {exc}") from None
    setup = try_lock(out / SETUP_LOCK_FILE, wait=True) if shared else None
    try:
        restart = restarting(identity, out)
        if identity.restart and not restart and folder_damage(out):
            restart = True  # a restarted job continued, but damaged since: over again
        problem = None if restart else identity_problem(identity, out)
        if problem:
            if multirun:  # nothing is written; the grid's report lists the folder
                log.error("%s", problem)
                return math.nan
            refuse(problem)
        if not (out / "config.yaml").exists() and any((out / t).exists() for t in TRACES):
            log.warning("%s/config.yaml was missing; written again from the launched "
                        "configuration, whose hash the folder's records hold", out)  # fmt: skip
            atomic_write_text(out / "config.yaml", spec.config_yaml)
        twin = twin_of(out, identity.config_hash) if multirun else None
        if twin is not None:
            atomic_write_text(out / "config.yaml", spec.config_yaml)
            log.info("%s repeats the job of %s (keys that cannot change it differ); not run "
                     "again", out, twin)  # fmt: skip
            return record_twin(out, twin, identity.config_hash)
        if restart:
            discard_results(out)
        elif identity.skip_finished and job.is_done():
            log.info("%s already holds a %s %s; skipping (skip_finished=false runs it again, "
                     "resuming from its last checkpoint)", out, job.status, what)  # fmt: skip
            return float(job.read().get("objective", math.nan))
        atomic_write_text(out / "config.yaml", spec.config_yaml)
        joining = shared and job.status == RUNNING and not restarting(identity, out)
        if not joining:
            launch = {"launch": os.environ[LAUNCH_ENV]} if LAUNCH_ENV in os.environ else {}
            job.start(pid=os.getpid(), config_hash=identity.config_hash, **launch, **cluster_env())
            if prepare is not None:
                try:
                    prepare(job)
                except Exception as exc:
                    return _failed(job, exc, multirun)
        if setup is not None:  # the next shard may check and join now
            unlock(setup)
            setup = None
            job.lock = lock
        return _run_body(spec, job, body)
    finally:
        if setup is not None:
            unlock(setup)
        lock.release()


def _run_body(
    spec: JobSpec, job: JobFolder, body: Callable[[JobFolder, SignalGuard], Outcome]
) -> float:
    size_threads()  # the CPUs allocated to this job, not the machine's
    with SignalGuard() as guard:
        try:
            outcome = body(job, guard)
        except JobInterrupted as exc:
            if not is_rank_zero():
                # rank 0 records and reports; a non-zero exit here would make Lightning's
                # process observer kill rank 0 before it has
                raise SystemExit(0) from exc
            log.warning("%s; the job's folder resumes it when the same command runs again", exc)
            job.mark(
                INTERRUPTED,
                signal=signal_name(exc.signum),
                global_step=exc.step,
                checkpoint=exc.checkpoint,
                error=str(exc),
            )
            guard.chain(exc.signum)  # under submitit: requeue this job, exit
            raise
        except Exception as exc:
            return _failed(job, exc, spec.multirun)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit
            job.mark_failed(exc, status=INTERRUPTED)
            if guard.received is not None:  # e.g. Lightning's own SIGTERMException
                raise JobInterrupted(guard.received) from exc
            raise
    if outcome.status in TERMINAL and is_rank_zero():  # what the job wrote, as it wrote it
        outcome.info[RECORDS_KEY] = fingerprints(job.path, spec.identity.config_hash)
    if outcome.status != RUNNING:  # RUNNING: a shard whose job other processes finish
        job.mark(outcome.status, objective=outcome.objective, **outcome.info)
    return outcome.objective


def _failed(job: JobFolder, exc: Exception, multirun: bool) -> float:
    if is_disk_full(exc) and not isinstance(exc, DiskFull):  # e.g. torch's writer's own error
        exc = disk_full(job.path, exc)
    try:
        job.mark_failed(exc)
    except DiskFull as full:  # not even the status fits: say so; a relaunch resumes it
        log.error("%s; %s still says running (a relaunch reads it as interrupted)", full,
                  job.status_file)  # fmt: skip
    if not multirun:
        if isinstance(exc, JobError):  # its message is the one line to show
            raise SystemExit(f"error: {exc}") from None
        raise exc
    # one failing job must not take the grid down: record it, let the others run;
    # igb.launch.hydra_callbacks.FailureReport lists failures and exits non-zero at the end
    if isinstance(exc, JobError):  # one line says it all (damaged data, a checkpoint)
        log.error("job failed: %s; recorded in %s", exc, job.status_file)
    else:
        log.exception("job failed; recorded in %s", job.status_file)
    return math.nan


def exit_if_diverged(spec: JobSpec) -> None:
    """A single run whose job diverged exits 1, as a grid holding it does (its report
    counts it failed): the run did not produce what was asked for. One line on stderr."""
    job = JobFolder(spec.output_dir)
    if spec.multirun or not is_rank_zero() or job.status != DIVERGED:
        return
    error = job.read().get("error", "loss not finite")
    fix = (
        "the model is to fix"
        if "at initialization" in error
        else "a smaller optimizer.lr is the usual fix"
    )
    raise SystemExit(
        f"error: the run diverged ({error}); recorded in {job.status_file}; {fix} "
        "(skip_finished=false runs it again)"
    )
