"""Speed of initialization ensembles, measured side by side in one run.

The reference benchmark: 1000 initializations of an MLP (depth 10, width 100, BatchNorm
post, ReLU) with 10 classes on 2000 centred Gaussian points of dimension 100.
Prints, all measured by this script on this machine:

1. the machine's fp32 matmul rate (a large square GEMM and the model's own GEMM shape,
   best of several repeats, all torch threads);
2. the ensemble: wall time of the 1000 initializations (the default ``auto`` method,
   then loop / vmap / worker / chunk variants), the achieved GFLOP/s (matmul FLOPs of
   the forward, counted by ``torch.utils.flop_counter``) and its share of the matmul rate;
3. one fresh ``python ensemble.py ... ensemble.n_inits=2`` process per initialization (the
   smallest ensemble the preflight accepts: gamma needs two; its time is start-up bound, so it
   stands for the cost of one process per initialization)
   (a sample of them, extrapolated to 1000) against one ``python ensemble.py ...
   ensemble.n_inits=1000`` process, and against the in-process evaluation time.

    python bench/bench_ensemble.py [--n-inits 1000] [--procs 3] [--variants] [--repeats 2]

Other processes on the machine change every number here: the load average is printed
before and after, and every timing is the best of ``--repeats``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import Opt, compose_cfg, eval_inputs, load, parse_args  # bench/: on sys.path
from omegaconf import DictConfig
from torch.utils.flop_counter import FlopCounterMode

from igb.ensemble import (
    EvaluationPlan,
    empty_model,
    evaluate_ensemble,
    resolve_device,
    resolve_method,
)
from igb.metrics.measure import predict_logits

ROOT = Path(__file__).resolve().parents[1]

#: the reference benchmark configuration, as ensemble.py overrides
BENCH = [
    "model=mlp",
    "model.depth=10",
    "model.width=100",
    "norm=post",
    "norm.kind=batch",
    "dataset=gaussian_blobs",
    "dataset.num_classes=10",
    "dataset.num_samples=2000",
    "dataset.shape=[100]",
    "dataset.separation=0.0",
    "dataset.val_fraction=0.0",
    "dataset.test_fraction=0.0",
    "ensemble.eval_split=train",
    "ensemble.eval_samples=2000",
    "ensemble.progress=false",
]


def matmul_rate(m: int, k: int, n: int, seconds: float = 1.0, repeats: int = 5) -> float:
    """Best GFLOP/s of ``(m x k) @ (k x n)`` in fp32 over ``repeats`` timed bursts."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    for _ in range(3):
        torch.mm(a, b, out=out)
    t = time.perf_counter()
    reps = 0
    while time.perf_counter() - t < 0.2:
        torch.mm(a, b, out=out)
        reps += 1
    reps = max(1, int(reps * seconds / 0.2 / repeats))
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - t) / 1e9)
    return best


def threaded_matmul_rate(m: int, k: int, n: int, threads: int) -> float:
    """Total GFLOP/s of ``threads`` Python threads, each with one intra-op thread, running
    the GEMM concurrently (how the CPU loop uses the cores)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> float:
        torch.set_num_threads(1)
        return matmul_rate(m, k, n, seconds=1.0, repeats=3)

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(one, range(threads)))


def forward_flops(cfg: DictConfig, x: torch.Tensor, num_classes: int) -> int:
    """Matmul FLOPs of one initialization's evaluation (as predict_logits runs it)."""
    model = empty_model(cfg.model, cfg.norm, tuple(x.shape[1:]), num_classes, "cpu")
    torch.manual_seed(0)
    from igb.nn.init import initialize

    initialize(model, cfg.model.get("init", "kaiming_normal"))
    counter = FlopCounterMode(display=False)
    with counter:
        predict_logits(model, x, int(cfg.ensemble.batch_size))
    return int(counter.get_total_flops())


def time_ensemble(cfg, x, num_classes, n_inits, repeats, **kw) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        plan = EvaluationPlan(
            cfg.model,
            cfg.norm,
            num_classes,
            batch_size=int(kw.get("batch_size", cfg.ensemble.batch_size)),
            device=kw.get("device", "cpu"),
            method=kw.get("method", "auto"),
            chunk_size=kw.get("chunk_size", 64),
            workers=kw.get("workers", "auto"),
        )
        r = evaluate_ensemble(plan, x, range(n_inits))
        if r.eval_time_s < best:
            best, result = r.eval_time_s, r
    return best, result


def time_process(overrides: list[str], tmp: Path, tag: str) -> float:
    env = {**os.environ, "IGB_ROOT": str(tmp), "WANDB_MODE": "disabled"}
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "ensemble.py"), *overrides, f"hydra.run.dir={tmp / tag}"],
        cwd=tmp,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t


def main() -> None:
    args = parse_args(
        __doc__,
        n_inits=1000,
        procs=Opt(3, "process-per-init sample size"),
        repeats=Opt(2, "best of this many timings"),
        batch_size=Opt(None, "ensemble.batch_size", {"type": int}),
        device="auto",
        variants=Opt(False, "also time loop/vmap/workers/chunks"),
        variant_inits=Opt(200, "inits per variant"),
    )

    overrides = list(BENCH)
    if args.batch_size:
        overrides.append(f"ensemble.batch_size={args.batch_size}")
    overrides.append(f"ensemble.device={args.device}")
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    if device.type == "cpu":
        print("no GPU used: CPU-only figures" if not torch.cuda.is_available() else "")
    else:
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    print(f"before: {load()}")

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        cfg = compose_cfg("ensemble", overrides, tmp / "job")
        x, dm = eval_inputs(cfg)
        n_cls = dm.num_classes
        flops = forward_flops(cfg, x, n_cls)
        n = args.n_inits
        print(
            f"model: MLP depth 10 width 100, BatchNorm post (batch statistics, batches of "
            f"{cfg.ensemble.batch_size}); {x.shape[0]} points x {tuple(x.shape[1:])}, "
            f"{n_cls} classes; {flops / 1e6:.1f} MFLOP (matmul) per initialization"
        )

        # 1. the machine's matmul rate
        if device.type == "cpu":
            threads = torch.get_num_threads()
            rates = {
                f"2048^3, {threads} threads": matmul_rate(2048, 2048, 2048),
                f"2000x100 @ 100x100, {threads} threads": matmul_rate(x.shape[0], 100, 100),
                f"2000x100 @ 100x100, {threads} x 1-thread": threaded_matmul_rate(
                    x.shape[0], 100, 100, threads
                ),
            }
        else:
            rates = {"8192^3 on the GPU": _gpu_rate(device)}
        ref = max(rates.values())
        print("\nfp32 matmul rate (best of several bursts):")
        for name, r in rates.items():
            print(f"  {name:<34} {r:7.1f} GFLOP/s")
        print(f"  reference (the highest)            {ref:7.1f} GFLOP/s   [{load()}]")

        # 2. the ensemble, default method; the default batch size and whole-set batches
        # timed in alternation (best of --repeats each), so a burst of load from another
        # process does not hit one of them only
        method = resolve_method(cfg.ensemble.method, device)
        default_bs, whole_bs = int(cfg.ensemble.batch_size), int(x.shape[0])
        sizes = [default_bs] + ([whole_bs] if whole_bs != default_bs else [])
        best: dict[int, tuple[float, object]] = {}
        for _ in range(args.repeats):
            for bs in sizes:
                w, r = time_ensemble(cfg, x, n_cls, n, 1, device=device, batch_size=bs)
                if bs not in best or w < best[bs][0]:
                    best[bs] = (w, r)
        wall, res = best[default_bs]
        rate = flops * n / wall / 1e9
        print(f"\nensemble ({res.method}, {res.workers} workers, auto={method}, best of "
              f"{args.repeats}): {n} inits in {wall:.2f} s = {1e3 * wall / n:.2f} ms/init; "
              f"{rate:.1f} GFLOP/s = {100 * rate / ref:.0f}% of the matmul rate; "
              f"gamma = {res.gamma:.3g}")  # fmt: skip
        if whole_bs in best and whole_bs != default_bs:
            w2 = best[whole_bs][0]
            r2 = flops * n / w2 / 1e9
            print(f"same, BatchNorm statistics over the whole set (ensemble.batch_size="
                  f"{whole_bs}): {w2:.2f} s = {1e3 * w2 / n:.2f} ms/init; {r2:.1f} GFLOP/s = "
                  f"{100 * r2 / ref:.0f}% of the matmul rate")  # fmt: skip
        print(f"[{load()}; the load average counts this benchmark's own threads]")

        if args.variants:
            nv = args.variant_inits
            threads = torch.get_num_threads()
            print(f"\nvariants ({nv} inits each, best of {args.repeats}; 'T threads' = intra-op):")
            variants = [
                (f"loop, 1 worker x {threads} threads", threads, {"method": "loop", "workers": 1}),
                ("loop, 1 worker x 1 thread", 1, {"method": "loop", "workers": 1}),
                (f"loop, {threads} workers x 1 thread", threads, {"method": "loop"}),
                ("loop, 3 workers x 1 thread", threads, {"method": "loop", "workers": 3}),
            ]
            for c in (8, 32, 128):
                kw = {"method": "vmap", "chunk_size": c}
                variants.append((f"vmap, chunk {c}, {threads} threads", threads, kw))
                variants.append((f"vmap, chunk {c}, 1 thread", 1, kw))
            for name, nthreads, kw in variants:
                torch.set_num_threads(nthreads)
                try:
                    w, r = time_ensemble(cfg, x, n_cls, nv, args.repeats, device=device, **kw)
                finally:
                    torch.set_num_threads(threads)
                rr = flops * nv / w / 1e9
                print(
                    f"  {name:<34} {1e3 * w / nv:7.2f} ms/init  {rr:6.1f} GFLOP/s  "
                    f"({100 * rr / ref:.0f}%)  [{load()}]",
                    flush=True,
                )

        # 3. process per initialization vs one process for all
        procs = [
            time_process([*overrides, "ensemble.n_inits=2", f"ensemble.seed0={i}"], tmp, f"p{i}")
            for i in range(args.procs)
        ]
        per_proc = statistics.mean(procs)
        whole = min(
            time_process([*overrides, f"ensemble.n_inits={n}"], tmp, f"all{r}")
            for r in range(args.repeats)
        )
        extrapolated = per_proc * n
        print(
            f"\none process per initialization: {', '.join(f'{p:.2f}' for p in procs)} s "
            f"(mean {per_proc:.2f} s) -> {extrapolated:.0f} s for {n} (extrapolated)"
        )
        print(
            f"one `python ensemble.py ensemble.n_inits={n}` process: {whole:.2f} s "
            f"(startup, data, {n} inits, bootstrap, files) -> speed-up "
            f"{extrapolated / whole:.0f}x"
        )
        print(f"in-process evaluation of the {n} ({wall:.2f} s) -> speed-up "
              f"{extrapolated / wall:.0f}x")  # fmt: skip
    print(f"\nafter: {load()}")
    targets = [
        (f"under 10 s for {n}", wall < 10),
        ("at least 40% of the matmul rate", rate >= 0.4 * ref),
        ("at least 100x over process-per-init", extrapolated / wall >= 100),
    ]
    print("targets: " + "; ".join(f"{t}: {'met' if ok else 'MISSED'}" for t, ok in targets))


def _gpu_rate(device: torch.device) -> float:
    a = torch.randn(8192, 8192, device=device)
    b = torch.randn(8192, 8192, device=device)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        torch.cuda.synchronize(device)
        best = max(best, 2 * 8192**3 * 10 / (time.perf_counter() - t) / 1e9)
    return best


if __name__ == "__main__":
    main()
