"""Measured gamma over a grid of MLP widths, depths, norms and activations (JSON lines).

The validation data of the finite-width prediction (docs/theory.md): each row holds the
measured gamma of ``--inits`` initializations on the first ``--n`` points of the default
evaluation set (batches of ``--batch``) with its 95% bootstrap interval. Rows already in
``--out`` are skipped, so an interrupted grid resumes. ``bench/bench_theory.py --table``
puts the predictions beside them.

    OMP_NUM_THREADS=1 python bench/finite_width_grid.py --out grid.jsonl \
        --acts relu --norms none,batch-pre,layer-post --widths 32,64,100,256 --depths 1,5,10,20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from igb.ensemble import eval_set, evaluate_ensemble
from igb.launch.preflight import compose_job
from igb.metrics import gamma_bootstrap_ci

NORMS = {
    "none": {"placement": "none"},
    "batch-pre": {"placement": "pre", "kind": "batch"},
    "batch-post": {"placement": "post", "kind": "batch"},
    "layer-pre": {"placement": "pre", "kind": "layer"},
    "layer-post": {"placement": "post", "kind": "layer"},
    "rms-pre": {"placement": "pre", "kind": "rms"},
    "rms-post": {"placement": "post", "kind": "rms"},
}


def mlp(depth: int, activation: str, width: int) -> dict:
    return {"_target_": "igb.nn.mlp.MLP", "depth": depth, "width": width, "activation": activation}


def default_inputs(n: int) -> torch.Tensor:
    cfg = compose_job("ensemble", [f"ensemble.eval_samples={n}"])
    return eval_set(cfg)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--acts", default="relu")
    p.add_argument("--norms", default="none,batch-pre,layer-post")
    p.add_argument("--widths", default="32,64,100,256")
    p.add_argument("--depths", default="1,5,10,20")
    p.add_argument("--inits", type=int, default=200)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--batch", type=int, default=500)
    a = p.parse_args()
    out = Path(a.out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["activation"], r["norm"], r["depth"], r["width"], r["n_inits"], r["n"]))
    x = default_inputs(a.n)
    for act in a.acts.split(","):
        for name in a.norms.split(","):
            for width in (int(w) for w in a.widths.split(",")):
                for depth in (int(d) for d in a.depths.split(",")):
                    key = (act, name, depth, width, a.inits, a.n)
                    if key in done:
                        continue
                    t0 = time.perf_counter()
                    res = evaluate_ensemble(
                        mlp(depth, act, width), NORMS[name], x, 10, range(a.inits),
                        batch_size=a.batch, workers=1,
                    )  # fmt: skip
                    lo, hi = gamma_bootstrap_ci(res.mu, res.s2, n_boot=1000)
                    row = dict(zip(("activation", "norm", "depth", "width", "n_inits", "n"), key))
                    row.update(batch=a.batch, gamma=res.gamma, lo=lo, hi=hi)
                    row["seconds"] = time.perf_counter() - t0
                    with out.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
