"""Measured gamma over a grid of MLP widths, depths, norms and activations (JSON lines).

The validation data of the finite-width prediction (docs/theory.md): each row holds the
measured gamma of ``--inits`` initializations on the first ``--n`` points of the default
evaluation set (batches of ``--batch``) with its 95% bootstrap interval. Rows already in
``--out`` are skipped, so an interrupted grid resumes. ``--report`` puts the infinite- and
finite-width predictions beside them (a markdown table) and draws gamma against width.

    OMP_NUM_THREADS=1 python bench/finite_width_grid.py --out grid.jsonl \
        --acts relu --norms none,batch-pre,layer-post --widths 32,64,100,256 --depths 1,5,10,20
    python bench/finite_width_grid.py --out grid.jsonl --report docs/figures/theory_finite_width.png
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from bench_theory import NORMS as THEORY_NORMS  # bench/ is the script's folder
from bench_theory import default_inputs, mlp
from common import Opt, parse_args  # bench/: on sys.path

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.metrics import gamma_bootstrap_ci
from igb.theory.nngp import WalkSettings, predict_gamma

#: bench_theory's placements (the same names), and two more measured here
NORMS = {
    **THEORY_NORMS,
    "rms-post": {"placement": "post", "kind": "rms"},
    "group-post": {"placement": "post", "kind": "group"},  # 8 groups: widths multiple of 8
}


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def report(rows: list[dict], figure: Path) -> None:
    """Markdown table (stdout) and the gamma-against-width figure of the measured rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inputs = {n: default_inputs(n) for n in {r["n"] for r in rows}}

    def predict(act, norm, depth, width, n, batch):
        model = mlp(depth, act, width)
        return predict_gamma(WalkSettings.from_groups(model, NORMS[norm], batch), inputs[n])

    print("| activation | norm | depth | width | infinite width | finite width | measured | "
          "95% interval | finite inside |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    key = lambda r: (r["activation"], list(NORMS).index(r["norm"]), r["depth"], r["width"])  # noqa: E731
    for r in sorted(rows, key=key):
        p = predict(r["activation"], r["norm"], r["depth"], r["width"], r["n"], r["batch"])
        inside = p.gamma_finite is not None and r["lo"] <= p.gamma_finite <= r["hi"]
        inf_in = r["lo"] <= p.gamma <= r["hi"]
        print(
            f"| {r['activation']} | {r['norm']} | {r['depth']} | {r['width']} | "
            f"{_fmt(p.gamma)}{' (in)' if inf_in else ''} | {_fmt(p.gamma_finite)} | "
            f"{_fmt(r['gamma'])} | [{_fmt(r['lo'])}, {_fmt(r['hi'])}] | "
            f"{'yes' if inside else '**no**'} |"
        )
    acts = sorted({r["activation"] for r in rows}, key=["relu", "gelu", "tanh"].index)
    norms = [n for n in ("none", "batch-pre", "layer-post") if any(r["norm"] == n for r in rows)]
    fig, axes = plt.subplots(len(acts), len(norms), figsize=(3.6 * len(norms), 2.9 * len(acts)),
                             squeeze=False)  # fmt: skip
    grid = np.unique(np.geomspace(16, 2048, 15).astype(int))
    colors = {1: "#999999", 5: "#4c72b0", 10: "#55a868", 20: "#c44e52"}
    for i, act in enumerate(acts):
        for j, norm in enumerate(norms):
            ax = axes[i][j]
            sel = [r for r in rows if r["activation"] == act and r["norm"] == norm]
            for depth in sorted({r["depth"] for r in sel} - {1}):
                pts = sorted((r for r in sel if r["depth"] == depth), key=lambda r: r["width"])
                n, batch, c = pts[0]["n"], pts[0]["batch"], colors.get(depth, "k")
                w = np.array([r["width"] for r in pts])
                g = np.array([r["gamma"] for r in pts])
                err = np.array([[r["gamma"] - r["lo"], r["hi"] - r["gamma"]] for r in pts]).T
                ax.errorbar(w, g, yerr=err, fmt="o", color=c, ms=3.5, capsize=2,
                            label=f"depth {depth}")  # fmt: skip
                preds = [predict(act, norm, depth, int(k), n, batch) for k in grid]
                fin = [np.nan if p.gamma_finite is None else p.gamma_finite for p in preds]
                ax.plot(grid, fin, color=c, lw=1.2)
                ax.axhline(preds[0].gamma, color=c, lw=1.0, ls="--", alpha=0.7)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{act}, {norm}", fontsize=9)
            ax.set_xlabel("width")
            ax.grid(alpha=0.3, which="both")
            if j == 0:
                ax.set_ylabel("gamma")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("gamma against width: measured (95% interval), finite-width theory (solid), "
                 "infinite width (dashed)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(figure, dpi=110)


def main() -> None:
    figure = Opt(help="write the figure here, print the table, measure nothing")
    a = parse_args(__doc__, out=Opt(settings={"required": True}), acts="relu",
                   norms="none,batch-pre,layer-post", widths="32,64,100,256", depths="1,5,10,20",
                   inits=200, n=500, batch=500, report=figure)  # fmt: skip
    out = Path(a.out)
    if a.report:
        report([json.loads(line) for line in out.read_text().splitlines()], Path(a.report))
        return
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
                    plan = EvaluationPlan(
                        mlp(depth, act, width), NORMS[name], 10, batch_size=a.batch, workers=1
                    )
                    res = evaluate_ensemble(plan, x, range(a.inits))
                    lo, hi = gamma_bootstrap_ci(res.mu, res.s2, n_boot=1000)
                    row = dict(zip(("activation", "norm", "depth", "width", "n_inits", "n"), key))
                    row.update(batch=a.batch, gamma=res.gamma, lo=lo, hi=hi)
                    row["seconds"] = time.perf_counter() - t0
                    with out.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
