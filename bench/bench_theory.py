"""Speed of the predicted gamma (igb.theory.nngp), and prediction against measurement.

1. Timing: ``predict_gamma`` (the infinite-width walk plus the finite-width correction at
   ``--width``; the correction alone is timed too) on the default evaluation set (the
   first ``--n`` training points of ``dataset=gaussian_blobs``, 3072 dimensions) for a
   ``--depth``-deep MLP, for ReLU (closed form) and the smooth activations (Hermite
   series), every placement; best of ``--repeats``.
2. ``--compare``: the predicted gamma beside the measured one (``evaluate_ensemble``,
   ``--inits`` initializations, 95% bootstrap interval) at the widths ``--widths``, on
   the first ``--compare-n`` points, batches of half of them, for depths 1, 5, 10.

    python bench/bench_theory.py [--n 1000] [--depth 20] [--width 100] [--repeats 3]
    python bench/bench_theory.py --compare [--widths 100,1024] [--inits 100] \
        [--acts relu,gelu] [--norms none,batch-pre,batch-post,layer-pre,layer-post,rms-pre]

Other processes change every timing: the load average is printed before and after.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from common import compose_cfg, eval_inputs, parse_args  # bench/: on sys.path

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.metrics import gamma_bootstrap_ci
from igb.theory.nngp import WalkSettings, architecture, predict_gamma
from igb.theory.nngp.finite import correction

NORMS = {
    "none": {"placement": "none"},
    "batch-pre": {"placement": "pre", "kind": "batch"},
    "batch-post": {"placement": "post", "kind": "batch"},
    "layer-pre": {"placement": "pre", "kind": "layer"},
    "layer-post": {"placement": "post", "kind": "layer"},
    "rms-pre": {"placement": "pre", "kind": "rms"},
}


def mlp(depth: int, activation: str, width: int) -> dict:
    return {"_target_": "igb.nn.mlp.MLP", "depth": depth, "width": width, "activation": activation}


def default_inputs(n: int) -> torch.Tensor:
    cfg = compose_cfg("ensemble", [f"ensemble.eval_samples={n}"], Path(tempfile.mkdtemp()))
    return eval_inputs(cfg)[0]


def timing(x: torch.Tensor, depth: int, repeats: int, width: int) -> None:
    """Best wall and best CPU time (this process) of ``repeats`` predictions per setting,
    and the best CPU time of the finite-width correction alone.

    The prediction runs in one thread (numpy), so on a quiet machine wall = CPU time; on a
    shared one the CPU time is what it would take alone.
    """
    print(f"predict_gamma, N = {x.shape[0]} points of dimension {x[0].numel()}, depth {depth}")
    print(f"{'activation':10s} {'norm':11s} {'gamma':>11s} {'finite':>11s} {'wall ms':>8s} "
          f"{'cpu ms':>8s} {'finite cpu ms':>13s}")  # fmt: skip
    xn = x.double().numpy()
    for act in ("relu", "gelu", "tanh"):
        for name, norm in NORMS.items():
            wall = cpu = fin = float("inf")
            arch = architecture(mlp(depth, act, width), norm)
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                pred = predict_gamma(WalkSettings.from_groups(mlp(depth, act, width), norm, 500), x)
                wall = min(wall, time.perf_counter() - t0)
                cpu = min(cpu, time.process_time() - c0)
                c0 = time.process_time()
                correction(xn, arch, 500)
                fin = min(fin, time.process_time() - c0)
            print(
                f"{act:10s} {name:11s} {pred.gamma:11.4g} {pred.gamma_finite:11.4g} "
                f"{wall * 1e3:8.0f} {cpu * 1e3:8.0f} {fin * 1e3:13.0f}"
            )


def compare(
    x: torch.Tensor, widths: list[int], n_inits: int, acts: list[str], norms: list[str]
) -> None:
    batch = x.shape[0] // 2
    print(f"\nmeasured vs predicted: N = {x.shape[0]}, batches of {batch}, {n_inits} inits, C = 10")
    print(f"{'act':5s} {'norm':11s} {'depth':>5s} {'width':>6s} {'theory':>9s} {'finite':>9s} "
          f"{'measured':>9s} "
          f"{'95% interval':>21s}")  # fmt: skip
    for act in acts:
        for name in norms:
            norm = NORMS[name]
            for depth in (1, 5, 10):
                for width in widths:
                    pred = predict_gamma(
                        WalkSettings.from_groups(mlp(depth, act, width), norm, batch), x
                    )
                    plan = EvaluationPlan(mlp(depth, act, width), norm, 10, batch_size=batch)
                    res = evaluate_ensemble(plan, x, range(n_inits))
                    lo, hi = gamma_bootstrap_ci(res.mu, res.s2)
                    print(
                        f"{act:5s} {name:11s} {depth:5d} {width:6d} {pred.gamma:9.4g} "
                        f"{pred.gamma_finite:9.4g} "
                        f"{res.gamma:9.4g} [{lo:9.4g}, {hi:9.4g}]",
                        flush=True,
                    )


def main() -> None:
    args = parse_args(__doc__, n=1000, depth=20, width=100, repeats=3, compare=False,
                      compare_n=200, widths="100,1024", inits=100, acts="relu,gelu",
                      norms=",".join(NORMS))  # fmt: skip
    print(f"load average before: {os.getloadavg()}, torch threads {torch.get_num_threads()}")
    if args.compare:
        widths = [int(w) for w in args.widths.split(",")]
        acts, norms = args.acts.split(","), args.norms.split(",")
        compare(default_inputs(args.compare_n), widths, args.inits, acts, norms)
    else:
        timing(default_inputs(args.n), args.depth, args.repeats, args.width)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
