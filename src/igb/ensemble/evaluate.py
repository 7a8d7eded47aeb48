"""Evaluate a range of initializations of one configuration: the entry of both methods."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from igb.ensemble.heads import METHOD as CACHED
from igb.ensemble.heads import CachedHeads, cached_heads
from igb.ensemble.loop import loop_workers, run_loop
from igb.ensemble.plan import EvaluationPlan
from igb.ensemble.profile import Profiler
from igb.ensemble.progress import ProgressFn
from igb.ensemble.replica import plan_replica
from igb.ensemble.resolve import resolve_method
from igb.ensemble.runtime import Runtime, silent
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
    of seeds (and the loop's model replicas), and ``profiler`` records every layer's
    gamma_l (:mod:`.profile`).
    """
    if plan.norm_mode not in NORM_MODES:
        raise ConfigError(
            "ensemble.norm_mode",
            f"ensemble.norm_mode={plan.norm_mode} unknown; allowed: {', '.join(NORM_MODES)}",
        )
    device = torch.device(plan.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    plan = replace(plan, device=device)  # below, the device is a resolved one
    method = resolve_method(plan.method, device)
    if profiler is not None and method != "loop":
        log.info("ensemble.profile=true: evaluated with the loop method (forward hooks)")
        method = "loop"  # forward hooks on each replica (vmap's functional calls have none)
    seeds = [int(s) for s in seeds]
    x = x.to(device).contiguous()
    store = StatisticsStore(len(seeds), plan.num_classes)
    backbone_seed = plan.backbone_seed
    if backbone_seed is None:
        backbone_seed = seeds[0] if seeds else 0
    t0 = time.perf_counter()
    heads = None
    if profiler is None:  # a profile needs the backbone's forward for every initialization
        heads = _heads(plan, x, int(backbone_seed), cache)
    extra: dict[str, Any] = {}
    chunk: int | None = None
    if isinstance(heads, CachedHeads):
        heads.run(seeds, store, progress or silent)
        method, n_workers = CACHED, 1
        extra["gamma_gaussian_head"] = heads.gamma_gaussian_head
    else:
        reinit = _memo(cache, f"reinit-{backbone_seed}", lambda: reinitializer(
            plan.model, plan.norm, x.shape[1:], plan.num_classes, device, plan.vary,
            int(backbone_seed),
        ))  # fmt: skip
        rt = Runtime(reinit, store, progress or silent, profiler)
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if method == "loop":
                replicas = _memo(cache, "replicas", lambda: [
                    plan_replica(plan, tuple(x.shape[1:]))
                    for _ in range(loop_workers(plan, len(seeds)))
                ])  # fmt: skip
                n_workers = run_loop(plan, x, seeds, rt, replicas)
            else:
                n_workers, chunk = 1, run_vmap(plan, x, seeds, rt)
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
    plan: EvaluationPlan, x: Tensor, backbone_seed: int, cache: dict[str, Any] | None
) -> CachedHeads | str | None:
    """The cached backbone features of a ``vary=head`` ensemble (or why not; None: vary=all)."""
    if plan.vary != "head":
        return None

    def make() -> CachedHeads | str:
        heads = cached_heads(plan, x, backbone_seed)
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
