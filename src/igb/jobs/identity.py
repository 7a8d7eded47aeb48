"""What a job is: its name among other runs, and its configuration as its identity.

- :func:`norm_label` and :func:`run_identity`: the one naming of a run (W&B ``job_type``,
  tags, sweep group; the ``norm`` column of the analysis tables), shared by training,
  ensembles and ``multirun_analysis``.
- :func:`config_differences`: a job folder holds the result of one composed
  configuration. A relaunch into a folder whose ``config.yaml`` differs from the
  launched configuration would resume, skip or overwrite someone else's result; the
  job runner (:mod:`igb.jobs.runner`) and the pre-flight (:mod:`igb.launch.preflight`)
  refuse it, naming the keys that differ.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class IdentityRules:
    """What each config key is to a job's identity (its :func:`config_hash`).

    Declared on the key's field in :mod:`igb.launch.schema` (``runs()``, ``length()``...);
    :data:`RULES` is that declaration as data for this layer, which may not import the
    launch (``igb.launch.schema.identity_rules`` reads it from the fields, a test checks
    that the two agree)."""

    #: keys (and groups) that say where and how a job runs or is observed: a relaunch may
    #: change them freely
    runs: tuple[str, ...]
    #: keys that only say how long a run trains: with ``skip_finished=false`` a finished or
    #: interrupted run continues from its checkpoint to the new length
    length: tuple[str, ...]
    #: keys added after jobs were run, with the value those jobs had: a folder whose saved
    #: config lacks one holds the same job as a launch that sets it to this value
    absent_as: Mapping[str, Any]
    #: ``(key, value)`` -> keys that cannot change a job whose ``key`` is ``value``, each
    #: with the value that stands for it (two jobs that differ only there are twins)
    unused_when: Mapping[tuple[str, Any], Mapping[str, Any]]


RULES = IdentityRules(
    runs=(
        "callbacks", "checkpoint_every_s", "cluster", "dataset.data_dir", "ensemble.chunk_size",
        "ensemble.device", "ensemble.method", "ensemble.profile", "ensemble.profile_features",
        "ensemble.progress", "ensemble.shard", "ensemble.shards", "ensemble.theory",
        "ensemble.theory_points", "ensemble.workers", "hydra", "logger", "optimized_metric",
        "paths", "restart", "skip_finished", "trainer.default_root_dir",
        "trainer.enable_progress_bar",
    ),
    length=("trainer.max_epochs", "trainer.max_steps"),
    absent_as={
        "model.bias_var": 0.0, "model.head_bias_var": None, "model.head_weight_var": None,
        "model.neutralize": "none", "model.unit_pool": "none", "model.unit_pool_size": 2,
        "model.weight_var": None,
    },
    unused_when={
        ("norm.placement", "none"): {
            "norm.eps": 1e-5, "norm.groups": 8, "norm.kind": "batch", "norm.momentum": 0.1,
        },
    },
)  # fmt: skip

#: the keys of ``RULES.absent_as`` added after configuration hashes were first recorded: at
#: their default they stay out of the hash, so a folder recorded before they existed keeps
#: its hash (``model.neutralize`` was hashed from the start)
HASHED_ONLY_OFF_DEFAULT = tuple(k for k in RULES.absent_as if k != "model.neutralize")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def optimizer_name(optimizer_cfg: Any) -> str:
    """``sgd`` for ``torch.optim.SGD``: the optimizer node's class, lower-cased."""
    return str(optimizer_cfg.get("_target_", "")).rsplit(".", 1)[-1].lower() or "none"


def norm_label(placement: Any, kind: Any) -> str:
    """``none``, or ``<kind>-<placement>`` such as ``batch-post`` (``<placement>`` when the
    kind is unknown, as for a run read back without it)."""
    if _missing(placement) or placement == "none":
        return "none"
    if placement == "native":  # the architecture's own norms (model=torchvision|timm|custom)
        return "native"
    if _missing(kind):
        return str(placement)
    return f"{kind}-{placement}"


def run_identity(cfg: DictConfig, kind: str = "train") -> dict[str, Any]:
    """W&B ``job_type`` (``[ensemble-]model-kind-placement``), run ``name`` (the job type and
    the seed: ``mlp-batch-pre-seed3``; an ensemble's seed range), tags and sweep group of a job.

    ``kind`` is ``train``, ``ensemble`` or ``eval``; an ensemble's or an evaluation's job
    type and tags say so."""
    placement = cfg.norm.placement
    norm_kind = cfg.norm.kind if placement != "none" else "none"
    job_type = f"{cfg.model.name}-{norm_label(placement, cfg.norm.kind)}"
    neutralize = cfg.model.get("neutralize", "none")
    if neutralize != "none":  # model.neutralize: the centred head input is part of the name
        job_type = f"{job_type}-neutralize_{neutralize}"
    tags = [
        f"model:{cfg.model.name}",
        f"norm:{placement}",
        f"norm_kind:{norm_kind}",
        f"act:{cfg.model.get('activation', 'relu')}",
        f"dataset:{cfg.dataset.name}",
    ]
    if neutralize != "none":
        tags.append(f"neutralize:{neutralize}")
    tags += init_tags(cfg.model)
    if kind == "ensemble":
        job_type = f"ensemble-{job_type}"
        tags.insert(0, "ensemble")
        first = int(cfg.ensemble.seed0)
        name = f"{job_type}-seeds{first}-{first + int(cfg.ensemble.n_inits) - 1}"
    else:
        if kind == "eval":
            job_type = f"eval-{job_type}"
            tags.insert(0, "eval")
        seed = cfg.get("seed")
        name = job_type if seed is None else f"{job_type}-seed{seed}"
        if cfg.get("optimizer") is not None:
            tags.append(f"optimizer:{optimizer_name(cfg.optimizer)}")
    tags += [str(t) for t in cfg.get("tags", [])]
    return {"job_type": job_type, "name": name, "tags": tags, "group": sweep_group()}


def init_tags(model_cfg: Any) -> list[str]:
    """Tags of a non-default initialization or pooling: ``init:normal``, ``weight_var:2.0``,
    ``bias_var:0.05``, ``unit_pool:max2`` (none for the defaults)."""
    tags = []
    if model_cfg.get("init") == "normal":
        tags.append("init:normal")
    for key in ("weight_var", "bias_var", "head_weight_var", "head_bias_var"):
        value = model_cfg.get(key)
        if value not in (None, RULES.absent_as[f"model.{key}"]):
            tags.append(f"{key}:{value}")
    if model_cfg.get("unit_pool", "none") != "none":
        tags.append(f"unit_pool:{model_cfg.unit_pool}{model_cfg.get('unit_pool_size', 2)}")
    return tags


def sweep_group() -> str | None:
    """In a multirun: the sweep folder's name (prefixed by the experiment), else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return group_name(
        HydraConfig.get().sweep.dir, HydraConfig.get().runtime.choices.get("experiment")
    )


def group_name(sweep_dir: str | Path, experiment: str | None) -> str:
    """The W&B group of a sweep: its folder's name, prefixed by the experiment."""
    group = Path(sweep_dir).name
    return f"{experiment}-{group}" if experiment and experiment != "null" else group


# -- the configuration as identity -----------------------------------------------------------
def _flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


def _ignored(key: str, ignore: tuple[str, ...]) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in ignore)


def comparable(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Flat ``key -> value`` of what a job computes (operational keys left out).

    A composed config is resolved key by key, so that the operational keys (which may
    name Hydra's runtime folders) are never resolved; a saved config is resolved already.
    """
    if not isinstance(cfg, DictConfig):
        flat = {k: v for k, v in _flatten(dict(cfg)) if not _ignored(k, RULES.runs)}
        return _canonical(flat)
    out: dict[str, Any] = {}
    for key, raw in _flatten(OmegaConf.to_container(cfg, resolve=False)):
        if _ignored(key, RULES.runs):
            continue
        try:
            value = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
        except Exception:  # noqa: BLE001 - unresolvable here: compare the expression
            value = raw
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        out[key] = value
    return _canonical(out)


def _canonical(flat: dict[str, Any]) -> dict[str, Any]:
    """The one form of a job's configuration: a key of ``RULES.absent_as`` that is absent
    counts as its value, only where its group is there (``model.*``: a config without a
    model is not given one); a key that cannot change the job (``RULES.unused_when``)
    counts as the value that stands for it, so that twins have one identity."""
    for key, value in RULES.absent_as.items():
        group = key.rsplit(".", 1)[0]
        if key not in flat and any(k.startswith(f"{group}.") for k in flat):
            flat[key] = value
    for (when, value), unused in RULES.unused_when.items():
        if when in flat and flat[when] == value:
            flat.update({k: v for k, v in unused.items() if k in flat})
    return flat


def config_differences(
    saved: Mapping[str, Any], launched: DictConfig | Mapping[str, Any], extending: bool = False
) -> list[str]:
    """Keys whose values differ between a folder's saved config and the launched one.

    ``extending`` (``skip_finished=false``): a changed training length is a continuation,
    not another job."""
    old, new = comparable(saved), comparable(launched)
    keys = sorted(
        k for k in old.keys() | new.keys() if old.get(k, "<unset>") != new.get(k, "<unset>")
    )
    return [k for k in keys if not (extending and k in RULES.length)]


def config_hash(cfg: DictConfig | Mapping[str, Any]) -> str:
    """A short hash of what a job computes (:func:`comparable`, training length left out,
    so that extending a run keeps it). Recorded in ``status.json`` and in the checkpoint,
    so that the loss of one file (``config.yaml``) cannot erase the folder's identity."""
    flat = {
        k: v
        for k, v in comparable(cfg).items()
        if k not in RULES.length and not (k in HASHED_ONLY_OFF_DEFAULT and v == RULES.absent_as[k])
    }
    text = json.dumps(flat, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_differences(saved: Mapping[str, Any], launched: Any, keys: list[str]) -> str:
    """``seed: 0 -> 5, optimizer.lr: 0.1 -> 0.01`` (at most five keys, then a count)."""
    old, new = comparable(saved), comparable(launched)
    parts = [f"{k}: {old.get(k, '<unset>')} -> {new.get(k, '<unset>')}" for k in keys[:5]]
    if len(keys) > 5:
        parts.append(f"and {len(keys) - 5} more")
    return ", ".join(parts)


def load_saved_config(folder: Path) -> dict[str, Any] | None:
    """The resolved ``config.yaml`` a job wrote into its folder (None: none, unreadable)."""
    path = Path(folder) / "config.yaml"
    if not path.is_file():
        return None
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is reported as different
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"<config.yaml>": f"unreadable: {type(exc).__name__}: {reason}"[:200]}
    return data if isinstance(data, dict) else {"<config.yaml>": "not a mapping"}
