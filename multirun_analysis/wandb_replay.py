"""``python -m multirun_analysis.wandb_replay FOLDER``: one complete offline W&B run per job.

A job requeued while W&B was offline leaves one ``wandb/offline-run-<time>-<id>`` folder per
attempt, all of one run id. ``wandb sync`` (wandb 0.31, ``wandb/cli/beta_sync.py`` and
wandb-core's ``runsync``) uploads the folders of one id one after the other, in order of
start time, each as a plain upload of that id: the resume setting of ``sync`` comes from the
syncing process, not from the run, so each later folder's history is written from the first
line again over the earlier one (W&B issues 3841 and 5865), and a hard-killed attempt's
resume re-logs steps the earlier folder already holds.

This command writes, per job, one new offline run of the job's id from the job's own
``metrics.csv`` (one row per step, kept unique across resumes): the whole history on
``trainer/global_step``, the config and identity (group, job type, name, tags) of the first
attempt, the summary of the last, under ``<job>/wandb/replay/``. It then prints the one
``wandb sync`` line that uploads exactly one complete run per job (a job that ran in one
attempt is uploaded from its own folder). The step-0 panels and tables stay in the first
attempt's folder.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from multirun_analysis.wandb_files import WandbRun, find_run_dirs, read_run

#: where a job's replayed run goes (under the job's ``wandb/``, so ``restart=true`` moves it)
REPLAY_DIR = Path("wandb") / "replay"


def attempts(job: Path) -> list[WandbRun]:
    """The job's own offline W&B runs (not earlier replays), oldest first."""
    dirs = [d for d in find_run_dirs(job / "wandb") if REPLAY_DIR.name not in d.parts[-3:-1]]
    runs = [read_run(d) for d in dirs if d.name.startswith("offline-run-")]
    return sorted(runs, key=lambda r: r.start_time or 0.0)


def csv_rows(job: Path) -> list[dict[str, Any]]:
    """metrics.csv as W&B rows: the logged values of each step, ``step`` as
    ``trainer/global_step``."""
    import pandas as pd

    frame = pd.read_csv(job / "metrics.csv")
    rows = []
    for record in frame.to_dict("records"):
        row = {k: v for k, v in record.items() if not (isinstance(v, float) and math.isnan(v))}
        row["trainer/global_step"] = int(row.pop("step"))
        rows.append(row)
    return rows


def replay(job: Path, runs: list[WandbRun]) -> Path:
    """Write one offline run of the job's id holding its whole metrics.csv; its folder."""
    import wandb

    first, last = runs[0], runs[-1]
    config: dict[str, Any] = {}
    for run in runs:
        config.update(run.config)
    out = job / REPLAY_DIR
    out.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        id=first.run_id,
        project=first.project,
        entity=first.entity or None,
        group=first.group,
        job_type=first.job_type,
        name=first.name,
        tags=first.tags,
        config=config,
        dir=str(out),
        mode="offline",
        settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
    )
    for metric in first.metrics:
        if metric.get("glob_name") and metric.get("step_metric"):
            run.define_metric(metric["glob_name"], step_metric=metric["step_metric"])
        elif metric.get("name") and not metric.get("step_metric"):
            run.define_metric(metric["name"])
    for row in csv_rows(job):
        run.log(row)
    run.summary.update(
        {k: v for k, v in last.summary.items() if isinstance(v, int | float | str | bool)}
    )
    run_dir = Path(run.dir).parent
    run.finish(exit_code=last.exit_code or 0)
    wandb.teardown()
    return run_dir


def job_folders(folder: Path) -> list[Path]:
    """``folder`` itself when it is a job (it has status.json), else the jobs under it."""
    if (folder / "status.json").is_file():
        return [folder]
    return sorted(p.parent for p in folder.rglob("status.json") if ".discarded" not in p.parts)


def sync_paths(folder: Path) -> list[Path]:
    """One complete offline run per job under ``folder`` (replaying the requeued ones)."""
    paths = []
    for job in job_folders(folder):
        runs = attempts(job)
        if len(runs) == 1:
            paths.append(runs[0].path.parent)
        elif runs:
            if len({r.run_id for r in runs}) > 1:
                ids = ", ".join(sorted({str(r.run_id) for r in runs}))
                raise ValueError(f"{job}: offline runs of several ids ({ids}); expected one")
            paths.append(replay(job, runs))
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m multirun_analysis.wandb_replay",
        description="One complete offline W&B run per job (a requeued job's attempts "
        "replayed from its metrics.csv), and the `wandb sync` line that uploads them.",
    )
    p.add_argument("folder", type=Path, help="a job folder, or a folder of job folders")
    args = p.parse_args(argv)
    if not args.folder.is_dir():
        print(f"folder: {args.folder} is not a folder", file=sys.stderr)
        return 2
    try:
        paths = sync_paths(args.folder)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if not paths:
        print(f"no offline W&B runs under {args.folder}")
        return 0
    print(f"{len(paths)} job(s), one complete offline W&B run each; upload them with:")
    print("wandb sync " + " ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
