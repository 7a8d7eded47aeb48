"""An ensemble job as its launch describes it: typed values instead of the composed config.

The launch (:mod:`igb.launch.ensemble_job`) hands over the job's groups once, and
:meth:`EnsembleSpec.from_groups` reads every key the job needs from them, as plain values
(:func:`igb.plain.plain`); the job's modules take these values and read no config (the
defaults of the keys live in conf/ensemble.yaml).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from igb.ensemble.resolve import resolve_theory_points
from igb.logging.tracked_run import TrackedRun
from igb.plain import plain

#: the config groups an ensemble's spec is read from
GROUPS = ("model", "norm", "dataset", "ensemble")


@dataclass(frozen=True)
class EnsembleSettings:
    """The ``ensemble.*`` keys a job reads (conf/ensemble.yaml says what each one does).

    ``theory_points`` is resolved: the most evaluation points the theory walks, None for
    all of them (:func:`igb.ensemble.resolve.resolve_theory_points`)."""

    n_inits: int
    seed0: int
    vary: str
    eval_split: str
    eval_samples: int | None
    batch_size: int
    norm_mode: str
    device: str
    method: str
    workers: int | str | None
    chunk_size: int | str | None
    n_boot: int
    ci_level: float
    progress: bool
    shards: int
    profile: bool
    profile_features: str
    theory: bool
    theory_points: int | None

    @classmethod
    def from_mapping(cls, ens: Mapping[str, Any]) -> EnsembleSettings:
        """The resolved ``ensemble`` group's values; a config saved before a key existed
        gets the value that key's absence meant."""
        return cls(
            n_inits=int(ens["n_inits"]),
            seed0=int(ens["seed0"]),
            vary=str(ens.get("vary", "all")),
            eval_split=str(ens["eval_split"]),
            eval_samples=ens["eval_samples"],
            batch_size=int(ens["batch_size"]),
            norm_mode=str(ens["norm_mode"]),
            device=str(ens["device"]),
            method=str(ens["method"]),
            workers=ens.get("workers", "auto"),
            chunk_size=ens["chunk_size"],
            n_boot=int(ens["n_boot"]),
            ci_level=float(ens["ci_level"]),
            progress=bool(ens.get("progress", True)),
            shards=int(ens.get("shards", 1)),
            profile=bool(ens.get("profile", False)),
            profile_features=str(ens.get("profile_features", "pool")),
            theory=bool(ens.get("theory", True)),
            theory_points=resolve_theory_points(ens),
        )


#: makes the logger ``logger.<name>`` of a job's run (None: the ensemble does not log there)
LoggerFactory = Callable[..., Any]


@dataclass(frozen=True)
class EnsembleSpec:
    """One ensemble job, as its modules read it.

    ``model``, ``norm``, ``dataset``: the resolved groups as plain dicts. ``choices``: the
    configuration choices that place it among others (summary.json, the figures' titles).
    ``config_id``: the configuration's hash (status.json; the blocks on disk carry it).
    ``run``: the job's name, tags, group and resolved config, as W&B records them.
    ``loggers``: ``logger.<name>`` -> a factory of that logger taking ``run=`` (W&B), or
    None for a logger the ensemble does not write to.
    """

    model: Mapping[str, Any]
    norm: Mapping[str, Any]
    dataset: Mapping[str, Any]
    ensemble: EnsembleSettings
    choices: Mapping[str, Any]
    config_id: str = ""
    run: TrackedRun = field(default_factory=TrackedRun)
    loggers: Mapping[str, LoggerFactory | None] = field(default_factory=dict)

    @classmethod
    def from_groups(cls, groups: Mapping[str, Mapping[str, Any]], **job: Any) -> EnsembleSpec:
        """The spec of the groups :data:`GROUPS` of a composed configuration (as plain
        values: :func:`igb.plain.plain`); ``job``: the ``config_id``, ``run`` and
        ``loggers`` of a job that runs in a folder."""
        values = {g: plain(groups[g]) for g in GROUPS}
        return cls(model=values["model"], norm=values["norm"], dataset=values["dataset"],
                   ensemble=EnsembleSettings.from_mapping(values["ensemble"]),
                   choices=choices(values), **job)  # fmt: skip


def choices(groups: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The configuration choices a reader needs to place this ensemble among others, from
    the resolved groups :data:`GROUPS`."""
    model, norm, dataset, ens = (groups[g] for g in GROUPS)
    placement = norm["placement"]
    out = {
        "model": model.get("name"),
        "norm_placement": placement,
        "norm_kind": norm["kind"] if placement != "none" else "none",
        "activation": model.get("activation", "relu"),
        "depth": model.get("depth"),
        "width": model.get("width"),
        "init": model.get("init", "kaiming_normal"),
        "dataset": dataset.get("name"),
        "eval_split": ens["eval_split"],
        "vary": ens.get("vary", "all"),
        "norm_mode": ens.get("norm_mode"),
        "neutralize": model.get("neutralize", "none"),
        "weight_var": model.get("weight_var"),
        "bias_var": model.get("bias_var", 0.0),
        "unit_pool": model.get("unit_pool", "none"),
        "unit_pool_size": model.get("unit_pool_size"),
    }
    # external models: the class, loaded weights and input size, where set (the log too)
    for key, name in (("cls", "class"), ("weights", "weights"), ("input_size", "input_size")):
        value = model.get(key)
        if value is not None:
            # a list ([H, W]) as its text, the form summary.json has always recorded
            out[name] = str(value) if isinstance(value, list) else value
    return out
