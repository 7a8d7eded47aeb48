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
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


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


def run_identity(
    cfg: Mapping[str, Any], kind: str = "train", group: str | None = None
) -> dict[str, Any]:
    """W&B ``job_type`` (``[ensemble-]model-kind-placement``), run ``name`` (the job type and
    the seed: ``mlp-batch-pre-seed3``; an ensemble's seed range), tags and sweep ``group`` of
    a job (the launch reads the group from its sweep: :func:`igb.launch.job_spec.sweep_group`).

    ``kind`` is ``train``, ``ensemble`` or ``eval``; an ensemble's or an evaluation's job
    type and tags say so."""
    model, norm = cfg["model"], cfg["norm"]
    placement = norm["placement"]
    norm_kind = norm["kind"] if placement != "none" else "none"
    job_type = f"{model['name']}-{norm_label(placement, norm['kind'])}"
    neutralize = model.get("neutralize", "none")
    if neutralize != "none":  # model.neutralize: the centred head input is part of the name
        job_type = f"{job_type}-neutralize_{neutralize}"
    tags = [
        f"model:{model['name']}",
        f"norm:{placement}",
        f"norm_kind:{norm_kind}",
        f"act:{model.get('activation', 'relu')}",
        f"dataset:{cfg['dataset']['name']}",
    ]
    if neutralize != "none":
        tags.append(f"neutralize:{neutralize}")
    tags += init_tags(model)
    if kind == "ensemble":
        job_type = f"ensemble-{job_type}"
        tags.insert(0, "ensemble")
        first = int(cfg["ensemble"]["seed0"])
        name = f"{job_type}-seeds{first}-{first + int(cfg['ensemble']['n_inits']) - 1}"
    else:
        if kind == "eval":
            job_type = f"eval-{job_type}"
            tags.insert(0, "eval")
        seed = cfg.get("seed")
        name = job_type if seed is None else f"{job_type}-seed{seed}"
        if cfg.get("optimizer") is not None:
            tags.append(f"optimizer:{optimizer_name(cfg['optimizer'])}")
    tags += [str(t) for t in cfg.get("tags", [])]
    return {"job_type": job_type, "name": name, "tags": tags, "group": group}


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
        tags.append(f"unit_pool:{model_cfg['unit_pool']}{model_cfg.get('unit_pool_size', 2)}")
    return tags


def group_name(sweep_dir: str | Path, experiment: str | None) -> str:
    """The W&B group of a sweep: its folder's name, prefixed by the experiment."""
    group = Path(sweep_dir).name
    return f"{experiment}-{group}" if experiment and experiment != "null" else group


# -- the configuration as identity -----------------------------------------------------------
def flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, leaf value)`` of a nested mapping."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from flatten(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


def operational(key: str) -> bool:
    """Whether ``key`` only says where or how a job runs (``RULES.runs``, a group's keys too)."""
    return any(key == k or key.startswith(f"{k}.") for k in RULES.runs)


def comparable(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Flat ``key -> value`` of what a job computes (operational keys left out), from a
    resolved configuration (a folder's ``config.yaml``). The launch reads a composed
    configuration key by key instead (:func:`igb.launch.job_spec.comparable`), then hands
    it to :func:`canonical` as this does."""
    return canonical({k: v for k, v in flatten(dict(cfg)) if not operational(k)})


def canonical(flat: dict[str, Any]) -> dict[str, Any]:
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


@dataclass(frozen=True)
class JobIdentity:
    """What decides whether a folder holds the launched job: read once from the composed
    configuration at the launch (:func:`igb.launch.job_spec.job_identity`)."""

    #: what the job computes (:func:`comparable`)
    comparable: Mapping[str, Any]
    #: ``restart=true``: the folder's results are moved aside and the job starts over
    restart: bool = False
    #: ``skip_finished`` (default): a finished job is not run again; false: a changed
    #: training length continues it
    skip_finished: bool = True

    @property
    def config_hash(self) -> str:
        """The hash of :attr:`comparable` (:func:`hash_comparable`)."""
        return hash_comparable(self.comparable)


def differences(
    old: Mapping[str, Any], new: Mapping[str, Any], extending: bool = False
) -> list[str]:
    """Keys whose values differ between two :func:`comparable` mappings, sorted.

    ``extending`` (``skip_finished=false``): a changed training length is a continuation,
    not another job."""
    keys = sorted(
        k for k in old.keys() | new.keys() if old.get(k, "<unset>") != new.get(k, "<unset>")
    )
    return [k for k in keys if not (extending and k in RULES.length)]


def config_differences(
    saved: Mapping[str, Any], launched: Mapping[str, Any], extending: bool = False
) -> list[str]:
    """Keys whose values differ between two resolved configurations (:func:`differences`)."""
    return differences(comparable(saved), comparable(launched), extending)


def hash_comparable(flat: Mapping[str, Any]) -> str:
    """A short hash of what a job computes (a :func:`comparable` mapping, training length
    left out, so that extending a run keeps it). Recorded in ``status.json`` and in the
    checkpoint, so that the loss of one file (``config.yaml``) cannot erase the folder's
    identity."""
    kept = {
        k: v
        for k, v in flat.items()
        if k not in RULES.length and not (k in HASHED_ONLY_OFF_DEFAULT and v == RULES.absent_as[k])
    }
    text = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_hash(cfg: Mapping[str, Any]) -> str:
    """:func:`hash_comparable` of a resolved configuration (a folder's ``config.yaml``)."""
    return hash_comparable(comparable(cfg))


def describe_differences(old: Mapping[str, Any], new: Mapping[str, Any], keys: list[str]) -> str:
    """``seed: 0 -> 5, optimizer.lr: 0.1 -> 0.01`` (at most five keys, then a count) of two
    :func:`comparable` mappings."""
    parts = [f"{k}: {old.get(k, '<unset>')} -> {new.get(k, '<unset>')}" for k in keys[:5]]
    if len(keys) > 5:
        parts.append(f"and {len(keys) - 5} more")
    return ", ".join(parts)


class _ConfigLoader(yaml.SafeLoader):
    """YAML as OmegaConf reads it (the loader ``config.yaml`` was always read with): ``1e-5``
    is a float, no timestamps, a key given twice is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        scalar = yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG
        keys = [k.value for k, _ in node.value if k.tag == scalar]
        twice = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
        if twice is not None:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {twice}"
            )
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
        |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
        |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)
_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _ConfigLoader.yaml_implicit_resolvers.items()
}


def load_saved_config(folder: Path) -> dict[str, Any] | None:
    """The resolved ``config.yaml`` a job wrote into its folder (None: none, unreadable)."""
    path = Path(folder) / "config.yaml"
    if not path.is_file():
        return None
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_ConfigLoader)  # noqa: S506
    except Exception as exc:  # noqa: BLE001 - an unreadable file is reported as different
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"<config.yaml>": f"unreadable: {type(exc).__name__}: {reason}"[:200]}
    if data is None:  # an empty file: an empty configuration
        return {}
    return data if isinstance(data, dict) else {"<config.yaml>": "not a mapping"}
