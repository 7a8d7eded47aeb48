"""The ``vmap`` method: a chunk of initializations at once under ``torch.func.vmap`` (GPUs)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor

from igb.ensemble.plan import EvaluationPlan
from igb.ensemble.replica import plan_replica
from igb.ensemble.resolve import resolve_chunk_size
from igb.ensemble.runtime import Runtime
from igb.metrics import logit_statistics
from igb.metrics.measure import batch_stat_mode, batches

log = logging.getLogger(__name__)


def run_vmap(plan: EvaluationPlan, x: Tensor, seeds: Sequence[int], rt: Runtime) -> int:
    """``plan.chunk_size`` initializations at once (``plan.device``: a resolved device).
    Returns the chunk size used (smaller than asked if the GPU ran out of memory)."""
    from torch.func import functional_call, stack_module_state, vmap

    device = torch.device(plan.device)
    model = plan_replica(plan, tuple(x.shape[1:]))
    slices = batches(x.shape[0], plan.batch_size)
    if seeds:
        with torch.no_grad():
            rt.reinit(model, seeds[0])
    chunk_size = resolve_chunk_size(plan.chunk_size, model, x, slices, plan.norm_mode, len(seeds))
    # stacked state: one slot per initialization of a chunk, refilled chunk after chunk
    params, buffers = stack_module_state([model] * chunk_size)
    params = {k: v.detach() for k, v in params.items()}

    def forward(p: dict[str, Tensor], b: dict[str, Tensor], xb: Tensor) -> Tensor:
        return functional_call(model, (p, b), (xb,))

    batched = vmap(forward, in_dims=(0, 0, None), randomness="error")
    start = 0
    # eval mode, BatchNorm on batch statistics; inference_mode is safe on this private model
    with torch.inference_mode(), batch_stat_mode(model, plan.norm_mode):
        while start < len(seeds):
            chunk = seeds[start : start + chunk_size]
            for j, seed in enumerate(chunk):
                rt.reinit(model, seed)
                for name, value in model.named_parameters():
                    params[name][j].copy_(value)
                for name, value in model.named_buffers():
                    buffers[name][j].copy_(value)
            k = len(chunk)
            p = {n: v[:k] for n, v in params.items()}
            b = {n: v[:k] for n, v in buffers.items()}
            try:
                logits = torch.cat([batched(p, b, x[s]) for s in slices], dim=1)
            except torch.OutOfMemoryError:
                if chunk_size == 1:
                    raise
                chunk_size = max(1, chunk_size // 2)
                log.warning("out of memory: retrying with ensemble.chunk_size=%d", chunk_size)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            rt.store.put(slice(start, start + k), logit_statistics(logits))
            rt.progress(k)
            start += k
    return chunk_size
