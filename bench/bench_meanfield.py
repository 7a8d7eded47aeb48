"""Speed of the trainability-bias phase diagram (what ``python -m igb.theory.meanfield ...
--phase-diagram`` computes): the kernel walk on every cell, the mean-field readout on
every cell and the edge line, and the drawing.

For each setting, the best wall and best CPU time (this process) of ``--repeats`` runs on
the CLI's default grid (20 weight variances x 13 bias variances, 64 walked points) at
``--depth``, on the ensemble's default evaluation set. The work is single-threaded numpy
(the panel limits BLAS to one thread), so on a shared machine the CPU time is what it
would take alone; the load average is printed before and after.

    python bench/bench_meanfield.py [--depth 10] [--repeats 2] [--acts tanh,relu]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from common import Opt, compose_cfg, eval_inputs, parse_args  # bench/: on sys.path
from omegaconf import OmegaConf

from igb.jobs.identity import norm_label
from igb.theory.meanfield.phase import (
    BIAS_GRID,
    POINTS,
    WEIGHT_GRID,
    Plane,
    WalkedData,
    compute_panel,
    draw,
    grid,
)

SETTINGS = {
    "one panel (no norm)": [{"placement": "none"}],
    "three panels (layer norm none/pre/post)": [
        {"placement": "none"},
        {"placement": "pre", "kind": "layer"},
        {"placement": "post", "kind": "layer"},
    ],
}
PLANE = Plane(grid(WEIGHT_GRID, "weight"), grid(BIAS_GRID, "bias"), POINTS)


def diagram(cfg, norms: list[dict], out: Path) -> None:
    x, dm = eval_inputs(cfg)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    data = WalkedData(
        x.double().numpy(), int(cfg.ensemble.batch_size), cfg.ensemble.norm_mode, dm.num_classes
    )
    panels = [
        compute_panel(model, norm, norm_label(norm["placement"], norm.get("kind")), data, PLANE)
        for norm in norms
    ]
    draw(panels, out)


def run() -> None:
    args = parse_args(__doc__, depth=10, repeats=2,
                      acts=Opt("tanh,relu", "activations, comma-separated"))  # fmt: skip
    print(f"load average before: {os.getloadavg()}")
    print(f"{'activation':10s} {'setting':42s} {'wall s':>7s} {'CPU s':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for act in args.acts.split(","):
            overrides = [f"model.activation={act}", f"model.depth={args.depth}"]
            cfg = compose_cfg("ensemble", overrides, Path(tmp))
            for name, norms in SETTINGS.items():
                walls, cpus = [], []
                for _ in range(args.repeats):
                    t0, c0 = time.perf_counter(), time.process_time()
                    diagram(cfg, norms, Path(tmp) / "pd.png")
                    walls.append(time.perf_counter() - t0)
                    cpus.append(time.process_time() - c0)
                print(f"{act:10s} {name:42s} {min(walls):7.2f} {min(cpus):7.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    run()
