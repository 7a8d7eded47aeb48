"""The ``loop`` method: one initialization at a time, in worker threads on a CPU."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import torch
from torch import Tensor, nn

from igb.ensemble.plan import EvaluationPlan
from igb.ensemble.profile import Tap
from igb.ensemble.replica import plan_replica
from igb.ensemble.resolve import resolve_workers
from igb.ensemble.runtime import Runtime
from igb.metrics import logit_statistics
from igb.metrics.measure import batch_stat_mode, batches


def loop_workers(plan: EvaluationPlan, n_seeds: int) -> int:
    """The worker threads ``plan`` runs ``n_seeds`` initializations with."""
    return min(resolve_workers(plan.workers, torch.device(plan.device)), max(1, n_seeds))


def run_loop(
    plan: EvaluationPlan,
    x: Tensor,
    seeds: Sequence[int],
    rt: Runtime,
    replicas: Sequence[nn.Module] | None = None,
) -> int:
    """One initialization at a time in :func:`loop_workers` threads, each with its own
    replica (``replicas``: built by the caller once for many blocks; default: built here).
    Returns the number of workers. ``plan.device`` is a resolved device.

    Initialization draws from the global RNG, so it happens under a lock (with the index
    of the next seed): reproducible whatever the threads' interleaving, and no extra
    producer thread competing for the cores (docs/ensemble.md compares the alternatives).

    ``rt.profiler`` (:mod:`.profile`): hooks on every replica record each layer's features
    during the same forward passes (on replicas of their own: hooks stay on a module).
    """
    device = torch.device(plan.device)
    n_workers = loop_workers(plan, len(seeds))
    profiler = rt.profiler
    if replicas is None or profiler is not None:
        replicas = [plan_replica(plan, tuple(x.shape[1:])) for _ in range(n_workers)]
    replicas = list(replicas)[:n_workers]
    order = iter(range(len(seeds)))
    lock = threading.Lock()  # the global RNG and the index iterator
    stop = threading.Event()
    slices = batches(x.shape[0], plan.batch_size)
    taps = [profiler.attach(m) if profiler else None for m in replicas]

    def work(model: nn.Module, single_threaded: bool, tap: Tap | None = None) -> None:
        if single_threaded:
            torch.set_num_threads(1)  # this thread only (OpenMP / MKL settings are per thread)
        # predict_logits' loop, with batch_stat_mode entered once per replica rather than
        # once per initialization (it saves and restores every BatchNorm buffer);
        # re-initialising inside it is safe: it restores the buffers on exit.
        # inference_mode: no autograd bookkeeping at all; safe because the replicas are
        # private to this evaluation.
        with torch.inference_mode(), batch_stat_mode(model, plan.norm_mode):
            while not stop.is_set():
                with lock:
                    k = next(order, None)
                    if k is None:
                        return
                    rt.reinit(model, seeds[k])
                if tap is not None:
                    tap.start()
                logits = torch.cat([model(x[s]) for s in slices])
                if profiler is not None and tap is not None:
                    profiler.finish(seeds[k], tap)
                rt.store.put(k, logit_statistics(logits.unsqueeze(0)))
                rt.progress(1)

    if n_workers == 1:
        work(replicas[0], single_threaded=False, tap=taps[0])
        return 1
    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(n_workers, thread_name_prefix="igb-ensemble")
    futures = [pool.submit(work, m, device.type == "cpu", t) for m, t in zip(replicas, taps)]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
    finally:  # on an error or Ctrl-C, let the other workers stop after their current init
        stop.set()
        pool.shutdown(wait=True)
        # a worker's set_num_threads(1) also becomes the default of threads started later
        torch.set_num_threads(threads)
    for fut in futures:
        fut.result()  # raises a worker's error
    return n_workers
