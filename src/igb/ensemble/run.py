"""One ensemble job in its job folder: status, skip-finished, the results, the W&B run."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from igb.ensemble.eval_set import eval_set
from igb.ensemble.evaluate import evaluate_ensemble
from igb.ensemble.progress import progress_bar
from igb.ensemble.resolve import resolve_device
from igb.ensemble.summary import choices, histogram_values, summarize, title
from igb.ensemble.wandb_log import log_to_loggers
from igb.ensemble.writers import atomic_write, write_inits_csv, write_summary
from igb.job import JobFolder

log = logging.getLogger(__name__)

OUTPUT_FILES = ("inits.csv", "histogram.png", "summary.json")


def run(cfg: DictConfig) -> float:
    """One ensemble job: returns gamma (NaN if the job failed inside a multirun)."""
    from igb.train import _in_multirun, _quiet_lightning

    out = Path(cfg.paths.output_dir)
    job = JobFolder(out)
    if cfg.get("skip_finished", True) and job.is_finished() and (out / "summary.json").exists():
        log.info("%s already holds a finished ensemble; skipping (skip_finished=false reruns)", out)
        return float(job.read().get("gamma", math.nan))
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:  # a previous run's results must not outlive this run's start
        (out / name).unlink(missing_ok=True)
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    job.mark("running", pid=os.getpid())
    _quiet_lightning()
    try:
        summary = _run(cfg, out)
    except Exception as exc:
        job.mark_failed(exc)
        if not _in_multirun():
            raise
        log.exception("ensemble failed; recorded in %s", job.status_file)
        return math.nan
    except BaseException as exc:  # KeyboardInterrupt, SystemExit from a signal handler
        job.mark_failed(exc, status="interrupted")
        raise
    job.mark("finished", gamma=summary["gamma"], regime=summary["regime"])
    return float(summary["gamma"])


def _run(cfg: DictConfig, out: Path) -> dict[str, Any]:
    t_start = time.perf_counter()
    ens = cfg.ensemble
    x, dm = eval_set(cfg)
    device = resolve_device(ens.device)
    seeds = range(int(ens.seed0), int(ens.seed0) + int(ens.n_inits))
    log.info(
        "ensemble: %d initializations of %s on %d %s points (%s, batch statistics on batches "
        "of %d) on %s",
        len(seeds), choices(cfg), x.shape[0], ens.eval_split, ens.norm_mode, ens.batch_size,
        device,
    )  # fmt: skip
    with progress_bar(len(seeds), enabled=bool(ens.get("progress", True))) as advance:
        result = evaluate_ensemble(
            cfg.model,
            cfg.norm,
            x,
            dm.num_classes,
            seeds,
            batch_size=int(ens.batch_size),
            norm_mode=ens.norm_mode,
            device=device,
            method=ens.method,
            chunk_size=ens.chunk_size,
            workers=ens.get("workers", "auto"),
            progress=advance,
        )
    summary = summarize(
        result, cfg, n_points=int(x.shape[0]), n_boot=int(ens.n_boot), ci_level=ens.ci_level
    )
    label, values = histogram_values(result)
    write_inits_csv(result, out / "inits.csv")
    from igb.ensemble_plot import plot_histogram

    atomic_write(
        out / "histogram.png",
        lambda tmp: plot_histogram(
            values, label, summary, result.num_classes, int(x.shape[0]), tmp, title=title(cfg)
        ),
    )
    summary["wall_time_s"] = time.perf_counter() - t_start
    log_to_loggers(cfg, summary, result, out, identity(cfg))
    summary["wall_time_s"] = time.perf_counter() - t_start
    write_summary(summary, out / "summary.json")  # last: its presence means "finished"
    lo, hi = summary["gamma_ci"]
    log.info(
        "gamma = %.4g [%.4g, %.4g] -> %s; f_max mean %.3f; %d inits in %.2f s (%s, %s, %d "
        "workers); results in %s",
        summary["gamma"], lo, hi, summary["regime"], summary["f_max_mean"], result.n_inits,
        result.eval_time_s, result.method, result.device, result.workers, out,
    )  # fmt: skip
    return summary


def identity(cfg: DictConfig) -> dict[str, Any]:
    """W&B job_type / tags / group of an ensemble job (like ``igb.train.run_identity``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    ch = choices(cfg)
    norm = "none" if ch["norm_placement"] == "none" else f"{ch['norm_kind']}-{ch['norm_placement']}"
    tags = [
        "ensemble",
        f"model:{ch['model']}",
        f"norm:{ch['norm_placement']}",
        f"norm_kind:{ch['norm_kind']}",
        f"act:{ch['activation']}",
        f"dataset:{ch['dataset']}",
        *[str(t) for t in cfg.get("tags", [])],
    ]
    group = None
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        group = Path(HydraConfig.get().sweep.dir).name
    return {"job_type": f"ensemble-{ch['model']}-{norm}", "tags": tags, "group": group}
