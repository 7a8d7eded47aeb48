"""Head ensembles (``ensemble.vary=head``): the backbone run per head vs once, cached.

A torchvision ResNet-18 (its own initialization, seed 0 backbone) at 64x64 on N random
images, 10 classes, BatchNorm with batch statistics on batches of ``--batch``. The old
path (the whole model run for every head: ``reinitializer(vary="head")`` + the loop
runner) is timed on ``--old`` heads and extrapolated; the cached path
(:mod:`igb.ensemble.heads`, what ``evaluate_ensemble`` does now) runs ``--heads`` heads.
The rows of the heads both ran are compared bit for bit; the time of the cached path is
split into the backbone's forward (once) and the heads (each one: rebuilding the seed's
parameters, which replays the architecture's initialization, plus one small matmul).

    OMP_NUM_THREADS=2 python bench/bench_heads.py [--heads 200] [--old 3]
        [--head-init native|torch_default] [--figure PATH]

With ``--head-init torch_default`` the head is drawn alone from the seed, so a head
costs its own draw only; with ``native`` (torchvision's) each head replays the whole
architecture's initialization, which dominates.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import NATIVE, RESNET18, Opt, parse_args, random_images  # bench/: on sys.path

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.ensemble.loop import run_loop
from igb.ensemble.runtime import Runtime
from igb.ensemble.statistics import StatisticsStore
from igb.nn.reinit import reinitializer


def old_path(cfg: dict, x: torch.Tensor, seeds: list[int], batch: int) -> tuple[dict, float]:
    device = torch.device("cpu")
    store = StatisticsStore(len(seeds), 10)
    t0 = time.perf_counter()
    reinit = reinitializer(cfg, NATIVE, x.shape[1:], 10, device, "head", seeds[0])
    plan = EvaluationPlan(cfg, NATIVE, 10, batch, device=device, workers=1)
    with torch.random.fork_rng(devices=[]):
        run_loop(plan, x, seeds, Runtime(reinit, store))
    return store.arrays, time.perf_counter() - t0


def main() -> None:
    head_init = Opt("native", settings={"choices": ["native", "torch_default"]})
    args = parse_args(__doc__, heads=200, old=3, points=200, batch=100, head_init=head_init,
                      figure=None)  # fmt: skip
    cfg = {**RESNET18, "head_init": args.head_init}
    x = random_images(args.points)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, N={args.points}, "
          f"model.head_init={args.head_init}")  # fmt: skip
    old, t_old = old_path(cfg, x, list(range(args.old)), args.batch)
    per_old = t_old / args.old
    t0 = time.perf_counter()
    plan = EvaluationPlan(cfg, NATIVE, 10, args.batch, vary="head", backbone_seed=0)
    new = evaluate_ensemble(plan, x, range(args.heads))
    t_new = time.perf_counter() - t0
    same = all(np.array_equal(getattr(new, k)[: args.old], v) for k, v in old.items())
    print(f"old path: {per_old:.3f} s a head ({args.old} heads, {t_old:.1f} s)")
    print(f"cached:   {t_new:.1f} s for {args.heads} heads ({t_new / args.heads * 1e3:.1f} ms a "
          f"head, the backbone's forward included)")  # fmt: skip
    extrapolated = per_old * args.heads
    print(
        f"old path for {args.heads} heads (extrapolated): {extrapolated:.0f} s; cached / old "
        f"= {t_new / extrapolated:.3%}; rows of the first {args.old} heads identical: {same}"
    )
    print(f"gamma sampled {new.gamma:.4g}, Gaussian-head closed form "
          f"{new.extra['gamma_gaussian_head']:.4g}")  # fmt: skip
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 2.4))
        ax.barh(["backbone per head\n(extrapolated)", "cached features"], [extrapolated, t_new],
                color=["#999999", "#1f77b4"])  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel(f"seconds for {args.heads} heads (CPU)")
        ax.set_title(f"ResNet-18 64x64, N={args.points}, head_init={args.head_init}: vary=head",
                     fontsize=9)  # fmt: skip
        for i, v in enumerate([extrapolated, t_new]):
            ax.text(v, i, f" {v:.0f} s", va="center")
        fig.tight_layout()
        fig.savefig(args.figure, dpi=120)


if __name__ == "__main__":
    main()
