"""The ensemble's W&B run: histogram, figure, per-initialization table and summary."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from igb.ensemble.spec import EnsembleSpec
from igb.ensemble.statistics import EnsembleResult
from igb.ensemble.summary import histogram_values

log = logging.getLogger(__name__)


def log_to_loggers(spec: EnsembleSpec, summary: dict, result: EnsembleResult, out: Path) -> None:
    """W&B: histogram of f_0 / f_max, the figure, the per-init table and the summary."""
    for name, make in spec.loggers.items():
        if make is None:
            log.info("logger.%s: the ensemble logs to W&B only; its files are in %s", name, out)
            continue
        logger = make(run=spec.run)
        if logger is None:  # W&B disabled
            continue
        log_wandb(logger.experiment, summary, result, out)
        log_results_artifact(logger.experiment, summary, out)
        summary["wandb"] = {
            "id": logger.experiment.id,
            "mode": "offline" if logger.experiment.offline else "online",
            "dir": str(logger.experiment.dir),
        }
        logger.experiment.finish()


#: the ensemble's result files in its W&B artifact (those present), besides summary.json
ARTIFACT_FILES = ("inits.csv", "histogram.png", "profile.csv", "profile.png")


def log_results_artifact(run: Any, summary: Mapping[str, Any], out: Path) -> None:
    """The ensemble's results as one W&B artifact ``ensemble-<run id>`` (type
    ``ensemble-results``): summary.json, inits.csv and the figures, versioned with the run
    and downloadable as files (``run.use_artifact(...).download()``)."""
    import wandb

    artifact = wandb.Artifact(f"ensemble-{run.id}", type="ensemble-results")
    with artifact.new_file("summary.json", mode="w") as f:
        json.dump(summary, f, indent=2, default=str)
    for name in ARTIFACT_FILES:
        if (out / name).is_file():
            artifact.add_file(str(out / name), name=name)
    run.log_artifact(artifact, aliases=["latest"])


def log_wandb(run: Any, summary: dict, result: EnsembleResult, out: Path) -> None:
    import wandb

    label, values = histogram_values(result)
    f_cols = [f"f_{c}" for c in range(result.num_classes)]
    table = wandb.Table(
        columns=["seed", "f_max", "entropy", "bias_degree", *f_cols],
        data=[
            [int(s), float(fm), float(e), float(g), *map(float, f)]
            for s, fm, e, g, f in zip(
                result.seeds, result.f_max, result.entropy, result.bias_degree, result.f,
                strict=True,
            )
        ],
    )  # fmt: skip
    logged = {
        f"ensemble/{label}": wandb.Histogram(values, num_bins=64),
        "ensemble/histogram": wandb.Image(str(out / "histogram.png")),
        "ensemble/inits": table,
    }
    if (out / "profile.png").is_file():  # ensemble.profile=true
        logged["ensemble/profile"] = wandb.Image(str(out / "profile.png"))
    run.log(logged)
    flat = {k: v for k, v in summary.items() if isinstance(v, int | float | str)}
    flat["gamma_ci_lo"], flat["gamma_ci_hi"] = summary["gamma_ci"]
    profile = summary.get("profile") or {}
    for key in ("head_input_gamma", "gamma_profile_with_biases", "gamma_profile_without_biases"):
        if isinstance(profile.get(key), int | float):
            flat[f"profile_{key}"] = profile[key]
    for key in ("f_max_quantiles", "f0_quantiles"):
        for q, v in (summary.get(key) or {}).items():
            flat[f"{key[:-10]}_{q}"] = v
    run.summary.update(flat)
