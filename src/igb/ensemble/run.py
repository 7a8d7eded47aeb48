"""One ensemble job in its job folder: the body the launch runs on the job runner
(:func:`igb.launch.ensemble_job.run`, :func:`igb.jobs.runner.run_job`).

The initializations are evaluated in blocks of consecutive seeds; each finished block is
saved atomically to ``partial/<first>-<last>.npz`` with the configuration's hash; a relaunch
whose configuration differs from the blocks' is refused by the job runner
(:mod:`igb.jobs.integrity`, the same rules as a training job's checkpoint). A stop signal
(SIGTERM, SIGINT, ...) ends the job at once with status ``interrupted`` and every completed
block on disk; the same command then evaluates only the seeds no block holds. Initialization
``i`` depends on its seed alone, so the result equals that of an uninterrupted run of the
same seeds. Once ``summary.json`` is written the blocks are removed (``inits.csv`` holds
them all).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from igb.ensemble import figure_worker
from igb.ensemble.eval_set import eval_set
from igb.ensemble.evaluate import evaluate_ensemble
from igb.ensemble.plan import EvaluationPlan
from igb.ensemble.profile import Profiler
from igb.ensemble.progress import progress_bar
from igb.ensemble.resolve import resolve_device, resolve_method
from igb.ensemble.spec import EnsembleSpec
from igb.ensemble.statistics import EnsembleResult
from igb.ensemble.summary import histogram_values, summarize, title
from igb.ensemble.wandb_log import log_to_loggers
from igb.ensemble.writers import write_inits_csv, write_summary
from igb.errors import JobError
from igb.jobs.files import atomic_write
from igb.jobs.integrity import BLOCKS, CHECKPOINT_KEY, read_block
from igb.jobs.lock import try_lock, unlock
from igb.jobs.runner import Outcome
from igb.jobs.status import FINISHED, RUNNING, JobFolder
from igb.theory import compare
from igb.theory.nngp import Prediction, WalkSettings, predict_gamma

log = logging.getLogger(__name__)

OUTPUT_FILES = ("inits.csv", "histogram.png", "summary.json")
#: written besides with ensemble.profile=true (:mod:`.profile_report`)
PROFILE_FILES = ("profile.csv", "profile.png")
#: at most this many initializations per block (what a stop signal can lose); on a GPU
#: more, so that a block still fills ``vmap`` chunks of thousands of initializations
BLOCK = {"cpu": 256, "cuda": 4096}
_ARRAYS = ("f", "f_max", "entropy", "mu", "s2", "bias_degree", "raw_mu", "raw_s2")


def run_ensemble(spec: EnsembleSpec, job: JobFolder) -> Outcome:
    """The job's body: gamma and the files of :data:`OUTPUT_FILES` (the outcome is
    ``running`` for a shard whose job another shard finishes)."""
    summary = _run(spec, job)
    if summary is None:  # a shard: its blocks are done, another process finishes the job
        return Outcome(RUNNING, math.nan)
    info = {"gamma": summary["gamma"], "regime": summary["regime"],
            "theory": compare.headline(summary)}  # fmt: skip
    return Outcome(FINISHED, float(summary["gamma"]), info)


def clear_outputs(job: JobFolder) -> None:
    """No earlier results outlive the start of an attempt."""
    for name in (*OUTPUT_FILES, *PROFILE_FILES):
        (job.path / name).unlink(missing_ok=True)


# -- blocks of initializations -------------------------------------------------------------
def block_ranges(first: int, n: int, block: int) -> list[tuple[int, int]]:
    """``[first, first + n)`` cut into ``[lo, hi)`` ranges of at most ``block`` seeds."""
    return [(lo, min(lo + block, first + n)) for lo in range(first, first + n, block)]


def _block_path(out: Path, lo: int, hi: int) -> Path:
    return out / BLOCKS / f"{lo}-{hi - 1}.npz"


def _save_block(out: Path, lo: int, hi: int, result: EnsembleResult, config_id: str) -> None:
    """The block, with the configuration's hash (``config_id``) that a resume checks it by
    (:mod:`igb.jobs.integrity`: the same rules as a training job's checkpoint)."""
    path = _block_path(out, lo, hi)
    path.parent.mkdir(exist_ok=True)
    arrays = {key: getattr(result, key) for key in _ARRAYS}
    arrays[CHECKPOINT_KEY] = np.array(config_id)

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, seeds=result.seeds, **arrays)

    atomic_write(path, write)


def _load_block(out: Path, lo: int, hi: int, config_id: str) -> dict[str, np.ndarray] | None:
    """The block of seeds ``[lo, hi)`` on disk (None: absent or unreadable); one of another
    configuration than ``config_id`` (written by a shard launched otherwise) is refused."""
    path = _block_path(out, lo, hi)
    if not path.is_file():
        return None
    try:
        data = read_block(path)
        block = {key: data[key] for key in ("seeds", *_ARRAYS)}
        recorded = str(data[CHECKPOINT_KEY][()]) if CHECKPOINT_KEY in data else config_id
    except Exception as exc:  # noqa: BLE001 - BadZipFile, EOFError, zlib.error: any damage
        log.warning("%s is unreadable (%s: %s); evaluating its initializations again",
                    path, type(exc).__name__, exc)  # fmt: skip
        return None
    if recorded != config_id:
        raise JobError(
            f"{path} records another configuration (hash {recorded}, launched {config_id}): "
            "a shard of another launch wrote it; launch into another folder or add restart=true"
        )
    if block["seeds"].tolist() != list(range(lo, hi)):
        log.warning("%s holds other seeds; evaluating its initializations again", path)
        return None
    return block


def evaluate_in_blocks(
    spec: EnsembleSpec, job: JobFolder, x: Any, num_classes: int, device: Any,
    profiler: Profiler | None = None,
) -> EnsembleResult | None:  # fmt: skip
    """All initializations of the ensemble ``spec``, reusing the blocks already on disk.

    A shard (``ensemble.shards`` > 1, several processes on one job folder) evaluates the
    blocks no other process holds (a lock per block), then finishes the job if it is the
    only one left: the blocks that are still missing then belong to no live process (a
    killed shard's), and it evaluates them. Returns None when another shard finishes (or
    has finished) the job."""
    ens = spec.ensemble
    n = ens.n_inits
    largest = BLOCK.get(torch.device(device).type, BLOCK["cpu"])
    ranges = block_ranges(ens.seed0, n, max(1, min(largest, math.ceil(n / 8))))
    config_id = spec.config_id  # what status.json records; the job runner checked the blocks
    blocks = {r: _load_block(job.path, *r, config_id) for r in ranges}
    done = sum(hi - lo for (lo, hi), b in blocks.items() if b is not None)
    if done:
        log.info("ensemble: %d of %d initializations found in %s", done, n, job.path / BLOCKS)
    state = _Blocks(plan=EvaluationPlan.from_spec(spec, num_classes, device), x=x,
                    job=job, config_id=config_id, profiler=profiler, done=done)  # fmt: skip
    with progress_bar(n, enabled=ens.progress) as advance:
        advance(done)
        state.advance = advance
        state.evaluate(blocks, shared=job.lock is not None)
        if job.lock is not None:  # a shard: finish the job only as the last one
            if not job.lock.try_exclusive():
                log.info("ensemble shard: %d inits evaluated here in %.2f s; the last shard "
                         "writes the results", state.evaluated, state.eval_time)  # fmt: skip
                return None
            if job.status == FINISHED:
                return None
            blocks = {r: _load_block(job.path, *r, config_id) for r in ranges}
            state.evaluate(blocks, shared=False)  # a killed shard's blocks
    last = state.last
    parts = [blocks[r] for r in ranges]
    # how the blocks were evaluated (this attempt's last one; every block was, when resumed)
    return EnsembleResult(
        **{k: np.concatenate([p[k] for p in parts]) for k in ("seeds", *_ARRAYS)},
        method=last.method if last else resolve_method(ens.method, torch.device(device)),
        device=last.device if last else str(device),
        workers=last.workers if last else 1,
        chunk_size=last.chunk_size if last else None,
        eval_time_s=state.eval_time,
        extra=last.extra if last else {},
        n_resumed=n - state.evaluated,  # read from blocks: earlier attempts', other shards'
    )


@dataclass
class _Blocks:
    """The evaluation of one job's blocks of seeds, by one process."""

    plan: EvaluationPlan
    x: Any
    job: JobFolder
    config_id: str
    profiler: Profiler | None = None
    advance: Any = None
    last: EnsembleResult | None = None
    eval_time: float = 0.0
    evaluated: int = 0  # initializations evaluated by this process
    done: int = 0  # initializations on disk, as far as this process knows
    cache: dict[str, Any] = field(default_factory=dict)  # vary=head features, replicas

    def evaluate(self, blocks: dict[tuple[int, int], Any], shared: bool) -> None:
        """Evaluate every block missing from ``blocks`` (filled in place); ``shared``: skip
        the blocks another process holds, and those it saved meanwhile."""
        for (lo, hi), block in blocks.items():
            if block is not None:
                continue
            fd = None
            if shared:
                lock_path = _block_path(self.job.path, lo, hi).with_suffix(".lock")
                lock_path.parent.mkdir(exist_ok=True)
                fd = try_lock(lock_path)
                if fd is None:
                    continue  # another shard evaluates it
            try:
                if shared:
                    blocks[(lo, hi)] = _load_block(self.job.path, lo, hi, self.config_id)
                    if blocks[(lo, hi)] is not None:
                        continue  # saved by another shard since this one looked
                blocks[(lo, hi)] = self._one(lo, hi)
            finally:
                if fd is not None:
                    unlock(fd)

    def _one(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        result = evaluate_ensemble(
            self.plan, self.x, range(lo, hi), progress=self.advance, cache=self.cache,
            profiler=self.profiler,
        )  # fmt: skip
        self.last = result
        self.eval_time += result.eval_time_s
        _save_block(self.job.path, lo, hi, result, self.config_id)
        self.evaluated += hi - lo
        self.done += hi - lo
        self.job.mark("running", inits_done=self.done)
        return {k: getattr(result, k) for k in ("seeds", *_ARRAYS)}


def timing(result: EnsembleResult) -> str:
    """What this run evaluated and in how long; the blocks of earlier attempts apart."""
    now = result.n_inits - result.n_resumed
    text = f"{now} inits evaluated in {result.eval_time_s:.2f} s"
    if result.n_resumed:
        text += (
            f" by this run, {result.n_resumed} read from earlier blocks ({result.n_inits} in all)"
        )
    return text


def _run(spec: EnsembleSpec, job: JobFolder) -> dict[str, Any] | None:
    t_start = time.perf_counter()
    out = job.path
    ens = spec.ensemble
    x, dm = eval_set(spec.dataset, ens.eval_split, ens.eval_samples)
    device = resolve_device(ens.device)
    log.info(
        "ensemble: %d initializations of %s on %d %s points (%s, batch statistics on batches "
        "of %d) on %s",
        ens.n_inits, spec.choices, x.shape[0], ens.eval_split, ens.norm_mode,
        ens.batch_size, device,
    )  # fmt: skip
    profiler = None
    if ens.profile:  # every layer's gamma_l, in the same forward passes
        from igb.ensemble.profile_report import make_profiler

        profiler = make_profiler(spec, tuple(x.shape[1:]), dm.num_classes)
    result = evaluate_in_blocks(spec, job, x, dm.num_classes, device, profiler)
    if result is None:  # a shard whose job another process finishes
        return None
    summary = summarize(
        result, spec, n_points=int(x.shape[0]), n_boot=ens.n_boot, ci_level=ens.ci_level
    )
    # the histogram's laws, drawn by the figure worker (if one runs) while this goes on
    laws = ("igb.ensemble.plot:prepare_laws", result.num_classes, int(x.shape[0]))
    figure_worker.prepare(laws[0], summary, *laws[1:])
    # the infinite- and finite-width predictions beside the measurement (igb.theory.nngp; null +
    # reason if not covered)
    if ens.theory:
        predicted = predict_gamma(WalkSettings.from_spec(spec, dm.num_classes), x)
        if predicted.gamma is not None:
            walked = (
                f"+- {predicted.stderr:.2g} (standard error: a subsample of {predicted.points} "
                f"of the {x.shape[0]} points, ensemble.theory_points)"
                if predicted.points < x.shape[0]
                else f"(all {x.shape[0]} points)"
            )
            log.info("gamma_theory = %.4g %s in %.1f s", predicted.gamma, walked, predicted.seconds)
    else:
        predicted = Prediction(gamma=None, reason="not computed (ensemble.theory=false)")
    summary.update(predicted.summary_fields())
    figure_worker.prepare(laws[0], summary, *laws[1:])
    if ens.theory:
        from igb.theory.meanfield import config_readout

        summary["meanfield"] = config_readout(spec.model, spec.norm)
    label, values = histogram_values(result)
    write_inits_csv(result, out / "inits.csv")
    heading, n_points = title(spec.choices), int(x.shape[0])
    atomic_write(
        out / "histogram.png",
        lambda tmp: figure_worker.call(
            "igb.ensemble.plot:plot_histogram",
            values,
            label,
            summary,
            result.num_classes,
            n_points,
            tmp,
            title=heading,
        ),  # fmt: skip
    )
    if profiler is not None:
        from igb.ensemble.profile_report import report

        summary["profile"] = report(profiler, spec, x, dm.num_classes, device, out, heading)
    summary["wall_time_s"] = time.perf_counter() - t_start
    log_to_loggers(spec, summary, result, out)
    summary["wall_time_s"] = time.perf_counter() - t_start
    write_summary(summary, out / "summary.json")  # last: its presence means "finished"
    shutil.rmtree(out / BLOCKS, ignore_errors=True)  # inits.csv holds every block now
    lo, hi = summary["gamma_ci"]
    log.info(
        "gamma = %.4g [%.4g, %.4g] -> %s; f_max mean %.3f; %s (%s, %s, %d workers); "
        "results in %s",
        summary["gamma"], lo, hi, summary["regime"], summary["f_max_mean"], timing(result),
        result.method, result.device, result.workers, out,
    )  # fmt: skip
    return summary
