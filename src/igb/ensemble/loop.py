"""The ``loop`` method: one initialization at a time, in worker threads on a CPU."""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import torch
from torch import nn

from igb.ensemble.profile import Profiler, Tap
from igb.ensemble.progress import ProgressFn
from igb.ensemble.replica import empty_model
from igb.ensemble.statistics import StatisticsStore
from igb.metrics import logit_statistics
from igb.metrics.measure import batch_stat_mode, batches
from igb.nn.reinit import Reinit


def run_loop(
    model_cfg, norm_cfg, x, num_classes, seeds, batch_size, norm_mode, device, n_workers,
    reinit: Reinit, store: StatisticsStore, progress: ProgressFn, profiler: Profiler | None = None,
) -> None:  # fmt: skip
    """One initialization at a time; ``n_workers`` threads, each with its own replica.

    Initialization draws from the global RNG, so it happens under a lock (with the index
    of the next seed): reproducible whatever the threads' interleaving, and no extra
    producer thread competing for the cores (docs/ensemble.md compares the alternatives).

    ``profiler`` (:mod:`.profile`): hooks on every replica record each layer's features
    during the same forward passes.
    """
    replicas = [
        empty_model(model_cfg, norm_cfg, x.shape[1:], num_classes, device, norm_mode)
        for _ in range(n_workers)
    ]
    order = iter(range(len(seeds)))
    lock = threading.Lock()  # the global RNG and the index iterator
    stop = threading.Event()
    slices = batches(x.shape[0], batch_size)

    taps = [profiler.attach(m) if profiler else None for m in replicas]

    def work(model: nn.Module, single_threaded: bool, tap: Tap | None = None) -> None:
        if single_threaded:
            torch.set_num_threads(1)  # this thread only (OpenMP / MKL settings are per thread)
        # predict_logits' loop, with batch_stat_mode entered once per replica rather than
        # once per initialization (it saves and restores every BatchNorm buffer);
        # re-initialising inside it is safe: it restores the buffers on exit.
        # inference_mode: no autograd bookkeeping at all; safe because the replicas are
        # private to this call.
        with torch.inference_mode(), batch_stat_mode(model, norm_mode):
            while not stop.is_set():
                with lock:
                    k = next(order, None)
                    if k is None:
                        return
                    reinit(model, seeds[k])
                if tap is not None:
                    tap.start()
                logits = torch.cat([model(x[s]) for s in slices])
                if profiler is not None and tap is not None:
                    profiler.finish(seeds[k], tap)
                store.put(k, logit_statistics(logits.unsqueeze(0)))
                progress(1)

    if n_workers == 1:
        work(replicas[0], single_threaded=False, tap=taps[0])
        return
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
