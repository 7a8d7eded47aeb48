"""Speed of the trainability-bias phase diagram (``python -m igb.theory.meanfield ...
--phase-diagram``): the kernel walk on every cell, the mean-field readout and the drawing.

For each setting, the best wall and best CPU time (this process) of ``--repeats`` runs of
the whole command in-process (``igb.launch.meanfield_cli.main``), on the default grid
(20 weight variances x 13 bias variances, 64 walked points) at ``--depth``. The work is
single-threaded numpy (the CLI limits BLAS to one thread), so on a shared machine the CPU
time is what it would take alone; the load average is printed before and after.

    python bench/bench_meanfield.py [--depth 10] [--repeats 2] [--acts tanh,relu]
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

from common import Opt, parse_args  # bench/: on sys.path

from igb.launch.meanfield_cli import main

SETTINGS = {
    "one panel": [],
    "three panels (layer norm none/pre/post)": ["norm=none,pre,post", "norm.kind=layer"],
}


def time_one(argv: list[str], repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            with redirect_stdout(StringIO()):
                code = main([*argv, "--phase-diagram", "--out", str(Path(tmp) / "pd.png")])
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            if code:
                raise SystemExit(f"the command failed ({code}): {argv}")
    return min(walls), min(cpus)


def run() -> None:
    args = parse_args(__doc__, depth=10, repeats=2,
                      acts=Opt("tanh,relu", "activations, comma-separated"))  # fmt: skip
    print(f"load average before: {os.getloadavg()}")
    print(f"{'activation':10s} {'setting':42s} {'wall s':>7s} {'CPU s':>7s}")
    for act in args.acts.split(","):
        for name, extra in SETTINGS.items():
            argv = [f"model.activation={act}", f"model.depth={args.depth}", *extra]
            wall, cpu = time_one(argv, args.repeats)
            print(f"{act:10s} {name:42s} {wall:7.2f} {cpu:7.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    run()
