"""A W&B workspace (saved view) and report with the paper's panels, for users with an account.

Needs the optional ``wandb-workspaces`` package (``pip install wandb-workspaces``, or the
``wandb-report`` extra of this project); it is imported only here, so the rest of
``multirun_analysis`` works without it. Creating the view or report needs network and a
W&B login; building the objects (``--dry-run``) does not.

    python -m multirun_analysis.dashboard --entity ME --project igb                  # workspace
    python -m multirun_analysis.dashboard --entity ME --project igb --report \\
        --group placement_mlp_dynamics-placement_mlp_dynamics_2026-11-24_12-00-00    # one sweep

Panels, three to a row (``--dry-run`` lists them with their keys). Ensembles: gamma per
run (summary ``gamma``) and its interval (``gamma_ci_lo``/``gamma_ci_hi``), the histogram
of f over initializations (``ensemble/histogram``) and the per-initialization table
(``ensemble/inits``). Training runs (x = ``trainer/global_step`` on a log axis, runs
grouped by ``--group-by``, seeds averaged with a one-standard-deviation band), for the
split ``--split``:

- initial bias and neutrality: ``igb/{split}/f_max``, ``igb/{split}/entropy``,
  ``igb/{split}/bias_degree``, ranked fractions ``igb/{split}/f_rank/*``;
- favoured class vs the rest: ``{split}/acc_rank/1`` (the class favoured at step 0) next to
  every ``{split}/acc_rank/*``, and ``{split}/acc``, ``{split}/loss``;
- per-class series: ``{split}/acc_class/*``, ``igb/{split}/f/*``.

Runs are grouped by their W&B job type (``<model>-<norm kind>-<placement>``, e.g.
``mlp-batch-post``, or ``mlp-none``: see ``igb.jobs.identity.run_identity``) by default, or by any
config key (``--group-by config.norm.placement``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from typing import Any

from igb.errors import OneLineParser

#: what the panels may group runs by, besides ``config.<key>``
GROUP_BY = ("JobType", "Group")

STEP = "trainer/global_step"
INSTALL_HINT = "pip install wandb-workspaces  (or: pip install -e '.[wandb-report]')"


def _modules() -> tuple[Any, Any]:
    try:
        # wandb-workspaces still declares pydantic-v1 validators: pydantic warns about its
        # code at import, which a user of this dashboard cannot act on
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*Pydantic V1 style `@validator`")
            import wandb_workspaces.reports.v2 as wr
            import wandb_workspaces.workspaces as ws
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit(f"the W&B dashboard needs wandb-workspaces: {INSTALL_HINT}") from exc
    return wr, ws


def _group_key(module: Any, group_by: str) -> Any:
    """``JobType``/``Group`` (run attributes) or ``config.<key>`` -> a groupby of
    ``module`` (``reports.v2`` for panels, ``workspaces`` for a workspace's runset)."""
    if group_by.startswith("config."):
        return module.Config(group_by.removeprefix("config."))
    return module.Metric(group_by)


def panels(split: str = "val", group_by: str = "JobType") -> dict[str, list[Any]]:
    """Section name -> W&B panels (``wandb_workspaces.reports.v2`` objects)."""
    wr, _ = _modules()
    group = _group_key(wr, group_by)

    def line(title: str, y: list[str] | None = None, regex: str | None = None, **kw: Any) -> Any:
        return wr.LinePlot(
            title=title,
            x=STEP,
            y=y or [],
            metric_regex=regex,
            log_x=True,
            title_x="optimizer step (log)",
            groupby=group,
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
            **kw,
        )

    ensemble = [
        wr.BarPlot(
            title="γ (IGB strength) per ensemble",
            metrics=[wr.SummaryMetric("gamma")],
            groupby=group,
            groupby_aggfunc="mean",
            groupby_rangefunc="minmax",
        ),
        wr.BarPlot(
            title="γ 95% interval (bootstrap)",
            metrics=[wr.SummaryMetric("gamma_ci_lo"), wr.SummaryMetric("gamma_ci_hi")],
            groupby=group,
        ),
        wr.MediaBrowser(
            title="histogram of f over initializations",
            media_keys=["ensemble/histogram"],
            num_columns=2,
        ),  # fmt: skip
        wr.WeavePanelSummaryTable(table_name="ensemble/inits"),
    ]
    return _on_grid({
        "Ensembles": ensemble,
        "Initial bias and neutrality": [
            line(f"f_max ({split})", [f"igb/{split}/f_max"], range_y=(0.0, 1.0)),
            line(f"prediction entropy / log C ({split})", [f"igb/{split}/entropy"]),
            line(f"bias degree g ({split})", [f"igb/{split}/bias_degree"], log_y=True),
            line(f"ranked fractions f_(k) ({split})", regex=rf"igb/{split}/f_rank/\d+"),
        ],
        "Favoured class vs the rest": [
            line(
                f"accuracy of the class favoured at step 0 ({split})",
                [f"{split}/acc_rank/1"],
                range_y=(0.0, 1.0),
            ),
            line(f"accuracy by step-0 rank ({split})", regex=rf"{split}/acc_rank/\d+"),
            line(f"accuracy ({split})", [f"{split}/acc"], range_y=(0.0, 1.0)),
            line(f"loss ({split})", [f"{split}/loss"], log_y=True),
        ],
        "Per class": [
            line(f"per-class accuracy ({split})", regex=rf"{split}/acc_class/\d+"),
            line(f"prediction fractions f_c ({split})", regex=rf"igb/{split}/f/\d+"),
        ],
    })  # fmt: skip


#: panels per row of a section's grid, and one panel's size in W&B's 24-column grid
_PER_ROW, _W, _H = 3, 8, 6


def _on_grid(sections: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Place each section's panels on a grid, three to a row (W&B stacks them all at
    x=0, y=0 otherwise)."""
    wr, _ = _modules()
    for items in sections.values():
        for i, panel in enumerate(items):
            x, y = (i % _PER_ROW) * _W, (i // _PER_ROW) * _H
            panel.layout = wr.Layout(x=x, y=y, w=_W, h=_H)
    return sections


def panel_keys(panel: Any) -> list[str]:
    """The W&B keys a panel shows (metrics, regexes, media, table)."""
    keys: list[str] = []
    for attr in ("y", "metrics", "media_keys"):
        for key in getattr(panel, attr, None) or []:
            keys.append(str(getattr(key, "name", key)))
    for attr in ("metric_regex", "table_name"):
        if getattr(panel, attr, None):
            keys.append(str(getattr(panel, attr)))
    return keys


def listing(sections: dict[str, list[Any]]) -> str:
    """A readable listing of the panels: section, then ``[x,y wxh] kind: title: keys``."""
    lines = []
    for name, items in sections.items():
        lines.append(f"{name}:")
        for panel in items:
            lay = panel.layout
            title = getattr(panel, "title", None) or getattr(panel, "table_name", "")
            where = f"[{lay.x:>2},{lay.y:>2} {lay.w}x{lay.h}]"
            lines.append(
                f"  {where} {type(panel).__name__}: {title}: {', '.join(panel_keys(panel))}"
            )
    return "\n".join(lines)


@dataclass(frozen=True)
class View:
    """Which runs a workspace or report shows and how: the W&B ``entity``/``project``, one
    W&B ``group`` (a sweep) or all runs, the ``split`` of the series, the runs' grouping
    (``group_by``: a W&B run field or ``config.<key>``) and a title (default: named by the
    group). :meth:`workspace` and :meth:`report` build the two kinds from it."""

    entity: str
    project: str
    group: str | None = None
    split: str = "val"
    group_by: str = "JobType"
    title: str | None = None

    @property
    def heading(self) -> str:
        return self.title or f"IGB by norm placement{' - ' + self.group if self.group else ''}"

    @property
    def filters(self) -> str:
        return f"Group = '{self.group}'" if self.group else ""

    def workspace(self) -> Any:
        """A saved-view definition (``wandb_workspaces.workspaces.Workspace``); call
        ``.save()``."""
        _, ws = _modules()
        sections = [
            ws.Section(name=title, panels=items, is_open=True)
            for title, items in panels(self.split, self.group_by).items()
        ]
        return ws.Workspace(
            entity=self.entity,
            project=self.project,
            name=self.heading,
            sections=sections,
            settings=ws.WorkspaceSettings(x_axis=STEP, max_runs=100),
            runset_settings=ws.RunsetSettings(
                filters=self.filters, groupby=[_group_key(ws, self.group_by)]
            ),
        )

    def report(self) -> Any:
        """A report definition (``wandb_workspaces.reports.v2.Report``); call ``.save()``."""
        wr, _ = _modules()
        group_by = self.group_by
        runset_group = group_by if group_by.startswith("config.") else f"run.{group_by}"
        runset = wr.Runset(
            entity=self.entity,
            project=self.project,
            name=self.group or "all runs",
            filters=self.filters,
            groupby=[runset_group],
        )
        blocks: list[Any] = [
            wr.P(
                "Initial guessing bias by norm placement: prediction fractions and the accuracy "
                "of the class favoured at initialization over log-scaled training steps, runs "
                f"grouped by {group_by}, mean and one standard deviation over seeds."
            )
        ]
        for title_, items in panels(self.split, group_by).items():
            blocks += [wr.H2(title_), wr.PanelGrid(runsets=[runset], panels=items)]
        return wr.Report(
            entity=self.entity,
            project=self.project,
            title=self.heading,
            description="Made by multirun_analysis.dashboard",
            blocks=blocks,
        )


def group_by(text: str) -> str:
    """An ``argparse`` type: what the panels group runs by."""
    if text in GROUP_BY or (text.startswith("config.") and len(text) > len("config.")):
        return text
    raise argparse.ArgumentTypeError(
        f"{text} is not a grouping; allowed: {', '.join(GROUP_BY)}, config.<key>"
    )


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m multirun_analysis.dashboard", description=__doc__)
    p.add_argument("--entity", required=True)
    p.add_argument("--project", default="igb")
    p.add_argument("--group", help="only the runs of this W&B group (one sweep)")
    p.add_argument("--split", default="val", choices=("train", "val"))
    p.add_argument(
        "--group-by", default="JobType", type=group_by,
        help="JobType (default), Group, or config.<key>",
    )  # fmt: skip
    p.add_argument("--report", action="store_true", help="a report instead of a workspace view")
    p.add_argument("--dry-run", action="store_true", help="build it, print it, save nothing")
    args = p.parse_args(argv)
    view = View(args.entity, args.project, args.group, args.split, args.group_by)
    obj = view.report() if args.report else view.workspace()
    if args.dry_run:
        kind = "report" if args.report else "workspace"
        where = f"{args.entity}/{args.project}" + (f", group {args.group}" if args.group else "")
        print(f"W&B {kind} for {where} (dry run: nothing saved)")
        print(listing(panels(args.split, args.group_by)))
        return 0
    saved = obj.save()
    print(getattr(saved, "url", None) or getattr(obj, "url", None) or "saved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
