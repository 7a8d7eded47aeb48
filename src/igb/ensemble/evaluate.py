"""Evaluate a range of initializations of one configuration: the entry of both methods."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from igb.ensemble.heads import METHOD as CACHED
from igb.ensemble.heads import CachedHeads, cached_heads
from igb.ensemble.loop import run_loop
from igb.ensemble.plan import EvaluationPlan
from igb.ensemble.profile import Profiler
from igb.ensemble.progress import ProgressFn
from igb.ensemble.resolve import resolve_method, resolve_workers
from igb.ensemble.statistics import EnsembleResult, StatisticsStore
from igb.ensemble.vmap import run_vmap
from igb.errors import ConfigError
from igb.metrics.measure import NORM_MODES
from igb.nn.reinit import reinitializer

log = logging.getLogger(__name__)


def evaluate_ensemble(
    plan: EvaluationPlan,
    x: Tensor,
    seeds: Sequence[int],
    *,
    progress: ProgressFn | None = None,
    cache: dict[str, Any] | None = None,
    profiler: Profiler | None = None,
) -> EnsembleResult:
    """Evaluate initializations ``seeds`` of ``plan`` on ``x``; statistics per initialization.

    Row ``k`` equals ``BiasStatistics`` of ``predict_logits(build_model(..., seed=seeds[k],
    device=plan.device), x, plan.batch_size, plan.norm_mode)``. The caller's RNG state is
    left as it was. What is observed or kept across calls is not part of the plan:
    ``progress(n)`` is called as initializations complete, ``cache`` keeps the backbone's
    features of ``vary=head`` and the re-initializer (:mod:`igb.nn.reinit`) between blocks
    of seeds, and ``profiler`` records every layer's gamma_l (:mod:`.profile`).
    """
    model_cfg, norm_cfg = plan.model, plan.norm
    num_classes, batch_size, norm_mode, vary = (
        plan.num_classes, plan.batch_size, plan.norm_mode, plan.vary,
    )  # fmt: skip
    if norm_mode not in NORM_MODES:
        raise ConfigError(
            "ensemble.norm_mode",
            f"ensemble.norm_mode={norm_mode} unknown; allowed: {', '.join(NORM_MODES)}",
        )
    device = plan.device
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    method = resolve_method(plan.method, device)
    if profiler is not None and method != "loop":
        log.info("ensemble.profile=true: evaluated with the loop method (forward hooks)")
        method = "loop"  # forward hooks on each replica (vmap's functional calls have none)
    backbone_seed = plan.backbone_seed
    chunk_size, workers = plan.chunk_size, plan.workers
    seeds = [int(s) for s in seeds]
    x = x.to(device).contiguous()
    progress = progress or (lambda n: None)
    store = StatisticsStore(len(seeds), num_classes)
    rng_devices = [device] if device.type == "cuda" else []
    if backbone_seed is None:
        backbone_seed = seeds[0] if seeds else 0
    t0 = time.perf_counter()
    heads = None
    if profiler is None:  # a profile needs the backbone's forward for every initialization
        heads = _heads(model_cfg, norm_cfg, x, num_classes, batch_size, norm_mode, device, vary,
                       int(backbone_seed), cache)  # fmt: skip
    extra: dict[str, Any] = {}
    if isinstance(heads, CachedHeads):
        heads.run(seeds, store, progress)
        method, n_workers, chunk = CACHED, 1, None
        extra["gamma_gaussian_head"] = heads.gamma_gaussian_head
    else:
        reinit = _memo(cache, f"reinit-{backbone_seed}", lambda: reinitializer(
            model_cfg, norm_cfg, x.shape[1:], num_classes, device, vary, int(backbone_seed)
        ))  # fmt: skip
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=rng_devices):
            if method == "loop":
                n_workers = min(resolve_workers(workers, device), max(1, len(seeds)))
                run_loop(
                    model_cfg, norm_cfg, x, num_classes, seeds, batch_size, norm_mode, device,
                    n_workers, reinit, store, progress, profiler,
                )  # fmt: skip
                chunk = None
            else:
                n_workers = 1
                chunk = run_vmap(
                    model_cfg, norm_cfg, x, num_classes, seeds, batch_size, norm_mode, device,
                    chunk_size, reinit, store, progress,
                )  # fmt: skip
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t0
    return EnsembleResult(
        seeds=np.asarray(seeds, dtype=np.int64),
        **store.arrays,
        method=method,
        device=str(device),
        workers=n_workers,
        chunk_size=chunk,
        eval_time_s=elapsed,
        extra=extra,
    )


def _heads(
    model_cfg, norm_cfg, x, num_classes, batch_size, norm_mode, device, vary, backbone_seed,
    cache: dict[str, Any] | None,
) -> CachedHeads | str | None:  # fmt: skip
    """The cached backbone features of a ``vary=head`` ensemble (or why not; None: vary=all)."""
    if vary != "head":
        return None

    def make() -> CachedHeads | str:
        heads = cached_heads(
            model_cfg, norm_cfg, x, num_classes, batch_size, norm_mode, device, backbone_seed
        )
        if isinstance(heads, str):
            log.info("ensemble.vary=head: the backbone runs for every head: %s", heads)
        return heads

    return _memo(cache, f"heads-{backbone_seed}", make)


def _memo(cache: dict[str, Any] | None, key: str, make: Callable[[], Any]) -> Any:
    """``cache[key]``, made by ``make()`` the first time (every time without a cache)."""
    if cache is None:
        return make()
    if key not in cache:
        cache[key] = make()
    return cache[key]
