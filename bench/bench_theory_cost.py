"""Cost of the predicted gamma in several checkouts, interleaved: what a change to the walk saves.

An ensemble job computes ``predict_gamma`` (the infinite-width walk of the evaluation points
and the finite-width correction) once; this times it, in one thread, as a fresh process per
case, round and checkout (``--trees``: folders whose ``src`` is imported, the first the
reference; default: this one), on the settings of the issue's benchmarks:

- ``mlp``: the benchmark MLP (depth 10, width 100, BatchNorm after the ReLU), 2000 points
  of dimension 100, batches of 500;
- ``bn-pre``: the same MLP with BatchNorm before the ReLU on 2000 points of dimension 3072
  (the size of ``dataset=gaussian_blobs``);
- ``ln-gelu``: depth 3, width 256, GELU, LayerNorm after it, the same 3072-dimensional points;
- ``authors``: the authors' scale (depth 1, BatchNorm before, one batch of 20 000 points of
  dimension 1000), of which ``ensemble.theory_points`` = 2000 are walked.

    mkdir /tmp/before && git archive <rev> src | tar -x -C /tmp/before   # the reference
    python bench/bench_theory_cost.py --trees /tmp/before . [--repeats 3] [--cases mlp bn-pre]

Prints, per case, the median CPU seconds of each checkout (one thread: its work, which a
shared machine's load changes less than the wall time, also printed) and its ratio to the
first, and the gammas (a change that only saves work leaves them equal to float
rounding); the load before and after: other processes change every timing.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

from common import Opt, load, parse_args, python  # bench/: on sys.path

ROOT = Path(__file__).resolve().parents[1]
MLP = {"_target_": "igb.nn.mlp.MLP"}
CASES = {
    "mlp": ({**MLP, "depth": 10, "width": 100}, {"placement": "post", "kind": "batch"}, 2000, 100,
            500),
    "bn-pre": ({**MLP, "depth": 10, "width": 100}, {"placement": "pre", "kind": "batch"}, 2000,
               3072, 500),
    "ln-gelu": ({**MLP, "depth": 3, "width": 256, "activation": "gelu"},
                {"placement": "post", "kind": "layer"}, 2000, 3072, 500),
    "authors": ({**MLP, "depth": 1, "width": 100}, {"placement": "pre", "kind": "batch"}, 20000,
                1000, 20000),
}  # fmt: skip
#: the most points walked (``ensemble.theory_points``' default)
POINTS = 2000

#: one timing in a fresh process: argv = case as JSON, the src folder it must import
CHILD = """
import json, sys, time
import torch
import igb.theory.nngp as nngp
assert nngp.__file__.startswith(sys.argv[2]), nngp.__file__
model, norm, n, dim, batch = json.loads(sys.argv[1])
x = torch.randn(n, dim, generator=torch.Generator().manual_seed(0)) + 0.3
if hasattr(nngp, "WalkSettings"):
    walk = nngp.WalkSettings.from_groups(model, norm, batch, max_points=%d)
    run = lambda: nngp.predict_gamma(walk, x)
else:  # a checkout from before the walk's settings were one value
    run = lambda: nngp.predict_gamma(model, norm, x, batch, max_points=%d)
start, cpu = time.perf_counter(), time.process_time()
p = run()
print(json.dumps([time.perf_counter() - start, time.process_time() - cpu, p.gamma, p.gamma_finite]))
""" % (POINTS, POINTS)  # noqa: UP031 (the child's braces stay as they are)

#: one thread: the walk is numpy, and the machine is shared
ONE_THREAD = {f"{lib}_NUM_THREADS": "1" for lib in ("OMP", "OPENBLAS", "MKL")}


def time_once(tree: Path, case: str) -> list[float]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree / "src"), **ONE_THREAD}
    argv = python("-c", CHILD, json.dumps(CASES[case]), str(tree / "src"))
    out = subprocess.run(argv, env=env, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args(
        __doc__,
        trees=Opt([str(ROOT)], "checkouts to compare (the first is the reference)"),
        cases=Opt(list(CASES), "settings timed", {"choices": list(CASES)}),
        repeats=3,
    )
    trees = [Path(t).resolve() for t in args.trees]
    print(f"predict_gamma, one thread, medians of {args.repeats} interleaved; {load()}")
    for case in args.cases:
        wall: dict[Path, list[float]] = {t: [] for t in trees}
        cpu: dict[Path, list[float]] = {t: [] for t in trees}
        values: dict[Path, list[float]] = {}
        for _ in range(args.repeats):
            for tree in trees:
                seconds, cpu_seconds, *values[tree] = time_once(tree, case)
                wall[tree].append(seconds)
                cpu[tree].append(cpu_seconds)
        first = statistics.median(cpu[trees[0]])
        for tree in trees:
            median = statistics.median(cpu[tree])
            gamma, finite = values[tree]
            print(f"{case:8s} CPU {median:6.3f} s  x{median / first:4.2f}  (wall "
                  f"{statistics.median(wall[tree]):6.3f} s)  gamma {gamma!r} finite {finite!r}  "
                  f"{tree}")  # fmt: skip
    print(load())


if __name__ == "__main__":
    main()
