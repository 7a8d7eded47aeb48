"""Initialization ensembles: the law of f over many independent initializations, and gamma.

``python ensemble.py`` (conf/ensemble.yaml) evaluates initializations ``seed0 ..
seed0 + n_inits - 1`` of one configuration on a fixed evaluation set, with norm layers
in batch-statistics mode (:func:`igb.measure.batch_stat_mode`) on batches of
``ensemble.batch_size`` points and no gradients, and writes to its job folder:

- ``inits.csv``: one row per initialization: ``seed, f_0 .. f_{C-1}, f_max, entropy,
  bias_degree`` (g), and ``mu2``/``s2`` (``mean_c mu_c^2``, ``mean_c s2_c``: the two
  per-initialization terms whose means give gamma);
- ``summary.json``: gamma, its bootstrap interval, the regime, f_max / f_0 statistics,
  the configuration choices, device, method and wall time;
- ``histogram.png``: the histogram of f_0 (C = 2) or f_max (C > 2) with the theory
  curve for the measured gamma (:mod:`igb.ensemble_plot`).

Initialization ``i`` is exactly ``build_model(model, norm, ..., seed=i, device=device)``:
the model is built once and re-initialised in place with ``torch.manual_seed(i);
initialize(model, scheme)``, which is what ``build_model`` does. Two ways to evaluate:

- ``loop``: one initialization at a time, as :func:`igb.measure.predict_logits` does it.
  On a CPU it runs ``workers`` Python threads, each with its own model replica and one
  intra-op thread (matmuls release the GIL); initialization is serialised under a lock
  because it draws from the global RNG. This beats one thread with intra-op
  parallelism for these small matrices, and it degrades gracefully when another
  process takes a core (OpenMP's barriers do not: see docs/ensemble.md).
- ``vmap``: ``chunk_size`` initializations at once, parameters stacked along a new
  leading axis, ``torch.func.functional_call`` under ``torch.func.vmap``. Used on GPUs.

In batch-statistics mode the private models' BatchNorm layers do not track running
statistics (``torch.func.replace_all_batch_norm_modules_``, the torch.func recipe for
BatchNorm under vmap): they would never be used, and the logits are bit-identical. Other
buffers (and BatchNorm's with ``norm_mode=eval``) are stacked along with the parameters
under vmap, so nothing a forward pass might update in place is shared.

Per-initialization statistics are those of :class:`igb.metrics.BiasStatistics`,
computed for a whole stack of initializations at once by :func:`init_statistics`
(tests check the two agree).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from igb import theory
from igb.errors import ConfigError
from igb.job import JobFolder
from igb.measure import NORM_MODES, batch_stat_mode, batches
from igb.metrics import bias_degree, centred_logit_moments, gamma_bootstrap_ci, gamma_from_moments
from igb.nn import build_model
from igb.nn.reinit import check_vary, reinitializer  # issue 15: ensemble.vary, external models
from igb.nngp import summary_fields

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
METHODS = ("auto", "loop", "vmap")
SPLITS = ("train", "val", "test")
OUTPUT_FILES = ("inits.csv", "histogram.png", "summary.json")
QUANTILES = (5, 25, 50, 75, 95)


# -- per-initialization statistics ---------------------------------------------------------
def init_statistics(logits: Tensor) -> dict[str, Tensor]:
    """Bias statistics of a stack of initializations: logits ``(K, N, C)`` -> float64.

    The quantities of :class:`igb.metrics.BiasStatistics`, one row per initialization:
    ``f`` (K, C) (ties to the first maximal class, like ``argmax``), ``f_max`` (K,),
    ``entropy`` (K,) ``= H(f) / log C``, ``mu`` and ``s2`` (K, C) (centred-logit
    moments, population variance) and ``bias_degree`` (K,) ``= mean mu^2 / mean s2``.
    """
    if logits.ndim != 3:
        raise ValueError(f"logits must have shape (K, N, C), got {tuple(logits.shape)}")
    k, n, c = logits.shape
    offset = torch.arange(k, device=logits.device).unsqueeze(1) * c
    counts = torch.bincount((logits.argmax(dim=2) + offset).flatten(), minlength=k * c)
    f = counts.view(k, c).to(torch.float64) / n
    mu, s2 = centred_logit_moments(logits)
    entropy = -torch.special.xlogy(f, f).sum(dim=1) / math.log(c) if c > 1 else f[:, 0] * 0
    return {
        "f": f,
        "f_max": f.max(dim=1).values,
        "entropy": entropy,
        "mu": mu,
        "s2": s2,
        "bias_degree": bias_degree(mu, s2),
    }


@dataclass
class EnsembleResult:
    """Per-initialization statistics (numpy, row ``k`` is seed ``seeds[k]``) and how."""

    seeds: np.ndarray
    f: np.ndarray
    f_max: np.ndarray
    entropy: np.ndarray
    mu: np.ndarray
    s2: np.ndarray
    bias_degree: np.ndarray
    method: str
    device: str
    workers: int = 1
    chunk_size: int | None = None
    eval_time_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_inits(self) -> int:
        return int(self.seeds.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.f.shape[1])

    @property
    def gamma(self) -> float:
        return gamma_from_moments(self.mu, self.s2)


class _Store:
    """Preallocated per-initialization arrays, filled by row (threads write disjoint rows)."""

    def __init__(self, n: int, c: int) -> None:
        self.arrays = {
            "f": np.empty((n, c)),
            "f_max": np.empty(n),
            "entropy": np.empty(n),
            "mu": np.empty((n, c)),
            "s2": np.empty((n, c)),
            "bias_degree": np.empty(n),
        }

    def put(self, rows: slice | int, stats: Mapping[str, Tensor]) -> None:
        for key, arr in self.arrays.items():
            value = stats[key].cpu().numpy()
            arr[rows] = value[0] if isinstance(rows, int) else value


# -- devices, methods, workers ---------------------------------------------------------------
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
        return max(1, torch.get_num_threads()) if device.type == "cpu" else 1
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(
            "ensemble.workers", f"ensemble.workers={workers} must be a positive integer or auto"
        )
    return workers


# -- the evaluation itself ---------------------------------------------------------------------
ProgressFn = Callable[[int], None]


def _empty_model(
    model_cfg, norm_cfg, input_shape, num_classes, device, norm_mode: str = "eval"
) -> nn.Module:
    """The architecture with uninitialised memory (every value is set by ``initialize``).

    With ``norm_mode="batch"`` its BatchNorm layers stop tracking running statistics
    (``torch.func.replace_all_batch_norm_modules_``): in batch-statistics mode they never
    use them, so the logits are bit-identical, and the model stops spending time on an
    update that would be thrown away (~5%; under vmap there are no buffers to stack).
    """
    meta = build_model(model_cfg, norm_cfg, input_shape, num_classes, seed=0, device="meta")
    model = meta.to_empty(device=device)
    if norm_mode == "batch":
        from torch.func import replace_all_batch_norm_modules_

        replace_all_batch_norm_modules_(model)
    return model


def evaluate_ensemble(
    model_cfg: Mapping[str, Any],
    norm_cfg: Mapping[str, Any],
    x: Tensor,
    num_classes: int,
    seeds: Sequence[int],
    batch_size: int,
    norm_mode: str = "batch",
    device: torch.device | str = "cpu",
    method: str = "auto",
    chunk_size: int | str | None = "auto",
    workers: int | str | None = "auto",
    progress: ProgressFn | None = None,
    vary: str = "all",  # issue 15: all | head (see igb.nn.reinit)
) -> EnsembleResult:
    """Evaluate initializations ``seeds`` on ``x``; statistics per initialization.

    Row ``k`` equals ``BiasStatistics`` of ``predict_logits(build_model(..., seed=seeds[k],
    device=device), x, batch_size, norm_mode)``. The caller's RNG state is left as it was.
    ``progress(n)`` is called as initializations complete.
    """
    model_cfg = _plain(model_cfg)
    norm_cfg = _plain(norm_cfg)
    if norm_mode not in NORM_MODES:
        raise ConfigError(
            "ensemble.norm_mode",
            f"ensemble.norm_mode={norm_mode} unknown; allowed: {', '.join(NORM_MODES)}",
        )
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    method = resolve_method(method, device)
    seeds = [int(s) for s in seeds]
    x = x.to(device).contiguous()
    progress = progress or (lambda n: None)
    store = _Store(len(seeds), num_classes)
    rng_devices = [device] if device.type == "cuda" else []
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=rng_devices):
        if method == "loop":
            n_workers = min(resolve_workers(workers, device), max(1, len(seeds)))
            _run_loop(
                model_cfg, norm_cfg, x, num_classes, seeds, batch_size, norm_mode, device,
                n_workers, store, progress, vary,
            )  # fmt: skip
            chunk = None
        else:
            n_workers = 1
            chunk = _run_vmap(
                model_cfg, norm_cfg, x, num_classes, seeds, batch_size, norm_mode, device,
                chunk_size, store, progress, vary,
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
    )


def _plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def _run_loop(
    model_cfg, norm_cfg, x, num_classes, seeds, batch_size, norm_mode, device, n_workers,
    store: _Store, progress: ProgressFn, vary: str = "all",
) -> None:  # fmt: skip
    """One initialization at a time; ``n_workers`` threads, each with its own replica.

    Initialization draws from the global RNG, so it happens under a lock (with the index
    of the next seed). Measured alternatives: a producer thread initialising replicas
    for the workers (no lock) was ~15% slower (three threads on two cores); initialising
    without any lock (not reproducible) would be ~9% faster.
    """
    # issue 15: initialization i of any model (built-in, external; vary=all|head)
    reinit = reinitializer(
        model_cfg, norm_cfg, x.shape[1:], num_classes, device, vary, seeds[0] if seeds else 0
    )
    replicas = [
        _empty_model(model_cfg, norm_cfg, x.shape[1:], num_classes, device, norm_mode)
        for _ in range(n_workers)
    ]
    order = iter(range(len(seeds)))
    lock = threading.Lock()  # the global RNG and the index iterator
    stop = threading.Event()
    slices = batches(x.shape[0], batch_size)

    def work(model: nn.Module, single_threaded: bool) -> None:
        if single_threaded:
            torch.set_num_threads(1)  # this thread only (OpenMP / MKL settings are per thread)
        # predict_logits' loop, with batch_stat_mode entered once per replica rather than
        # once per initialization (its save/restore of every BatchNorm buffer cost ~5%);
        # re-initialising inside it is safe: it restores the buffers on exit.
        # inference_mode: no autograd bookkeeping at all (10% faster with whole-set
        # batches); safe because the replicas are private to this call.
        with torch.inference_mode(), batch_stat_mode(model, norm_mode):
            while not stop.is_set():
                with lock:
                    k = next(order, None)
                    if k is None:
                        return
                    reinit(model, seeds[k])  # issue 15
                logits = torch.cat([model(x[s]) for s in slices])
                store.put(k, init_statistics(logits.unsqueeze(0)))
                progress(1)

    if n_workers == 1:
        work(replicas[0], single_threaded=False)
        return
    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(n_workers, thread_name_prefix="igb-ensemble")
    futures = [pool.submit(work, m, device.type == "cpu") for m in replicas]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
    finally:  # on an error or Ctrl-C, let the other workers stop after their current init
        stop.set()
        pool.shutdown(wait=True)
        # a worker's set_num_threads(1) also becomes the default of threads started later
        torch.set_num_threads(threads)
    for fut in futures:
        fut.result()  # raises a worker's error


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


def _run_vmap(
    model_cfg, norm_cfg, x, num_classes, seeds, batch_size, norm_mode, device, chunk_size,
    store: _Store, progress: ProgressFn, vary: str = "all",
) -> int:  # fmt: skip
    """Returns the chunk size used (smaller than asked if the GPU ran out of memory)."""
    from torch.func import functional_call, stack_module_state, vmap

    # issue 15: initialization i of any model (built-in, external; vary=all|head)
    reinit = reinitializer(
        model_cfg, norm_cfg, x.shape[1:], num_classes, device, vary, seeds[0] if seeds else 0
    )
    model = _empty_model(model_cfg, norm_cfg, x.shape[1:], num_classes, device, norm_mode)
    slices = batches(x.shape[0], batch_size)
    if seeds:
        with torch.no_grad():
            reinit(model, seeds[0])  # issue 15
    chunk_size = resolve_chunk_size(chunk_size, model, x, slices, norm_mode, len(seeds))
    # stacked state: one slot per initialization of a chunk, refilled chunk after chunk
    params, buffers = stack_module_state([model] * chunk_size)
    params = {k: v.detach() for k, v in params.items()}

    def forward(p: dict[str, Tensor], b: dict[str, Tensor], xb: Tensor) -> Tensor:
        return functional_call(model, (p, b), (xb,))

    batched = vmap(forward, in_dims=(0, 0, None), randomness="error")
    start = 0
    # eval mode, BatchNorm on batch statistics; inference_mode is safe on this private model
    with torch.inference_mode(), batch_stat_mode(model, norm_mode):
        while start < len(seeds):
            chunk = seeds[start : start + chunk_size]
            for j, seed in enumerate(chunk):
                reinit(model, seed)  # issue 15
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
            store.put(slice(start, start + k), init_statistics(logits))
            progress(k)
            start += k
    return chunk_size


# -- the Hydra job --------------------------------------------------------------------------------
@contextmanager
def progress_bar(total: int, enabled: bool = True) -> Iterator[ProgressFn]:
    """A rich progress bar over initializations; yields ``advance(n)`` (thread-safe)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]initializations"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task("inits", total=total)
        yield lambda n: bar.advance(task, n)


def eval_set(cfg: DictConfig) -> tuple[Tensor, Any]:
    """The evaluation inputs (first ``ensemble.eval_samples`` of ``ensemble.eval_split``)."""
    from igb.train import instantiate_datamodule  # late: train imports lightning

    dm = instantiate_datamodule(cfg.dataset)
    dm.prepare_data()
    dm.setup("fit")
    ens = cfg.ensemble
    x, _ = dm.split_tensors(ens.eval_split)
    n = ens.eval_samples
    if n is not None:
        if n > x.shape[0]:
            raise ConfigError(
                "ensemble.eval_samples",
                f"ensemble.eval_samples={n} but the {ens.eval_split} split has {x.shape[0]} "
                f"points; use ensemble.eval_samples<={x.shape[0]} or null (all)",
            )
        x = x[:n]
    return x, dm


def summarize(
    result: EnsembleResult,
    cfg: DictConfig | None = None,
    n_points: int | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
) -> dict[str, Any]:
    """summary.json: gamma with its bootstrap interval, regime, laws of f_max / f_0."""
    gamma = result.gamma
    lo, hi = gamma_bootstrap_ci(result.mu, result.s2, n_boot=n_boot, level=ci_level, seed=0)
    f_max = result.f_max
    summary: dict[str, Any] = {
        "n_inits": result.n_inits,
        "n_classes": result.num_classes,
        "n_points": n_points,
        "gamma": gamma,
        "gamma_ci": [lo, hi],
        "gamma_ci_level": ci_level,
        "gamma_n_boot": n_boot,
        "gamma_floor": theory.gamma_finite_sample_floor(n_points) if n_points else None,
        "regime": theory.regime(gamma),
        "f_max_mean": float(f_max.mean()),
        "f_max_std": float(f_max.std()),
        "f_max_quantiles": _quantiles(f_max),
        "entropy_mean": float(result.entropy.mean()),
        "bias_degree_mean": float(result.bias_degree.mean()),
    }
    if result.num_classes == 2:
        f0 = result.f[:, 0]
        summary.update(
            f0_mean=float(f0.mean()), f0_std=float(f0.std()), f0_quantiles=_quantiles(f0)
        )
    summary["seeds"] = [int(result.seeds[0]), int(result.seeds[-1])]
    if cfg is not None:
        summary["choices"] = choices(cfg)
        summary["norm_mode"] = cfg.ensemble.norm_mode
        summary["batch_size"] = int(cfg.ensemble.batch_size)
    summary.update(
        device=result.device,
        method=result.method,
        workers=result.workers,
        chunk_size=result.chunk_size,
        eval_time_s=result.eval_time_s,
        versions=versions(),
    )
    return summary


def _quantiles(values: np.ndarray) -> dict[str, float]:
    return {f"q{q:02d}": float(v) for q, v in zip(QUANTILES, np.percentile(values, QUANTILES))}


def choices(cfg: DictConfig) -> dict[str, Any]:
    """The configuration choices a reader needs to place this ensemble among others."""
    placement = cfg.norm.placement
    return {
        "model": cfg.model.get("name"),
        "norm_placement": placement,
        "norm_kind": cfg.norm.kind if placement != "none" else "none",
        "activation": cfg.model.get("activation", "relu"),
        "depth": cfg.model.get("depth"),
        "width": cfg.model.get("width"),
        "init": cfg.model.get("init", "kaiming_normal"),
        "dataset": cfg.dataset.get("name"),
        "eval_split": cfg.ensemble.eval_split,
        "vary": cfg.ensemble.get("vary", "all"),  # issue 15
    }


def versions() -> dict[str, str]:
    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {
        "igb": version("igb"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": str(torch.get_num_threads()),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
    }


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename into place."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_inits_csv(result: EnsembleResult, path: Path) -> None:
    c = result.num_classes
    header = ["seed", *[f"f_{i}" for i in range(c)], "f_max", "entropy", "bias_degree"]
    header += ["mu2", "s2"]
    mu2 = (result.mu**2).mean(axis=1)
    s2 = result.s2.mean(axis=1)

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for k in range(result.n_inits):
                w.writerow(
                    [
                        int(result.seeds[k]),
                        *(repr(float(v)) for v in result.f[k]),
                        repr(float(result.f_max[k])),
                        repr(float(result.entropy[k])),
                        repr(float(result.bias_degree[k])),
                        repr(float(mu2[k])),
                        repr(float(s2[k])),
                    ]
                )

    _atomic(path, write)


def write_summary(summary: Mapping[str, Any], path: Path) -> None:
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(summary, indent=2, default=_json)))


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _histogram_values(result: EnsembleResult) -> tuple[str, np.ndarray]:
    if result.num_classes == 2:
        return "f_0", result.f[:, 0]
    return "f_max", result.f_max


def run(cfg: DictConfig) -> float:
    """One ensemble job: returns gamma (NaN if the job failed inside a multirun)."""
    from igb.train import _in_multirun, _quiet_lightning

    out = Path(cfg.paths.output_dir)
    job = JobFolder(out)
    if cfg.get("skip_finished", True) and job.is_finished() and (out / "summary.json").exists():
        log.info("%s already holds a finished ensemble; skipping (skip_finished=false reruns)", out)
        return float(job.read().get("gamma", math.nan))
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:  # a previous run's results must not outlive this run's start
        (out / name).unlink(missing_ok=True)
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    job.mark("running", pid=os.getpid())
    _quiet_lightning()
    try:
        summary = _run(cfg, out)
    except Exception as exc:
        job.mark_failed(exc)
        if not _in_multirun():
            raise
        log.exception("ensemble failed; recorded in %s", job.status_file)
        return math.nan
    except BaseException as exc:  # KeyboardInterrupt, SystemExit from a signal handler
        job.mark_failed(exc, status="interrupted")
        raise
    job.mark("finished", gamma=summary["gamma"], regime=summary["regime"])
    return float(summary["gamma"])


def _run(cfg: DictConfig, out: Path) -> dict[str, Any]:
    t_start = time.perf_counter()
    ens = cfg.ensemble
    x, dm = eval_set(cfg)
    device = resolve_device(ens.device)
    seeds = range(int(ens.seed0), int(ens.seed0) + int(ens.n_inits))
    log.info(
        "ensemble: %d initializations of %s on %d %s points (%s, batch statistics on batches "
        "of %d) on %s",
        len(seeds), choices(cfg), x.shape[0], ens.eval_split, ens.norm_mode, ens.batch_size,
        device,
    )  # fmt: skip
    with progress_bar(len(seeds), enabled=bool(ens.get("progress", True))) as advance:
        result = evaluate_ensemble(
            cfg.model,
            cfg.norm,
            x,
            dm.num_classes,
            seeds,
            batch_size=int(ens.batch_size),
            norm_mode=ens.norm_mode,
            device=device,
            method=ens.method,
            chunk_size=ens.chunk_size,
            workers=ens.get("workers", "auto"),
            progress=advance,
            vary=ens.get("vary", "all"),  # issue 15
        )
    summary = summarize(
        result, cfg, n_points=int(x.shape[0]), n_boot=int(ens.n_boot), ci_level=ens.ci_level
    )
    # infinite-width prediction beside the measurement (igb.nngp; null + reason if not covered)
    summary.update(summary_fields(cfg.model, cfg.norm, x, int(ens.batch_size), ens.norm_mode))
    label, values = _histogram_values(result)
    write_inits_csv(result, out / "inits.csv")
    from igb.ensemble_plot import plot_histogram

    _atomic(
        out / "histogram.png",
        lambda tmp: plot_histogram(
            values, label, summary, result.num_classes, int(x.shape[0]), tmp, title=_title(cfg)
        ),
    )
    summary["wall_time_s"] = time.perf_counter() - t_start
    _log_to_loggers(cfg, summary, result, out)
    summary["wall_time_s"] = time.perf_counter() - t_start
    write_summary(summary, out / "summary.json")  # last: its presence means "finished"
    lo, hi = summary["gamma_ci"]
    log.info(
        "gamma = %.4g [%.4g, %.4g] -> %s; f_max mean %.3f; %d inits in %.2f s (%s, %s, %d "
        "workers); results in %s",
        summary["gamma"], lo, hi, summary["regime"], summary["f_max_mean"], result.n_inits,
        result.eval_time_s, result.method, result.device, result.workers, out,
    )  # fmt: skip
    return summary


def _title(cfg: DictConfig) -> str:
    ch = choices(cfg)
    norm = {"none": "no norm", "native": "native norms"}.get(  # issue 15: native
        ch["norm_placement"], f"{ch['norm_kind']}-{ch['norm_placement']}"
    )
    size = f" depth {ch['depth']} width {ch['width']}" if ch["depth"] is not None else ""
    return f"{ch['model']}{size}, {norm}, {ch['activation']}, {ch['dataset']}"


# -- loggers --------------------------------------------------------------------------------------
def identity(cfg: DictConfig) -> dict[str, Any]:
    """W&B job_type / tags / group of an ensemble job (like ``igb.train.run_identity``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    ch = choices(cfg)
    placement = ch["norm_placement"]  # issue 15: none and native are their own labels
    norm = placement if placement in ("none", "native") else f"{ch['norm_kind']}-{placement}"
    tags = [
        "ensemble",
        f"model:{ch['model']}",
        f"norm:{ch['norm_placement']}",
        f"norm_kind:{ch['norm_kind']}",
        f"act:{ch['activation']}",
        f"dataset:{ch['dataset']}",
        *[str(t) for t in cfg.get("tags", [])],
    ]
    group = None
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        group = Path(HydraConfig.get().sweep.dir).name
    return {"job_type": f"ensemble-{ch['model']}-{norm}", "tags": tags, "group": group}


def _log_to_loggers(cfg: DictConfig, summary: dict, result: EnsembleResult, out: Path) -> None:
    """W&B: histogram of f_0 / f_max, the figure, the per-init table and the summary."""
    loggers = cfg.get("logger") or {}
    for name, lcfg in loggers.items():
        if lcfg is None:
            continue
        target = str(lcfg.get("_target_", ""))
        if "wandb" not in target.lower():
            log.info("logger.%s: the ensemble logs to W&B only; its files are in %s", name, out)
            continue
        from hydra.utils import instantiate

        resolved = OmegaConf.to_container(cfg, resolve=True)
        logger = instantiate(lcfg, _recursive_=False, **identity(cfg), run_config=resolved)
        if logger is None:  # W&B disabled
            continue
        _log_wandb(logger.experiment, summary, result, out)
        summary["wandb"] = {
            "id": logger.experiment.id,
            "mode": "offline" if logger.experiment.offline else "online",
            "dir": str(logger.experiment.dir),
        }
        logger.experiment.finish()


def _log_wandb(run: Any, summary: dict, result: EnsembleResult, out: Path) -> None:
    import wandb

    label, values = _histogram_values(result)
    f_cols = [f"f_{c}" for c in range(result.num_classes)]
    table = wandb.Table(
        columns=["seed", "f_max", "entropy", "bias_degree", *f_cols],
        data=[
            [int(s), float(fm), float(e), float(g), *map(float, f)]
            for s, fm, e, g, f in zip(
                result.seeds, result.f_max, result.entropy, result.bias_degree, result.f,
                strict=True,
            )
        ],
    )  # fmt: skip
    run.log(
        {
            f"ensemble/{label}": wandb.Histogram(values, num_bins=64),
            "ensemble/histogram": wandb.Image(str(out / "histogram.png")),
            "ensemble/inits": table,
        }
    )
    flat = {k: v for k, v in summary.items() if isinstance(v, int | float | str)}
    flat["gamma_ci_lo"], flat["gamma_ci_hi"] = summary["gamma_ci"]
    for key in ("f_max_quantiles", "f0_quantiles"):
        for q, v in (summary.get(key) or {}).items():
            flat[f"{key[:-10]}_{q}"] = v
    run.summary.update(flat)


# -- pre-flight ------------------------------------------------------------------------------
_SPLIT_SIZES: dict[str, dict[str, int]] = {}


def _split_sizes(dataset_cfg: DictConfig) -> dict[str, int]:
    from igb.train import instantiate_datamodule

    key = OmegaConf.to_yaml(dataset_cfg, resolve=True)
    if key not in _SPLIT_SIZES:
        dm = instantiate_datamodule(dataset_cfg)
        dm.setup("fit")
        _SPLIT_SIZES[key] = {s: int(dm.split_tensors(s)[0].shape[0]) for s in SPLITS}
    return _SPLIT_SIZES[key]


def _int_at_least(ens: DictConfig, key: str, low: int, why: str = "") -> int:
    value = ens.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(
            f"ensemble.{key}", f"ensemble.{key}={value} must be an integer >= {low}{why}"
        )
    return value


def validate_ensemble(cfg: DictConfig) -> dict[str, Any]:
    """:func:`igb.config.validate` plus the ``ensemble.*`` keys; one-line ConfigErrors."""
    from igb.config import validate

    facts = validate(cfg)
    ens = cfg.ensemble
    _int_at_least(ens, "n_inits", 1)
    _int_at_least(ens, "seed0", 0)
    if ens.chunk_size != "auto":
        _int_at_least(ens, "chunk_size", 1, " or auto")
    _int_at_least(ens, "n_boot", 1)
    check_vary(ens.get("vary", "all"))  # issue 15
    bn = facts["batch_norm"]  # issue 15: also a BatchNorm inside an external architecture
    if bn and ens.norm_mode == "batch":
        _int_at_least(
            ens, "batch_size", 2,
            " with norm.kind=batch: BatchNorm cannot normalise a batch of one sample",
        )  # fmt: skip
    else:
        _int_at_least(ens, "batch_size", 1)
    if ens.norm_mode not in NORM_MODES:
        raise ConfigError(
            "ensemble.norm_mode",
            f"ensemble.norm_mode={ens.norm_mode} unknown; allowed: {', '.join(NORM_MODES)}",
        )
    if ens.eval_split not in SPLITS:
        raise ConfigError(
            "ensemble.eval_split",
            f"ensemble.eval_split={ens.eval_split} unknown; allowed: {', '.join(SPLITS)}",
        )
    level = ens.get("ci_level")
    if not isinstance(level, float) or not 0 < level < 1:
        raise ConfigError("ensemble.ci_level", f"ensemble.ci_level={level} must be in (0, 1)")
    device = resolve_device(ens.device)
    resolve_method(ens.method, device)
    resolve_workers(ens.get("workers", "auto"), device)
    available = _split_sizes(cfg.dataset)[ens.eval_split]
    n = ens.eval_samples
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(
                "ensemble.eval_samples",
                f"ensemble.eval_samples={n} must be a positive integer or null (all)",
            )
        if n > available:
            raise ConfigError(
                "ensemble.eval_samples",
                f"ensemble.eval_samples={n} but the {ens.eval_split} split has {available} "
                f"points; use ensemble.eval_samples<={available} or null (all)",
            )
    elif available < 1:
        raise ConfigError(
            "ensemble.eval_split",
            f"the {ens.eval_split} split of dataset={cfg.dataset.name} is empty",
        )
    return {**facts, "eval_points": n or available}


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `python ensemble.py` (the Hydra entry) instead")
