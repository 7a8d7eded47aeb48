"""``ensemble.device`` / ``method`` / ``workers`` / ``chunk_size``: config values to choices."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from igb.errors import ConfigError
from igb.metrics.measure import batch_stat_mode

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
METHODS = ("auto", "loop", "vmap")


#: ``ensemble.theory_points``: its default (the theory in seconds: N^2 kernels of 2000
#: points) and the fewest a subsample may have (its error needs points)
THEORY_POINTS = 2000
MIN_THEORY_POINTS = 100


def resolve_theory_points(ens: Any) -> int | None:
    """``ens.theory_points``: the most evaluation points the theory walks (None: all); a
    config written before the key existed gets the default."""
    value = ens.get("theory_points", THEORY_POINTS)
    if value is None or value == "all":
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < MIN_THEORY_POINTS:
        raise ConfigError(
            "ensemble.theory_points",
            f"ensemble.theory_points={value} must be an integer >= {MIN_THEORY_POINTS}, all "
            "or null (every evaluation point)",
        )
    return value


def resolve_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise ConfigError(
            "ensemble.device", f"ensemble.device={device} unknown; allowed: {', '.join(DEVICES)}"
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "ensemble.device",
            "ensemble.device=cuda but torch sees no CUDA device; use ensemble.device=cpu|auto",
        )
    return torch.device(device)


def resolve_method(method: str, device: torch.device) -> str:
    """``auto``: vmap on CUDA, the threaded loop on CPU (measured faster there)."""
    if method not in METHODS:
        raise ConfigError(
            "ensemble.method", f"ensemble.method={method} unknown; allowed: {', '.join(METHODS)}"
        )
    if method == "auto":
        return "vmap" if device.type == "cuda" else "loop"
    return method


def resolve_workers(workers: int | str | None, device: torch.device) -> int:
    """``auto``: one thread per intra-op thread torch would use on CPU, 1 on a GPU."""
    if workers in (None, "auto"):
        if device.type != "cpu":
            return 1
        n = max(1, torch.get_num_threads())
        if os.environ.get("OMP_NUM_THREADS"):  # said, as it silently changes the speed
            log.info(
                "ensemble.workers=auto -> %d: OMP_NUM_THREADS=%s sets torch's threads; "
                "set ensemble.workers=N to run N initializations at once",
                n, os.environ["OMP_NUM_THREADS"],
            )  # fmt: skip
        return n
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(
            "ensemble.workers", f"ensemble.workers={workers} must be a positive integer or auto"
        )
    return workers


def resolve_chunk_size(
    chunk_size: int | str | None,
    model: nn.Module,
    x: Tensor,
    slices: Sequence[slice],
    norm_mode: str,
    n_seeds: int,
) -> int:
    """``auto``: 64 on CPU; on CUDA as many initializations as fit in half the free memory,
    from the peak memory of one initialization's largest batch (measured)."""
    if chunk_size not in (None, "auto"):
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ConfigError(
                "ensemble.chunk_size",
                f"ensemble.chunk_size={chunk_size} must be a positive integer or auto",
            )
        return min(chunk_size, max(1, n_seeds))
    if x.device.type != "cuda":
        return min(64, max(1, n_seeds))
    state = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    largest = max(slices, key=lambda s: s.stop - s.start)
    torch.cuda.synchronize(x.device)
    torch.cuda.reset_peak_memory_stats(x.device)
    base = torch.cuda.memory_allocated(x.device)
    with torch.inference_mode(), batch_stat_mode(model, norm_mode):
        model(x[largest])
    torch.cuda.synchronize(x.device)
    activations = torch.cuda.max_memory_allocated(x.device) - base
    free, _ = torch.cuda.mem_get_info(x.device)
    fit = int(0.5 * free / max(1, 2 * state + activations))
    return max(1, min(fit, 1024, n_seeds))
