"""``python -m multirun_analysis <multirun or run folder> [--out DIR]``: tables, figures, report.

Sources:

- a folder of Hydra job folders (a multirun folder, a folder of several, or one job),
  read from the job folders themselves (default); one job's folder also gets that
  run's own figures (:mod:`multirun_analysis.single_run`);
- ``--wandb``: the offline W&B runs found under the folder (``wandb/offline-run-*``),
  read from their ``.wandb`` files without network;
- ``--wandb-project ENTITY/PROJECT``: a project on the W&B server through ``wandb.Api()``
  (needs network and credentials; ``--wandb-group`` picks one sweep).

Writes under ``--out`` (default ``<folder>/analysis``): ``jobs.csv``/``.parquet``,
``series.*``, ``inits.*``, ``figures/*.png`` (and ``.pdf``/``.svg`` with ``--format``),
``report.md``, ``report.html`` and each report table as LaTeX (``tables/*.tex``, booktabs).
Jobs that failed or never finished are listed on stdout and in the report.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from igb.errors import OneLineParser, fraction
from igb.jobs.files import DiskFull
from igb.jobs.status import DAMAGED, TWIN
from multirun_analysis.collect import Collection, collect
from multirun_analysis.results import DEFAULT_TOL


def load(args: argparse.Namespace) -> Collection:
    if args.wandb_project:
        from multirun_analysis.wandb_source import collect_project

        return collect_project(args.wandb_project, group=args.wandb_group, tol=args.tol)
    if args.wandb:
        from multirun_analysis.wandb_source import collect_offline

        return collect_offline(args.source, tol=args.tol)
    return collect(args.source, tol=args.tol)


def analyze(
    col: Collection, out: Path, split: str = "val", job_dir: Path | None = None
) -> dict[str, list[Path] | Path | int]:
    """Write tables, figures and the report of ``col`` under ``out``; ``job_dir``: the
    source is one run, whose own figures (:mod:`multirun_analysis.single_run`) come first."""
    from multirun_analysis import figures, report, single_run

    out = Path(out)
    tables = col.save(out)
    figs = figures.draw_all(col, out / "figures", split=split)
    if job_dir is not None:
        figs = [*single_run.draw(job_dir, out / "figures", split=split), *figs]
    md, htm = report.write(report.build(col, figs, split=split), out)
    return {"tables": tables, "figures": [f.path for f in figs], "report": md, "html": htm}


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m multirun_analysis",
        description="Collect a multirun (or W&B runs) into tables, the paper's figures and a "
        "report.",
    )
    p.add_argument("source", nargs="?", type=Path, help="multirun folder (or folder of runs)")
    p.add_argument("--out", type=Path, help="output folder (default: <source>/analysis)")
    p.add_argument(
        "--split",
        default="val",
        choices=("train", "val"),
        help="split of the dynamics figures and the time to neutrality (default: val)",
    )
    p.add_argument(
        "--tol",
        type=fraction,
        default=DEFAULT_TOL,
        help="time to neutrality: no class predicted more than tol above its share of the "
        f"split (default: {DEFAULT_TOL})",
    )
    p.add_argument(
        "--format",
        type=formats,
        default=("png",),
        help="figure formats, comma-separated, of png, pdf, svg (default: png; PNG is always "
        "written, the report shows it)",
    )
    p.add_argument(
        "--dpi", type=positive_int, default=90, help="resolution of PNG figures (default: 90)"
    )
    p.add_argument("--wandb", action="store_true", help="read the offline W&B runs under source")
    p.add_argument("--wandb-project", metavar="ENTITY/PROJECT", help="read a W&B project online")
    p.add_argument("--wandb-group", help="with --wandb-project: only runs of this group")
    return p


def formats(text: str) -> tuple[str, ...]:
    """``--format pdf,svg,png`` -> ("pdf", "svg", "png"); argparse's one line otherwise."""
    from multirun_analysis.figures.common import ALLOWED_FORMATS

    chosen = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in chosen if f not in ALLOWED_FORMATS]
    if bad or not chosen:
        raise argparse.ArgumentTypeError(
            f"{text!r}: allowed formats {', '.join(ALLOWED_FORMATS)} (comma-separated)"
        )
    return chosen


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of at least 1")
    return value


def out_problem(out: Path) -> str | None:
    """Why the analysis cannot write under ``out`` (None: it can)."""
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a folder; name a folder (it is created)"
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return f"--out {out}: {existing} is not a writable folder; choose another with --out"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.source is None and not args.wandb_project:
        parser().error("give a multirun folder, or --wandb-project ENTITY/PROJECT")
    if args.source is not None and not args.source.exists():
        print(f"error: {args.source}: no such folder", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or (
        args.source / "analysis"
        if args.source is not None
        else Path("analysis") / args.wandb_project.replace("/", "_")
    )
    problem = out_problem(out)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from multirun_analysis.figures.common import output

    output(args.format, args.dpi)
    col = load(args)
    if col.jobs.empty:
        print(
            f"error: no job folder (with .hydra/) or run found under {col.source}", file=sys.stderr
        )
        return 2
    from multirun_analysis.single_run import is_job_folder

    one_run = args.source is not None and not args.wandb and is_job_folder(args.source)
    if one_run and (col.jobs["status"] == DAMAGED).all():  # its own figures: from its files
        one_run = False
    try:
        result = analyze(col, out, split=args.split, job_dir=args.source if one_run else None)
    except (OSError, DiskFull) as exc:  # a full disk, a folder that became unwritable
        cause = exc.__cause__ if isinstance(exc, DiskFull) and exc.__cause__ else exc
        reason = getattr(cause, "strerror", None) or cause
        print(f"error: cannot write the analysis under {out} ({reason}); free "
              "space there or choose another folder with --out", file=sys.stderr)  # fmt: skip
        return 1
    jobs = col.jobs
    done = int((jobs["status"] == "finished").sum())
    distinct = jobs[jobs["status"] != TWIN]
    repeats = len(jobs) - len(distinct)
    twins = f" ({repeats} more repeating one of them)" if repeats else ""
    print(f"{len(distinct)} jobs{twins}, {done} finished, "
          f"{len(distinct['config'].unique())} configurations")  # fmt: skip
    for row in col.not_finished.itertuples():
        where = row.job_dir or row.overrides
        print(f"  {row.status}: {where}" + (f" - {row.error}" if row.error else ""))
    print(f"tables:  {', '.join(p.name for p in result['tables'])}")
    also = f" (also as {', '.join(f for f in args.format if f != 'png')})"
    also = also if any(f != "png" for f in args.format) else ""
    print(f"figures: {', '.join(p.name for p in result['figures']) or '(none)'}{also}")
    print(f"report:  {result['report']}")
    print(f"html:    {result['html']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
