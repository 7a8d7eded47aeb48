"""summary.json's content: gamma, its interval, the regime, the laws of f_max / f_0, provenance."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import numpy as np
import torch

from igb.ensemble.spec import EnsembleSpec
from igb.ensemble.statistics import EnsembleResult
from igb.jobs.identity import norm_label
from igb.metrics import gamma_bootstrap_ci
from igb.metrics.authors import authors_estimators
from igb.theory import gaussian as theory

QUANTILES = (5, 25, 50, 75, 95)


def summarize(
    result: EnsembleResult,
    spec: EnsembleSpec | None = None,
    n_points: int | None = None,
    n_boot: int = 1000,
    ci_level: float = 0.95,
) -> dict[str, Any]:
    """summary.json: gamma with its bootstrap interval, regime, laws of f_max / f_0 (and
    the job's choices and measurement settings, given its ``spec``)."""
    gamma = result.gamma
    lo, hi = gamma_bootstrap_ci(result.mu, result.s2, n_boot=n_boot, level=ci_level, seed=0)
    f_max = result.f_max
    summary: dict[str, Any] = {
        "n_inits": result.n_inits,
        "n_classes": result.num_classes,
        "n_points": n_points,
        "gamma": gamma,
        "gamma_ci": [lo, hi],
        "gamma_ci_level": ci_level,
        "gamma_n_boot": n_boot,
        "gamma_floor": theory.gamma_finite_sample_floor(n_points) if n_points else None,
        # from the interval: "neutral or prejudiced" when it straddles the threshold
        "regime": theory.regime_of_interval(lo, hi),
        "f_max_mean": float(f_max.mean()),
        "f_max_std": float(f_max.std()),
        "f_max_quantiles": _quantiles(f_max),
        "entropy_mean": float(result.entropy.mean()),
        "bias_degree_mean": float(result.bias_degree.mean()),
    }
    if result.num_classes == 2:
        f0 = result.f[:, 0]
        summary.update(
            f0_mean=float(f0.mean()), f0_std=float(f0.std()), f0_quantiles=_quantiles(f0)
        )
    # the authors' InitVarComp / SingleInitStats numbers beside gamma (docs/science.md)
    summary["authors"] = authors_estimators(result.raw_mu, result.raw_s2, n_points)
    # vary=head on cached features: gamma of a Gaussian zero-bias head on the same features
    if "gamma_gaussian_head" in result.extra:
        summary["gamma_gaussian_head"] = result.extra["gamma_gaussian_head"]
    summary["seeds"] = [int(result.seeds[0]), int(result.seeds[-1])]
    if spec is not None:
        summary["choices"] = dict(spec.choices)
        summary["norm_mode"] = spec.ensemble.norm_mode
        summary["batch_size"] = spec.ensemble.batch_size
    summary.update(
        device=result.device,
        method=result.method,
        workers=result.workers,
        chunk_size=result.chunk_size,
        eval_time_s=result.eval_time_s,  # this run's evaluation, not the resumed blocks'
        inits_resumed=result.n_resumed,
        versions=versions(),
    )
    return summary


def _quantiles(values: np.ndarray) -> dict[str, float]:
    return {f"q{q:02d}": float(v) for q, v in zip(QUANTILES, np.percentile(values, QUANTILES))}


def versions() -> dict[str, str]:
    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {
        "igb": version("igb"),
        "torch": str(torch.__version__),  # a plain str (torch's TorchVersion pickles as torch)
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": str(torch.get_num_threads()),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
    }


def histogram_values(result: EnsembleResult) -> tuple[str, np.ndarray]:
    if result.num_classes == 2:
        return "f_0", result.f[:, 0]
    return "f_max", result.f_max


def title(ch: Mapping[str, Any]) -> str:
    """The figures' title line of an ensemble with these choices."""
    label = norm_label(ch["norm_placement"], ch["norm_kind"])
    norm = {"none": "no norm", "native": "native norms"}.get(label, label)
    size = f" depth {ch['depth']} width {ch['width']}" if ch["depth"] is not None else ""
    model = f"{ch['model']}:{str(ch['class']).rsplit('.', 1)[-1]}" if "class" in ch else ch["model"]
    extra = [f"vary={ch['vary']}", f"{ch['norm_mode']} stats" if ch.get("norm_mode") else ""]
    if "weights" in ch:  # a file's name, not its path
        extra.append(f"weights={str(ch['weights']).replace(chr(92), '/').rsplit('/', 1)[-1]}")
    if "input_size" in ch:
        extra.append(f"input {ch['input_size']}")
    tail = ", ".join(e for e in extra if e)
    centred = "" if ch["neutralize"] == "none" else f", neutralize={ch['neutralize']}"
    if ch["init"] == "normal" or ch["bias_var"]:
        wv = f" weight_var={ch['weight_var']}" if ch["weight_var"] is not None else ""
        centred += f", init {ch['init']}{wv} bias_var={ch['bias_var']}"
    if ch["unit_pool"] != "none":
        centred += f", {ch['unit_pool']} over {ch['unit_pool_size']} units"
    return f"{model}{size}, {norm}, {ch['activation']}{centred}, {ch['dataset']}; {tail}"
