"""Head ensembles (``ensemble.vary=head``): the backbone run per head vs once, cached.

A torchvision ResNet-18 (its own initialization, seed 0 backbone) at 64x64 on N random
images, 10 classes, BatchNorm with batch statistics on batches of ``--batch``. The old
path (the whole model run for every head: ``reinitializer(vary="head")`` + the loop
runner) is timed on ``--old`` heads and extrapolated; the cached path
(:mod:`igb.ensemble.heads`, what ``evaluate_ensemble`` does now) runs ``--heads`` heads.
The rows of the heads both ran are compared bit for bit.

Then the cost of one head on the cached features, as a percentage of one whole
initialization (``build_model``, timed alike), in ``--repeats`` interleaved rounds
(medians): each head replaying the whole initialization (how native heads were drawn
before; ``--old`` heads a round) against the head's draws after a jump of the generator
past the backbone's (:mod:`igb.nn.head_draws`; ``--heads`` heads a round). Both include
the head's matmul and statistics; their rows are compared bit for bit.

    OMP_NUM_THREADS=1 python bench/bench_heads.py [--heads 200] [--old 3] [--repeats 3]
        [--head-init native|torch_default] [--figure PATH]

With ``--head-init torch_default`` the head is drawn alone from the seed, so a head
costs its own draw only; with ``native`` (torchvision's) the backbone's draws come first.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import numpy as np
import torch
from common import NATIVE, RESNET18, Opt, load, parse_args, random_images  # bench/: on sys.path

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.ensemble.heads import CachedHeads, cached_heads
from igb.ensemble.loop import run_loop
from igb.ensemble.runtime import Runtime
from igb.ensemble.statistics import StatisticsStore
from igb.nn.build import build_model
from igb.nn.reinit import reinitializer, seeded_states


def old_path(cfg: dict, x: torch.Tensor, seeds: list[int], batch: int) -> tuple[dict, float]:
    device = torch.device("cpu")
    store = StatisticsStore(len(seeds), 10)
    t0 = time.perf_counter()
    reinit = reinitializer(cfg, NATIVE, x.shape[1:], 10, device, "head", seeds[0])
    plan = EvaluationPlan(cfg, NATIVE, 10, batch, device=device, workers=1)
    with torch.random.fork_rng(devices=[]):
        run_loop(plan, x, seeds, Runtime(reinit, store))
    return store.arrays, time.perf_counter() - t0


def _per_head(heads: CachedHeads, seeds: list[int]) -> tuple[float, dict]:
    store = StatisticsStore(len(seeds), 10)
    t0 = time.perf_counter()
    heads.run(seeds, store, lambda n: None)
    return (time.perf_counter() - t0) / len(seeds), store.arrays


def head_costs(cfg: dict, x: torch.Tensor, args) -> None:  # noqa: ANN001
    """Per-head cost on cached features as % of a whole initialization, before and after."""
    plan = EvaluationPlan(cfg, NATIVE, 10, args.batch, vary="head", backbone_seed=0)
    jumped = cached_heads(plan, x, 0)
    assert isinstance(jumped, CachedHeads), jumped
    built, head = seeded_states(cfg, NATIVE, tuple(x.shape[1:]), 10, torch.device("cpu"))

    def replay_whole(seeds: list[int]) -> list[dict]:  # igb.nn.reinit.head_sampler's fallback
        return [{k: v for k, v in built(s).items() if k in head} for s in seeds]

    whole = dataclasses.replace(jumped, sample=replay_whole)
    times: dict[str, list[float]] = {"init": [], "whole": [], "jumped": []}
    rows = {}
    for r in range(args.repeats):
        t0 = time.perf_counter()
        for s in range(args.old):
            build_model(cfg, NATIVE, tuple(x.shape[1:]), 10, 10_000 * r + s)
        times["init"].append((time.perf_counter() - t0) / args.old)
        seeds = [10_000 * r + s for s in range(1, args.heads + 1)]
        t, rows["whole"] = _per_head(whole, seeds[: args.old])
        times["whole"].append(t)
        t, rows["jumped"] = _per_head(jumped, seeds)
        times["jumped"].append(t)
    init, per = statistics.median(times["init"]), {k: statistics.median(times[k])
                                                   for k in ("whole", "jumped")}  # fmt: skip
    same = all(np.array_equal(rows["jumped"][k][: args.old], v) for k, v in rows["whole"].items())
    print(f"whole initialization (build_model): {init * 1e3:.1f} ms; per head on cached "
          f"features, medians of {args.repeats} interleaved rounds ({load()}):")  # fmt: skip
    print(f"  replaying the whole initialization: {per['whole'] * 1e3:.2f} ms = "
          f"{per['whole'] / init:.1%} of a whole initialization")  # fmt: skip
    how = ("jumping the generator past the backbone's draws" if args.head_init == "native"
           else "drawing the head alone")  # fmt: skip
    print(
        f"  {how}: {per['jumped'] * 1e3:.2f} ms = {per['jumped'] / init:.2%} of a whole "
        "initialization"
    )
    print(f"  rows of the first {args.old} heads a round identical: {same}")


def main() -> None:
    head_init = Opt("native", settings={"choices": ["native", "torch_default"]})
    args = parse_args(__doc__, heads=200, old=3, points=200, batch=100, head_init=head_init,
                      repeats=3, figure=None)  # fmt: skip
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
    head_costs(cfg, x, args)
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
