"""report.md and report.html from a collection, its summary table and its figures.

The report is a list of blocks (heading, paragraph, table, figure) rendered twice: as
Markdown that links the PNGs next to it, and as one self-contained HTML file with the
PNGs embedded as base64 data (a tiny template, no dependency beyond the stdlib).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from igb.jobs.files import atomic_write_text
from igb.theory.compare import ZERO
from igb.theory.gaussian import NEUTRAL_TOL
from multirun_analysis.choices import CHOICES
from multirun_analysis.collect import Collection, parquet_available
from multirun_analysis.figures.common import Figure
from multirun_analysis.folders import FINISHED
from multirun_analysis.results import reference_text
from multirun_analysis.tables import summarize

#: the columns of the per-job table in the report
JOB_COLUMNS = (
    "job",
    "config",
    "seed",
    "status",
    "train_f_max_step0",
    "val_acc_final",
    "val_time_to_neutral",
    "gamma",
    "gamma_ci_lo",
    "gamma_ci_hi",
    "gamma_theory",
    "gamma_theory_finite",
    "gamma_ratio",
    "theory_in_ci",
    "regime",
    "error",
)


@dataclass
class Block:
    kind: str  # h2 | p | table | figure
    content: Any


@dataclass
class Report:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def h2(self, text: str) -> None:
        self.blocks.append(Block("h2", text))

    def p(self, text: str) -> None:
        self.blocks.append(Block("p", text))

    def table(self, df: pd.DataFrame) -> None:
        self.blocks.append(Block("table", df))

    def figure(self, fig: Figure) -> None:
        self.blocks.append(Block("figure", fig))

    # -------------------------------------------------------------- markdown

    def markdown(self, base: Path) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if b.kind == "h2":
                out += [f"## {b.content}", ""]
            elif b.kind == "p":
                out += [b.content, ""]
            elif b.kind == "table":
                out += [_md_table(b.content), ""]
            elif b.kind == "figure":
                rel = _relpath(b.content.path, base)
                out += [f"![{b.content.path.stem}]({rel})", "", f"*{b.content.caption}*", ""]
        return "\n".join(out)

    # -------------------------------------------------------------- html

    def html(self) -> str:
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for b in self.blocks:
            if b.kind == "h2":
                body.append(f"<h2>{html.escape(b.content)}</h2>")
            elif b.kind == "p":
                body.append(f"<p>{_inline_html(b.content)}</p>")
            elif b.kind == "table":
                body.append(_html_table(b.content))
            elif b.kind == "figure":
                data = base64.b64encode(b.content.path.read_bytes()).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(b.content.path.stem)}" '
                    f'src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(b.content.caption)}</figcaption></figure>"
                )
        return _HTML.format(title=html.escape(self.title), body="\n".join(body))


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto;
       padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
th {{ background: #f2f2f2; }}
tr.bad td {{ background: #fde8e8; }}
figure {{ margin: 1.2em 0; }} img {{ max-width: 100%; }}
figcaption {{ font-size: 0.9em; color: #555; }}
code {{ background: #f4f4f4; padding: 0 0.2em; }}
</style></head>
<body>
{body}
</body></html>
"""


def _relpath(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:
        return path.as_posix()


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if v.is_integer() and abs(v) < 1e9:
            return str(int(v))
        return f"{v:.3g}"
    return str(v)


def _md_cell(v: Any) -> str:
    return _fmt(v).replace("|", "\\|").replace("\n", " ")


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _inline_html(text: str) -> str:
    """Escape, then render `code` spans (the only inline markup the report uses)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _html_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    status_idx = list(df.columns).index("status") if "status" in df.columns else None
    for row in df.itertuples(index=False):
        bad = status_idx is not None and row[status_idx] not in (FINISHED, None)
        cls = ' class="bad"' if bad else ""
        cells = "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row)
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _short(text: Any, n: int = 160) -> Any:
    if not isinstance(text, str):
        return text
    return text if len(text) <= n else text[: n - 1] + "…"


def build(col: Collection, figures: Sequence[Figure], split: str = "val") -> Report:
    jobs = col.jobs
    n = len(jobs)
    counts = jobs["status"].value_counts(dropna=False).to_dict()
    report = Report("Multirun analysis")
    report.p(f"Source: `{col.source}`. Generated {dt.datetime.now():%Y-%m-%d %H:%M}.")
    kinds = ", ".join(f"{v} {k}" for k, v in jobs["kind"].value_counts().items())
    status_text = ", ".join(f"{v} {k}" for k, v in counts.items())
    report.p(f"{n} jobs ({kinds}): {status_text}.")
    grid = grid_overrides(jobs)
    if grid:
        report.p(
            "Set by the grid: "
            + "; ".join(f"`{key}` = {', '.join(values)}" for key, values in grid.items())
            + "."
        )
    follow = [c for c in col.varying if not set_by_grid(c, grid)]
    if follow:
        report.p(
            ("Differ between jobs with them (not swept themselves): " if grid else
             "Choices that differ between jobs: ") + ", ".join(f"`{c}`" for c in follow)
        )  # fmt: skip

    report.h2("Configurations")
    summary = summarize(col)
    report.table(summary)
    is_train = (jobs["kind"] == "train").any()
    if is_train:
        report.p(
            f"Training runs: `f_max step 0` is measured on the train split at step 0 (mean ± sd "
            f"over seeds); `g step 0` is the single-initialization bias degree averaged over "
            f"seeds, an estimate of γ from which the regime is read (neutral below "
            f"{NEUTRAL_TOL:g}, deeply prejudiced from 1); `final val acc` is the last "
            f"epoch's accuracy; time to neutrality is the first measured step from which "
            f"on no class is the predicted fraction f_c of the {split} split more than "
            f"{col.tol:g} above that class's share of the split (median over the seeds that "
            f"got there; shares: {reference_text(jobs, split)}). `others − favoured` "
            "answers whether the initial bias slows the other classes: per seed, the steps "
            "the mean accuracy of the classes "
            "not favoured at step 0 needs to reach 90% of its final value, minus those the "
            "favoured class needs; mean over seeds with its 95% interval (`class_speed.png`)."
        )
    if (jobs["kind"] == "ensemble").any():
        report.p(
            "Ensembles: γ is the ensemble IGB strength E[mean_c μ_c²] / E[mean_c s_c²] over "
            "the initializations with its bootstrap 95% interval. The regime is read from "
            f"the interval: neutral when it lies below {NEUTRAL_TOL:g}, prejudiced between "
            "that and 1, deeply prejudiced above 1, and every regime it spans when it "
            'straddles a threshold ("neutral or prejudiced"). Where the theory covers the '
            "model, `γ theory` is its infinite-width prediction and `γ theory (width)` the "
            "prediction at the network's width; the measurement is held against the latter "
            "where there is one: `measured / theory` the ratio (1 where both are zero) and "
            "`theory in CI` how many jobs have the prediction inside their interval, widened "
            f"by {ZERO:g} so that a measured 1e-14 agrees with a predicted 0 (columns "
            "`gamma_theory`, `gamma_theory_finite`, `gamma_predicted`, `gamma_ratio`, "
            "`theory_in_ci` of `jobs.csv`)."
        )

    report.h2("Jobs that did not finish")
    bad = col.not_finished
    twins = len(col.twins)
    if bad.empty:
        again = f" ({twins} more repeated one of them: twins, counted once)" if twins else ""
        report.p(f"All {n - twins} jobs finished{again}.")
    else:
        cols = [c for c in ("job", "config", "seed", "status", "error", "overrides") if c in bad]
        shown = bad[cols].copy()
        for c in ("error", "overrides"):
            if c in shown:
                shown[c] = shown[c].map(_short)
        report.p(
            f"{len(bad)} of {n} jobs did not finish; they are left out of the figures and the "
            "summary, and kept in `jobs.csv` with their status and error."
        )
        report.table(shown)

    report.h2("Figures")
    if not figures:
        report.p("No figure: no finished job logged the series the figures need.")
    for fig in figures:
        report.figure(fig)

    report.h2("Jobs")
    cols = [c for c in JOB_COLUMNS if c in jobs and jobs[c].notna().any()]
    table = jobs[cols].copy()
    if "error" in table:
        table["error"] = table["error"].map(lambda e: _short(e, 80))
    report.table(table)
    copies = "/`.parquet`" if parquet_available() else ""
    report.p(
        f"Tables next to this report: `jobs.csv`{copies} (one row per job, one column "
        f"per config choice), `series.csv`{copies} (every logged metric per job and step)"
        + (
            f", `inits.csv`{copies} (ensembles: one row per initialization)"
            if not col.inits.empty
            else ""
        )
        + "; this report's tables as LaTeX (booktabs) in `tables/*.tex`."
    )
    return report


def grid_overrides(jobs: pd.DataFrame) -> dict[str, list[str]]:
    """Override key -> its values, for the overrides that differ between the jobs."""
    if "overrides" not in jobs:
        return {}
    per_job = [
        dict(o.split("=", 1) for o in str(text).split() if "=" in o)
        for text in jobs["overrides"].fillna("")
    ]
    keys = sorted(set().union(*per_job)) if per_job else []
    out = {}
    for key in keys:
        values = [d.get(key) for d in per_job]
        if len(set(values)) > 1:
            out[key] = list(dict.fromkeys(str(v) for v in values if v is not None))
    return out


def set_by_grid(column: str, grid: dict[str, list[str]]) -> bool:
    """Whether a choice column is one the grid sets (its key, or its group's option)."""
    key = CHOICES.get(column, column)
    group = key.split(".")[0]
    if key in grid or column in grid:
        return True
    if column.startswith("norm"):  # norm=pre|post sets the placement; norm.kind the kind
        return any(k == "norm" or k.startswith("norm.") for k in grid)
    return group in grid and key == f"{group}.name"


def write(report: Report, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, htm = out / "report.md", out / "report.html"
    atomic_write_text(md, report.markdown(out))
    atomic_write_text(htm, report.html())
    write_tex_tables(report, out / "tables")
    return md, htm


def write_tex_tables(report: Report, out: Path) -> list[Path]:
    """Every table of the report as ``<out>/<its section>.tex`` (booktabs), for a paper."""
    from multirun_analysis.latex import booktabs

    written: list[Path] = []
    section = "table"
    for b in report.blocks:
        if b.kind == "h2":
            section = re.sub(r"[^a-z0-9]+", "_", b.content.lower()).strip("_")
        elif b.kind == "table" and not b.content.empty:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{section}.tex"
            path.write_text(booktabs(b.content, _fmt))
            written.append(path)
    return written
