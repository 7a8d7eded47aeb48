"""Cost of ``ensemble.profile=true``: the same ensemble with and without the profile's hooks.

A torchvision ResNet-18 (its own initialization from each seed, ``vary=all``) at 64x64 on
N random images, 10 classes, BatchNorm on batch statistics, the loop method (what a
profile uses). The two runs alternate ``--repeats`` times (load drift on a shared
machine hits both alike); reported: the median wall time of each and their ratio, and
the number of entries the profile records (every module's output: one forward pass per
initialization, a few reductions per module). Process CPU time is reported too: on a
shared machine it is far less sensitive to the other processes' load than wall time
(use ``OMP_NUM_THREADS=1`` so that it holds no spin-waiting).

    OMP_NUM_THREADS=2 python bench/bench_profile.py [--inits 16] [--points 200] [--repeats 1]
"""

from __future__ import annotations

import statistics
import time

import torch
from common import NATIVE, RESNET18, parse_args, random_images  # bench/: on sys.path

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.ensemble.profile import Profiler


def main() -> None:
    args = parse_args(__doc__, inits=16, points=200, batch=100, repeats=1, device="cpu")
    x = random_images(args.points)
    kw = {"batch_size": args.batch, "method": "loop", "device": args.device, "workers": 1}
    times: dict[str, list[float]] = {"plain": [], "profile": []}
    cpu: dict[str, list[float]] = {"plain": [], "profile": []}
    entries = 0
    for _ in range(args.repeats):
        for variant in times:
            profiler = Profiler("net.fc") if variant == "profile" else None
            t0, c0 = time.perf_counter(), time.process_time()
            plan = EvaluationPlan(RESNET18, NATIVE, 10, **kw)
            res = evaluate_ensemble(plan, x, range(args.inits), profiler=profiler)
            times[variant].append(time.perf_counter() - t0)
            cpu[variant].append(time.process_time() - c0)
            if profiler is not None:
                entries = len(profiler.table(n_boot=10))
                head = profiler.table(n_boot=200)[-1]
                print(f"gamma {res.gamma:.3g}; head-input gamma_l {head['gamma']:.3g} "
                      f"[{head['gamma_lo']:.3g}, {head['gamma_hi']:.3g}]")  # fmt: skip
    plain, prof = (statistics.median(times[v]) for v in ("plain", "profile"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"N={args.points}, {args.inits} inits")  # fmt: skip
    print(f"wall: without profile {plain:.1f} s, with ({entries} entries) {prof:.1f} s: "
          f"{prof / plain:.3f}x")  # fmt: skip
    plain, prof = (statistics.median(cpu[v]) for v in ("plain", "profile"))
    print(f"process CPU time (less sensitive to other processes' load): {plain:.1f} s vs "
          f"{prof:.1f} s: {prof / plain:.3f}x")  # fmt: skip


if __name__ == "__main__":
    main()
