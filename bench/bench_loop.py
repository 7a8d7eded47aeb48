"""igb's ensemble job against the plain loop script (bench/loop_script.py), whole processes.

For each size, ``python ensemble.py <benchmark> ensemble.n_inits=N`` (every file the job
writes: blocks, inits.csv, summary.json with the bootstrap and the theory, histogram.png)
and ``python bench/loop_script.py N`` (the evaluation alone) run in turn, ``--repeats``
rounds; the median of each and their ratio are printed with the load average (goals on
the benchmark MLP: 40 within 1.5x, 200 at most 1x, 1000 at most 0.6x; the authors' scale
at most 1x at 1000).

    python bench/bench_loop.py --sizes 40 200 1000 --repeats 3
    python bench/bench_loop.py --setting authors --sizes 1000 --repeats 3
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import Opt, interleaved, load, parse_args, python  # bench/: on sys.path

ROOT = Path(__file__).resolve().parents[1]
#: the issue's benchmark, as ensemble.py overrides (the loop script's ``mlp``)
MLP = ["model=mlp", "model.depth=10", "model.width=100", "norm=post", "norm.kind=batch",
       "dataset.num_classes=10", "dataset.num_samples=2000", "dataset.shape=[100]",
       "dataset.separation=0.0", "dataset.val_fraction=0.0", "dataset.test_fraction=0.0",
       "ensemble.eval_samples=2000", "ensemble.batch_size=500"]  # fmt: skip
#: the authors' two blobs, depth 1, BatchNorm before the ReLU, one batch of all 20 000 points
AUTHORS = ["model=mlp", "model.depth=1", "model.width=100", "norm=pre", "norm.kind=batch",
           "dataset=authors_gaussian", "ensemble.eval_samples=null",
           "ensemble.batch_size=20000"]  # fmt: skip
SETTINGS = {"mlp": MLP, "authors": AUTHORS}


def main() -> None:
    args = parse_args(
        __doc__,
        sizes=Opt([40, 200, 1000], "numbers of initializations", {"type": int}),
        setting=Opt("mlp", "mlp (the benchmark) or authors", {"choices": sorted(SETTINGS)}),
        repeats=3,
    )
    overrides = [*SETTINGS[args.setting], "ensemble.progress=false"]
    print(f"{args.setting}: {' '.join(overrides)}")
    print(f"{'inits':>6s} {'igb s':>8s} {'loop s':>8s} {'igb / loop':>11s}  load")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            cases = {
                "igb": lambda r, n=n: python(
                    str(ROOT / "ensemble.py"),
                    *overrides,
                    f"ensemble.n_inits={n}",
                    f"hydra.run.dir={tmp}/{n}-{r}",
                ),  # fmt: skip
                "loop": lambda r, n=n: python(
                    str(ROOT / "bench" / "loop_script.py"), str(n), args.setting
                ),
            }
            t = interleaved(cases, args.repeats, {"WANDB_MODE": "disabled"})
            print(f"{n:6d} {t['igb']:8.2f} {t['loop']:8.2f} {t['igb'] / t['loop']:11.2f}  "
                  f"{load()}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
