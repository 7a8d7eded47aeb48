"""What a run did, said at its end: the job folder, headline numbers, the next command.

A single run ends with a few lines (console and the job's log): where its results are,
final train/val/test accuracy and loss, the step-0 bias (``f_max`` against ``1/C``,
normalised entropy, bias degree) and the wall time. A multirun ends with the sweep
folder, one line per job (status and headline numbers) and the
``python -m multirun_analysis <folder>`` command that turns it into figures.

Everything is read from the job folders' ``status.json`` (``metrics``: final values;
``initial``: the step-0 statistics), so the multirun summary sees exactly what each job
recorded, whichever process or machine ran it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from igb import SPLITS
from igb.jobs.status import DAMAGED, DIVERGED, FINISHED, STATUS_FILE, TWIN

log = logging.getLogger(__name__)

#: the split whose step-0 statistics headline a run (the fixed train subset)
INITIAL_SPLIT = "train"
#: what a job folder holds, named in the summary when present
#: (split_shares.json is igb.data.shares.SHARES_FILE, named here: jobs may not import data)
_FILES = (
    "metrics.csv", STATUS_FILE, "config.yaml", "split_shares.json", "checkpoints/", "wandb/"
)  # fmt: skip


def num(value: Any, digits: int = 3) -> str:
    """A number for a summary line: fixed digits, no ``-0.000``, ``-`` when missing."""
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "nan"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def initial_bias(initial: Mapping[str, float], split: str = INITIAL_SPLIT) -> dict[str, float]:
    """Step-0 ``f_max``, entropy, bias degree and class count of one split's recorded row."""
    prefix = f"igb/{split}/"
    num_classes = sum(1 for k in initial if k.startswith(f"{prefix}f/"))
    out = {
        key: float(initial[prefix + key])
        for key in ("f_max", "entropy", "bias_degree")
        if prefix + key in initial
    }
    if num_classes:
        out["num_classes"] = num_classes
    return out


#: z of the two-sided 99% interval of a binomial proportion (the chance interval)
CHANCE_Z = 2.576


def chance_record(
    metrics: Mapping[str, float], shares: Mapping[str, Any], split: str = "val"
) -> dict[str, Any] | None:
    """Whether the final accuracy on ``split`` is no better than guessing: at or below the
    99% interval around the accuracy of always predicting the split's largest class
    (``1/C`` on a balanced split), given the split's size. None: nothing to judge by."""
    acc = metrics.get(f"{split}/acc")
    part = (shares.get("splits") or {}).get(split) or {}
    n, split_shares = part.get("size"), part.get("shares")
    if acc is None or not n or not split_shares or math.isnan(float(acc)):
        return None
    level = max(split_shares)
    half = CHANCE_Z * math.sqrt(level * (1 - level) / n)
    low, high = max(0.0, level - half), min(1.0, level + half)
    return {"split": split, "acc": float(acc), "level": level, "interval": [low, high],
            "n": int(n), "learned_nothing": float(acc) <= high}  # fmt: skip


def chance_warning(status: Mapping[str, Any]) -> str | None:
    """The run summary's line for a job that learned nothing (None: it learned)."""
    chance = status.get("chance")
    if not isinstance(chance, Mapping) or not chance.get("learned_nothing"):
        return None
    low, high = chance["interval"]
    return (
        f"learned nothing: final {chance['split']} acc {num(chance['acc'])} is inside the "
        f"chance interval [{num(low)}, {num(high)}] (always guessing the largest class: "
        f"{num(chance['level'])}, {chance['n']} points)"
    )


def job_lines(folder: Path, status: Mapping[str, Any], wall_s: float | None = None) -> list[str]:
    """The end-of-run summary of one job, as lines (no trailing newline)."""
    state = status.get("status", "no status")
    metrics = status.get("metrics") or {}
    head = f"run {state}" + (f" in {wall_s:.1f} s" if wall_s is not None else "")
    lines = [f"{head}: {folder}"]
    if state != FINISHED and status.get("error"):
        lines.append(f"  {state}: {status['error']}")
    if metrics:
        for what in ("acc", "loss"):
            values = "  ".join(f"{s} {num(metrics.get(f'{s}/{what}'))}" for s in SPLITS)
            lines.append(f"  final {what:<5} {values}")
    warning = chance_warning(status)
    if warning:
        lines.append(f"  warning: {warning}")
    bias = initial_bias(status.get("initial") or {})
    if bias:
        chance = f" (1/C = {num(1 / bias['num_classes'])})" if "num_classes" in bias else ""
        lines.append(
            f"  step 0 ({INITIAL_SPLIT}): f_max {num(bias.get('f_max'))}{chance}  "
            f"entropy {num(bias.get('entropy'))}  bias degree {num(bias.get('bias_degree'))}"
        )
    files = [name for name in _FILES if (Path(folder) / name.rstrip("/")).exists()]
    if files:
        lines.append(f"  in that folder: {', '.join(files)}")
    if (Path(folder) / "metrics.csv").is_file():  # what the figures are drawn from
        lines.append(f"  figures of this run: python -m multirun_analysis {folder}")
    return lines


def log_job(folder: Path, status: Mapping[str, Any], wall_s: float | None = None) -> None:
    """Log :func:`job_lines` (INFO: Hydra shows it on the console and in the job's log)."""
    for line in job_lines(folder, status, wall_s):
        log.info(line)


def headline(status: Mapping[str, Any]) -> str:
    """One job's numbers in one line: final val/test accuracy, step-0 f_max, or its error."""
    state = status.get("status")
    if state == TWIN:
        return f"the job of {status.get('twin_of', '?')} (counted there)"
    if state not in (FINISHED, None) and status.get("error"):
        return str(status["error"])
    metrics = status.get("metrics") or {}
    bias = initial_bias(status.get("initial") or {})
    parts = [
        f"{s} acc {num(metrics[f'{s}/acc'])}" for s in ("val", "test") if f"{s}/acc" in metrics
    ]
    if "f_max" in bias:
        parts.append(f"step-0 f_max {num(bias['f_max'])}")
    if "gamma" in status:  # an initialization ensemble (ensemble.py)
        parts.append(f"gamma {num(status['gamma'], 4)} ({status.get('regime', '?')})")
        if status.get("theory"):  # the prediction beside it (igb.theory.compare.headline)
            parts.append(str(status["theory"]))
    if chance_warning(status):
        parts.append("LEARNED NOTHING (chance level)")
    return "  ".join(parts) or "-"


def multirun_lines(
    sweep_dir: Path, statuses: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]
) -> list[str]:
    """The end-of-multirun summary: sweep folder, one line per job, the analysis command.

    ``labels`` names each job by what tells it apart (its own overrides). A twin
    (:mod:`igb.jobs.twins`) is listed but counted once, as the job it repeats."""
    finished = [n for n, st in statuses.items() if st.get("status") == FINISHED]
    twins = sum(1 for st in statuses.values() if st.get("status") == TWIN)
    also = f" ({twins} more repeating one of them)" if twins else ""
    head = f"multirun: {len(finished)}/{len(statuses) - twins} jobs finished{also} in {sweep_dir}"
    found = [n for n in finished if statuses[n].get("ran_here") is False]
    if found:  # finished by an earlier or a concurrent launch: this one skipped them
        head += (
            f" ({len(finished) - len(found)} run by this launch, {len(found)} found "
            "finished and skipped)"
        )
    lines = [head]
    width = max((len(labels.get(n, "")) for n in statuses), default=0)
    for name, st in statuses.items():
        state = st.get("status") or "not started"
        if name in found:
            state = "skipped"
        label = labels.get(name, "-")
        lines.append(f"  {name:>3} {state:<11} {label:<{width}}  {headline(st)}")
    at_chance = [n for n in finished if chance_warning(statuses[n])]
    if at_chance:
        listed = ", ".join(f"{n} ({labels.get(n, '-')})" for n in at_chance)
        lines.append(f"multirun: {len(at_chance)} finished jobs learned nothing (final "
                     f"accuracy inside the chance interval): {listed}")  # fmt: skip
    lines.append(f"next: python -m multirun_analysis {sweep_dir}")
    return lines


def unsuccessful(statuses: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Jobs that count as failed in a grid's exit code: anything but ``finished`` (a twin
    counts as the job it repeats).

    A diverged job is an outcome of its configuration (a relaunch skips it) but not a
    result: the grid did not produce what was asked for, so it must not exit 0."""
    return [name for name, st in statuses.items() if st.get("status") not in (FINISHED, TWIN)]


def failure_message(
    sweep_dir: Path,
    statuses: Mapping[str, Mapping[str, Any]],
    names: Sequence[str],
    labels: Mapping[str, str],
) -> str:
    """The one-line reason a grid exits 1, with what a relaunch would do."""
    listed = ", ".join(f"{n} ({labels.get(n, '-')})" for n in names)
    diverged = [n for n in names if statuses[n].get("status") == DIVERGED]
    damaged = [n for n in names if statuses[n].get("status") == DAMAGED]
    hint = "relaunching the same command resumes the failed ones and skips the finished ones"
    if damaged:
        hint += (
            "; damaged jobs are left as they are (run one again alone with hydra.run.dir=<its "
            "folder> restart=true, which moves its results aside)"
        )
    if diverged:
        hint += (
            "; diverged jobs are kept as outcomes (change their settings, e.g. a smaller "
            "optimizer.lr, or pass skip_finished=false to rerun them)"
        )
    return f"{len(names)} of {len(statuses)} jobs did not finish: {listed} (in {sweep_dir}; {hint})"


#: per-class and per-rank keys of the step-0 row that status.json does not repeat
#: (metrics.csv has them); ``f/{c}`` is kept: it is the initial bias itself
_PER_CLASS = ("/acc_class/", "/loss_class/", "/acc_rank/", "/f_rank/")


def initial_row(callbacks: Sequence[Any]) -> dict[str, float]:
    """The step-0 statistics recorded by the statistics callback ({} without one)."""
    for cb in callbacks:
        initial = getattr(cb, "initial", None)
        if isinstance(initial, dict) and initial:
            return {k: v for k, v in initial.items() if not any(p in k for p in _PER_CLASS)}
    return {}
