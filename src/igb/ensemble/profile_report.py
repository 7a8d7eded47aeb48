"""``ensemble.profile=true``: the profile's files (profile.csv, profile.png) and summary fields.

Besides the measured entries (:mod:`.profile`): the evaluation inputs themselves as entry
0 (the data's own gamma_l, before any layer), the infinite-width prediction of every
layer for the built-in MLP (:func:`igb.theory.nngp.predict_layers`), and, for a model
whose biases are not zero at initialization (igb's own init zeroes them; PyTorch's
default layers do not), the profile again with those biases set to zero.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from igb.ensemble.loop import run_loop
from igb.ensemble.plan import EvaluationPlan
from igb.ensemble.profile import (
    HEAD_INPUT,
    LOGITS,
    Profiler,
    head_module,
    nonzero_biases,
    zero_biases,
)
from igb.ensemble.runtime import Runtime
from igb.ensemble.spec import EnsembleSpec
from igb.ensemble.statistics import StatisticsStore
from igb.ensemble.writers import atomic_write
from igb.metrics import feature_moments, reduce_features
from igb.nn import build_model
from igb.nn.reinit import head_names, reinitializer
from igb.theory.nngp import WalkSettings, predict_layers

COLUMNS = ("index", "module", "kind", "shape", "gamma", "gamma_lo", "gamma_hi", "n_inits",
           "gamma_theory")  # fmt: skip


def make_profiler(spec: EnsembleSpec, input_shape: tuple[int, ...], num_classes: int) -> Profiler:
    head = head_names(spec.model, spec.norm, tuple(input_shape), num_classes)
    return Profiler(head_module(head), spec.ensemble.profile_features)


def profile_rows(
    profiler: Profiler, spec: EnsembleSpec, x: torch.Tensor, n_boot: int, level: float
) -> list[dict[str, Any]]:
    """The input entry, the measured entries and (built-in MLP) the theory column, under
    the ensemble's own theory settings (``ensemble.theory``, ``ensemble.theory_points``)."""
    reduction = profiler.reduction
    mean_g, spread = feature_moments(reduce_features(x.detach().cpu(), reduction))
    data = mean_g / spread if spread > 0 else math.nan
    rows = [{"index": 0, "module": "(input)", "kind": "input", "shape": "x".join(
        map(str, x.shape[1:])), "gamma": data, "gamma_lo": data, "gamma_hi": data,
        "n_inits": 0}]  # fmt: skip
    for row in profiler.table(n_boot=n_boot, level=level):
        rows.append({**row, "index": row["index"] + 1})
    theory = predict_layers(WalkSettings.from_spec(spec), x) if spec.ensemble.theory else None
    if isinstance(theory, dict):
        last = list(theory.values())[-1] if theory else math.nan
        for row in rows:
            name = row["module"]
            block = f"{name}.{_last_part(theory, name)}" if name.startswith("blocks.") else None
            if name in theory:
                row["gamma_theory"] = theory[name]
            elif block in theory:  # a block's output is its last part's
                row["gamma_theory"] = theory[block]
            elif name == "blocks" or row["kind"] == "head input":
                row["gamma_theory"] = last
    return rows


def _last_part(theory: dict[str, float], block: str) -> str | None:
    parts = [k[len(block) + 1 :] for k in theory if k.startswith(f"{block}.")]
    return parts[-1] if parts else None


def write_profile_csv(rows: list[dict[str, Any]], path: Path) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
            w.writeheader()
            for row in rows:
                w.writerow({k: _fmt(row.get(k)) for k in COLUMNS})

    atomic_write(path, write)


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else value


def largest_rise(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The entry where gamma_l grows most over the entry before it (along the forward)."""
    best = None
    for prev, row in zip(rows, rows[1:], strict=False):
        rise = row["gamma"] - prev["gamma"]
        if np.isfinite(rise) and (best is None or rise > best["rise"]):
            best = {"module": row["module"], "kind": row["kind"], "rise": float(rise),
                    "from": float(prev["gamma"]), "to": float(row["gamma"])}  # fmt: skip
    return best


def bias_check(
    spec: EnsembleSpec, x: torch.Tensor, num_classes: int, seeds: list[int], device: Any,
    profiler: Profiler,
) -> dict[str, Any]:  # fmt: skip
    """Non-zero biases at initialization (seed0's build, head left out) and, if any, the
    head-input gamma of the same initializations with those biases set to zero."""
    model_cfg, norm_cfg = spec.model, spec.norm  # plain dicts already (EnsembleSpec)
    shape = tuple(x.shape[1:])
    head = head_names(model_cfg, norm_cfg, shape, num_classes)
    model = build_model(model_cfg, norm_cfg, shape, num_classes, seeds[0], device="cpu")
    every = nonzero_biases(model)
    fields: dict[str, Any] = {"nonzero_biases": every}  # the head's included
    found = [n for n in every if n not in head]  # what the head's input sees
    if not found:
        return fields
    ens = spec.ensemble
    base = reinitializer(model_cfg, norm_cfg, shape, num_classes, device, ens.vary, ens.seed0)

    def without_biases(m: torch.nn.Module, seed: int) -> None:
        base(m, seed)
        kept = {n: p.detach().clone() for n, p in m.named_parameters() if n in head}
        zero_biases(m)
        with torch.no_grad():
            for n, p in m.named_parameters():
                if n in kept:
                    p.copy_(kept[n])

    zeroed = Profiler(profiler.head, profiler.reduction)
    plan = EvaluationPlan(model_cfg, norm_cfg, num_classes, ens.batch_size, ens.norm_mode,
                          torch.device(device), workers=1)  # fmt: skip
    rt = Runtime(without_biases, StatisticsStore(len(seeds), num_classes), profiler=zeroed)
    with torch.random.fork_rng(devices=[]):
        run_loop(plan, x.to(device), seeds, rt)
    with_b, without = profiler.table(n_boot=1), zeroed.table(n_boot=1)
    fields["gamma_profile_with_biases"] = _head_input(with_b).get("gamma")
    fields["gamma_profile_without_biases"] = _head_input(without).get("gamma")
    return fields


def _head_input(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The profile's head-input row ({} when there is none)."""
    return next((r for r in rows if r["kind"] == HEAD_INPUT), {})


def report(
    profiler: Profiler, spec: EnsembleSpec, x: torch.Tensor, num_classes: int, device: Any,
    out: Path, title: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Write profile.csv and profile.png into ``out``; the summary's ``profile`` fields."""
    ens = spec.ensemble
    rows = profile_rows(profiler, spec, x, ens.n_boot, ens.ci_level)
    write_profile_csv(rows, out / "profile.csv")
    from igb.ensemble.profile_plot import plot_profile

    atomic_write(out / "profile.png", lambda tmp: plot_profile(rows, tmp, title=title))
    head = _head_input(rows)
    fields: dict[str, Any] = {
        "entries": len(rows),
        "features": profiler.reduction,
        "n_inits": len(profiler.rows),
        "head_input_gamma": head.get("gamma"),
        "head_input_gamma_ci": [head["gamma_lo"], head["gamma_hi"]] if head else None,
        "logits_gamma": rows[-1]["gamma"] if rows and rows[-1]["kind"] == LOGITS else None,
        "largest_rise": largest_rise(rows),
    }
    seeds = sorted(profiler.rows)
    if seeds:
        fields.update(bias_check(spec, x, num_classes, seeds, device, profiler))
    return fields
