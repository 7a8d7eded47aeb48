"""Predicted gamma for a grid of configurations, without sampling a single network.

    python -m igb.theory.nngp model.depth=1,5,10,20 norm=none,pre,post norm.kind=batch,layer,rms

Takes the overrides of ``python ensemble.py -m`` (same config tree, same grid syntax,
same pre-flight: a bad key or value is one line and exit code 2), builds each job's
evaluation set exactly as the ensemble would (``ensemble.eval_split``,
``ensemble.eval_samples``, ``ensemble.batch_size``) and prints one row per job with the
infinite-width gamma, the finite-width gamma at ``model.width`` and the regime predicted at
that width (or why the theory does not cover the job), beside the mean-field readout of
the MLP's hidden layers (phase, chi1, c*, deep-network gamma: :mod:`igb.theory.meanfield`).
Past ``ensemble.theory_points`` evaluation points the theory walks a subsample: ``points``
says how many, and ``gamma_theory`` carries the subsample's standard error (``0.4666 ± 6.6e-06``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from omegaconf import OmegaConf

from igb.ensemble.resolve import resolve_theory_points
from igb.launch.ensemble_job import choices, eval_inputs
from igb.launch.preflight import check, compose_job, expand_jobs
from igb.launch.validate_ensemble import validate_ensemble
from igb.theory.meanfield import config_readout
from igb.theory.nngp import WalkSettings, predict_gamma

COLUMNS = ("model", "depth", "width", "activation", "init", "weight_var", "bias_var", "norm",
           "dataset", "N")  # fmt: skip
#: the mean-field readout's columns (igb.theory.meanfield.config_readout; - where it declines)
MEANFIELD = ("phase", "chi1", "c_star", "gamma_deep")


def rows(overrides: Sequence[str]) -> list[dict[str, object]]:
    """One result row per distinct job of the grid (``norm=none`` ignores ``norm.kind``)."""
    out: list[dict[str, object]] = []
    seen: set[tuple] = set()
    inputs: dict[str, object] = {}
    for job in expand_jobs("ensemble", overrides, multirun=True):
        cfg = compose_job("ensemble", job)
        ch = choices(cfg)
        placement = ch["norm_placement"]
        norm = "none" if placement == "none" else f"{ch['norm_kind']}-{placement}"
        data_key = OmegaConf.to_yaml(cfg.dataset, resolve=True) + OmegaConf.to_yaml(
            cfg.ensemble, resolve=True
        )
        key = (
            data_key,
            norm,
            *(str(ch.get(c)) for c in (*COLUMNS[:7], "unit_pool", "unit_pool_size")),
        )
        if key in seen:
            continue
        seen.add(key)
        if data_key not in inputs:
            x, dm = eval_inputs(cfg)
            inputs[data_key] = (x, dm.num_classes)
        x, num_classes = inputs[data_key]
        t0 = time.perf_counter()
        walk = WalkSettings.from_groups(
            cfg.model, cfg.norm, int(cfg.ensemble.batch_size), norm_mode=cfg.ensemble.norm_mode,
            num_classes=num_classes, max_points=resolve_theory_points(cfg.ensemble),
        )  # fmt: skip
        pred = predict_gamma(walk, x)
        readout = config_readout(
            OmegaConf.to_container(cfg.model, resolve=True),
            OmegaConf.to_container(cfg.norm, resolve=True),
        )
        out.append(
            {
                **{c: ch.get(c) for c in COLUMNS[:7]},
                **{c: readout.get(c) for c in MEANFIELD},
                "norm": norm,
                "dataset": ch["dataset"],
                "N": int(x.shape[0]),
                "points": pred.points,
                "gamma_theory": pred.gamma,
                "gamma_stderr": pred.stderr,
                "gamma_finite": pred.gamma_finite,
                "regime": pred.predicted_regime or f"not covered: {pred.reason}",
                "time_s": time.perf_counter() - t0,
            }
        )
    return out


def _number(value: object, stderr: object = None) -> str:
    """``-`` for no value; ``value ± stderr`` where a subsample's error was stated."""
    if value is None:
        return "-"
    return f"{value:.4g}" + (f" ± {stderr:.2g}" if stderr else "")


def format_table(table: list[dict[str, object]]) -> str:
    header = [*COLUMNS, *MEANFIELD, "points", "gamma_theory", "gamma_finite", "regime", "time_s"]
    cells = [
        [
            *(str(r[c]) for c in COLUMNS),
            *(_number(r[c]) if isinstance(r[c], float) else str(r[c] or "-") for c in MEANFIELD),
            "-" if r["points"] is None else str(r["points"]),
            _number(r["gamma_theory"], r["gamma_stderr"]),
            _number(r["gamma_finite"]),
            str(r["regime"]),
            f"{r['time_s']:.2f}",
        ]
        for r in table
    ]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    error = check("ensemble", ["-m", *argv], validate_ensemble)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(rows(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
