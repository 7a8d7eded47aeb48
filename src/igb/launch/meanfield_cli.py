"""The mean-field readout of a grid of MLPs, or the trainability-bias phase diagram.

    python -m igb.theory.meanfield model.activation=tanh model.init=normal model.weight_var=1,2,4
    python -m igb.theory.meanfield model.activation=tanh model.depth=10 --phase-diagram

Takes the overrides of ``python ensemble.py -m`` (same config tree, grid syntax and
pre-flight: a bad key or value is one line and exit code 2). Without ``--phase-diagram``
it prints one row per job: the readout of :func:`igb.theory.meanfield.config_readout`
(q*, c*, chi1, the depth scales, the phase, the deep-network gamma and the weight variance
of the edge of chaos), or why it does not apply. With ``--phase-diagram`` it draws
:mod:`igb.theory.meanfield.phase` (one panel per norm of the grid) to ``--out``.

Options of the diagram:
  --out PATH            the figure (default outputs/meanfield/phase_diagram.png under the
                        launch folder or $IGB_ROOT, as every other output)
  --weight-var LO:HI:N  the weight variances (default 0.25:4:20)
  --bias-var LO:HI:N    the bias variances (default 0:0.3:13)
  --points N            evaluation points walked (default 64; a subsample of the ensemble's)
  --sweep DIR           a sweep folder of ensembles: their measured gamma on top
Without a ``norm=`` override the readout and the diagram are those of the plain MLP
(``norm=none``, where ``ensemble.py`` would take its default norm).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from igb.ensemble import choices, eval_set
from igb.jobs.identity import norm_label
from igb.launch.overrides import override_key
from igb.launch.preflight import check, compose_job, expand_jobs
from igb.launch.validate_ensemble import validate_ensemble
from igb.theory.meanfield import Declined, config_readout
from igb.theory.meanfield.phase import BIAS_GRID, POINTS, WEIGHT_GRID

COLUMNS = ("activation", "init", "weight_var", "bias_var", "unit_pool", "norm")
READOUT = ("q_star", "c_star", "chi1", "xi_q", "xi_c", "phase", "gamma_deep", "edge_weight_var")


def _options(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m igb.theory.meanfield", add_help=False)
    parser.add_argument("--phase-diagram", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--weight-var", default=WEIGHT_GRID)
    parser.add_argument("--bias-var", default=BIAS_GRID)
    parser.add_argument("--points", type=int, default=POINTS)
    parser.add_argument("--sweep", default=None)
    return parser.parse_known_args(list(argv))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def rows(overrides: Sequence[str]) -> list[dict[str, Any]]:
    """One readout row per job of the grid."""
    out = []
    for job in expand_jobs("ensemble", overrides, multirun=True):
        cfg = compose_job("ensemble", job)
        model = OmegaConf.to_container(cfg.model, resolve=True)
        norm = OmegaConf.to_container(cfg.norm, resolve=True)
        readout = config_readout(model, norm)
        pool = model.get("unit_pool", "none")
        out.append({
            "activation": model.get("activation"),
            "init": model.get("init"),
            "weight_var": readout.get("weight_var", model.get("weight_var")),
            "bias_var": model.get("bias_var", 0.0),
            "unit_pool": pool if pool == "none" else f"{pool}{model.get('unit_pool_size')}",
            "norm": norm_label(norm.get("placement"), norm.get("kind")),
            **{k: readout.get(k) for k in READOUT},
            "reason": readout.get("reason"),
        })  # fmt: skip
    return out


def format_table(table: list[dict[str, Any]]) -> str:
    header = [*COLUMNS, *READOUT]
    cells = []
    for r in table:
        tail = [f"not covered: {r['reason']}"] if r["reason"] else [_cell(r[k]) for k in READOUT]
        cells.append([*(_cell(r[c]) for c in COLUMNS), *tail])
    full = [row for row in cells if len(row) == len(header)]  # a reason spans the readout
    widths = [max([len(h), *(len(row[i]) for row in (full if i >= len(COLUMNS) else cells))])
              for i, h in enumerate(header)]  # fmt: skip
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) for row in cells]
    return "\n".join(lines)


def measured_points(sweep: Path) -> list[dict[str, Any]]:
    """``(norm, activation, depth, weight_var, bias_var, gamma)`` of every ensemble under
    ``sweep`` (its summary.json)."""
    out = []
    for path in sorted(sweep.rglob("summary.json")):
        try:
            s = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        ch = s.get("choices") or {}
        mf = s.get("meanfield") or {}
        gamma = s.get("gamma")
        if not isinstance(gamma, int | float) or "weight_var" not in mf:
            continue
        out.append({
            "norm": norm_label(ch.get("norm_placement"), ch.get("norm_kind")),
            "activation": ch.get("activation"), "depth": ch.get("depth"),
            "weight_var": float(mf["weight_var"]), "bias_var": float(mf["bias_var"]),
            "gamma": float(gamma),
        })  # fmt: skip
    return out


def phase_diagram(overrides: Sequence[str], opts: argparse.Namespace) -> str:
    """Draw the diagram; the line to print. Declined / ValueError: nothing written."""
    from igb.theory.meanfield.phase import Plane, WalkedData, compute_panel, draw, grid

    weight_vars = grid(opts.weight_var, "--weight-var")
    if weight_vars[0] <= 0:
        raise ValueError(f"--weight-var={opts.weight_var} must start above 0")
    bias_vars = grid(opts.bias_var, "--bias-var")
    if opts.points < 4:
        raise ValueError(f"--points={opts.points} must be at least 4")
    plane = Plane(weight_vars, bias_vars, opts.points)
    sweep = Path(opts.sweep) if opts.sweep else None
    if sweep is not None and not sweep.is_dir():
        raise ValueError(f"--sweep={opts.sweep} is not a folder")
    panels, seen = [], set()
    for job in expand_jobs("ensemble", overrides, multirun=True):
        cfg = compose_job("ensemble", job)
        model = OmegaConf.to_container(cfg.model, resolve=True)
        norm_cfg = OmegaConf.to_container(cfg.norm, resolve=True)
        norm = norm_label(norm_cfg.get("placement"), norm_cfg.get("kind"))
        if norm in seen:
            continue
        seen.add(norm)
        x, dm = eval_set(cfg)
        data = WalkedData(
            x.detach().double().numpy(), int(cfg.ensemble.batch_size), cfg.ensemble.norm_mode,
            dm.num_classes,
        )  # fmt: skip
        panel = compute_panel(model, norm_cfg, norm, data, plane)
        if sweep is not None:
            ch = choices(cfg)
            panel.measured = [
                (p["weight_var"], p["bias_var"], p["gamma"]) for p in measured_points(sweep)
                if (p["norm"], p["activation"], p["depth"]) == (norm, ch["activation"], ch["depth"])
            ]  # fmt: skip
        panels.append(panel)
    root = Path(os.environ.get("IGB_ROOT") or ".")
    out = Path(opts.out) if opts.out else root / "outputs" / "meanfield" / "phase_diagram.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    draw(panels, out, f"model.init=normal, dataset {cfg.dataset.name}, {opts.points} points walked")
    drawn = sum(len(p.measured) for p in panels)
    return f"phase diagram: {out} ({len(panels)} panel(s), {drawn} measured point(s))"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    opts, overrides = _options(argv)
    if not any(override_key(o) == "norm" for o in overrides):
        overrides = [*overrides, "norm=none"]  # the paper's plain MLP unless a norm is asked
    error = check("ensemble", ["-m", *overrides], validate_ensemble)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not opts.phase_diagram:
        print(format_table(rows(overrides)))
        return 0
    try:
        print(phase_diagram(overrides, opts))
    except (Declined, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
