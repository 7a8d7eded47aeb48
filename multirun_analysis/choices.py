"""The config choices of a job: which key sets each column of the jobs table, the order
in which norms and configurations are shown, and a configuration's short name."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from igb import PLACEMENTS
from igb.jobs.identity import norm_label, optimizer_name
from multirun_analysis.folders import override_key, override_value, select
from multirun_analysis.results import missing, num

#: column name -> config key. The first columns of the jobs table.
CHOICES: dict[str, str] = {
    "experiment": "task_name",
    "model": "model.name",
    "norm_placement": "norm.placement",
    "norm_kind": "norm.kind",
    "activation": "model.activation",
    "depth": "model.depth",
    "width": "model.width",
    "init": "model.init",
    "weight_var": "model.weight_var",
    "bias_var": "model.bias_var",
    "unit_pool": "model.unit_pool",
    "unit_pool_size": "model.unit_pool_size",
    "arch": "model.arch",
    "model_class": "model.cls",
    "weights": "model.weights",
    "input_size": "model.input_size",
    "dataset": "dataset.name",
    "num_classes": "dataset.num_classes",
    "optimizer": "optimizer._target_",  # shown as its class, lower-cased: sgd
    "scheduler": "scheduler._target_",  # shown as its factory: constant, cosine, step
    "lr": "optimizer.lr",
    "batch_size": "dataset.batch_size",
    "epochs": "trainer.max_epochs",
    "n_inits": "ensemble.n_inits",
    "vary": "ensemble.vary",
    "norm_mode": "ensemble.norm_mode",
    "seed": "seed",
}

#: override keys that select a column of CHOICES (or only steer where things go)
_NOT_A_CHOICE = {"hydra.sweep.dir", "hydra.run.dir", "experiment", "paths.log_dir"}

#: norm kinds and placements in the order the paper discusses them (the order of rows
#: and legends; not the order of a block's operations, igb.nn.norm_act.PLACEMENT_ORDER)
KIND_DISPLAY_ORDER = (
    "none",
    "batch",
    "layer",
    "rms",
    "group",
    "instance",
    "center",
    "center_init",
    "native",
)


def norm_sort_key(label: Any) -> tuple:
    """Sort key of a norm label: none, batch-pre, batch-post, layer-pre, ..."""
    kind, _, placement = str(label).partition("-")
    k = KIND_DISPLAY_ORDER.index(kind) if kind in KIND_DISPLAY_ORDER else len(KIND_DISPLAY_ORDER)
    p = PLACEMENTS.index(placement) if placement in PLACEMENTS else 0
    return (k, kind, p, placement)


def config_order(jobs: pd.DataFrame) -> list[str]:
    """Configurations of ``jobs``: by model, then norm order, then the numbers in the name."""
    firsts = jobs.drop_duplicates("config").to_dict("records")

    def key(r: Mapping[str, Any]) -> tuple:
        def part(v: Any) -> tuple:
            x = num(v)
            return (0, x, "") if math.isfinite(x) else (1, 0.0, str(v))

        rest = tuple(part(r.get(c)) for c in ("activation", "depth", "width"))
        return (str(r.get("model")), norm_sort_key(r.get("norm", "")), rest, str(r["config"]))

    return [r["config"] for r in sorted(firsts, key=key)]


def extra_choice(key: str) -> bool:
    """Whether an override key is a choice with a column of its own, after CHOICES': not
    a key CHOICES reads, not one that only steers where things go, not Hydra's, and not
    a config group's option (``model/head=...``)."""
    return (
        key not in CHOICES.values()
        and key not in _NOT_A_CHOICE
        and not key.startswith("hydra")
        and "/" not in key
    )


def choices_row(cfg: DictConfig, overrides: Iterable[str], summary: Mapping[str, Any]) -> dict:
    """One value per config choice (CHOICES, then every other overridden key)."""
    row: dict[str, Any] = {}
    choices = summary.get("choices") if isinstance(summary.get("choices"), Mapping) else {}
    for col, key in CHOICES.items():
        value = select(cfg, key)
        if value is None and col in choices:
            value = choices[col]
        row[col] = value
    for col in ("optimizer", "scheduler"):  # a `_target_` path -> its last part
        if isinstance(row.get(col), str) and "." in row[col]:
            row[col] = optimizer_name({"_target_": row[col]})
    classes = select(cfg, "dataset.classes")
    if classes:  # dataset.num_classes is the source's; the task has one class per entry
        row["num_classes"] = len(classes)
    if row["num_classes"] is None and summary.get("n_classes") is not None:
        row["num_classes"] = summary["n_classes"]
    placement = row["norm_placement"]
    row["norm"] = norm_label(placement, row["norm_kind"])
    if placement in (None, "none"):
        row["norm_kind"] = "none"
        row["norm_placement"] = "none"
    for ov in overrides:
        key = override_key(ov)
        if not extra_choice(key) or key in row:
            continue
        value = select(cfg, key)
        if isinstance(value, Mapping):
            continue  # a config-group choice (norm=post, model=cnn): the columns above hold it
        row[key] = value if value is not None else override_value(ov)
    return row


def label_value(value: Any) -> str | None:
    """A choice's value as a label or file-name part: None for a value the job does not
    have (never ``nan``), a file's name for a path (``/ckpt/backbone.pt`` -> ``backbone.pt``),
    the last part of an import path (``pkg.nets.MyNet`` -> ``MyNet``)."""
    if missing(value):
        return None
    if isinstance(value, list | tuple):
        return "x".join(str(v) for v in value)
    text = str(value)
    if "/" in text or "\\" in text:
        return text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return text


def config_label(row: Mapping[str, Any], varying: Iterable[str]) -> str:
    """A short name of a configuration from the choices that vary (seed excluded):
    ``cnn batch-post depth=5``, ``torchvision-resnet18 vary=head weights=backbone.pt``.
    A choice a job does not have (a train job's ``vary``) is left out."""
    parts = []
    cols = [c for c in varying if c not in ("seed", "norm_placement", "norm_kind", "norm_variant")]
    # model first, then the norm, then the rest in column order: "cnn batch-post depth=5"
    cols.sort(key=lambda c: {"model": 0, "norm": 1}.get(c, 2))
    for col in cols:
        value = label_value(row.get(col))
        if value is None:
            continue
        if col == "model" and value == "custom" and label_value(row.get("model_class")):
            parts.append(f"custom:{label_value(row.get('model_class')).rsplit('.', 1)[-1]}")
        elif col == "model_class":
            parts.append(f"class={value.rsplit('.', 1)[-1]}")
        elif col in ("model", "norm", "activation", "dataset", "optimizer"):
            parts.append(value)
        else:
            parts.append(f"{col.rsplit('.', 1)[-1]}={value}")
    return " ".join(parts) or str(row.get("norm", "run"))


def varying_columns(jobs: pd.DataFrame, candidates: Iterable[str]) -> list[str]:
    out = []
    for col in candidates:
        if col in jobs and jobs[col].map(lambda v: repr(v)).nunique(dropna=False) > 1:
            out.append(col)
    return out


def choice_columns(jobs: pd.DataFrame) -> list[str]:
    """Config-choice columns of the jobs table, in a stable order."""
    extra = [c for c in jobs.columns if "." in c or c == "norm_variant"]
    return [*CHOICES, "norm", *extra]
