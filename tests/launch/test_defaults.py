"""One home for each default: the values under ``conf/``.

The default train and ensemble configs are composed as Hydra composes them, their
consumers built the way a job builds them, and every key's value compared with what the
consumer then holds: a default repeated in a constructor or in the schema could only ever
disagree with the YAML, so the schema declares none and the callbacks take none.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from igb.data.instantiate import instantiate_datamodule
from igb.ensemble import EnsembleSettings, EvaluationPlan
from igb.launch.ensemble_job import ensemble_spec
from igb.launch.schema import FROM_YAML, GROUPS

#: keys a consumer takes but keeps under another form (a path, a Lightning internal)
NOT_KEPT = {"_target_", "dirpath", "filename", "data_dir", "name", "test_samples"}


def _held(obj: Any, key: str) -> Any:
    """What ``obj`` keeps for the argument ``key`` (an attribute of that name, public or
    private); a sentinel when it keeps none under that name."""
    for name in (key, f"_{key}"):
        if name in vars(obj) or isinstance(getattr(type(obj), name, None), property):
            return getattr(obj, name)
    return _held


def _compare(node: DictConfig, obj: Any) -> list[str]:
    values = OmegaConf.to_container(node, resolve=True)
    assert isinstance(values, dict)
    wrong, compared = [], 0
    for key, value in values.items():
        held = _held(obj, str(key))
        if key in NOT_KEPT or held is _held:
            continue
        compared += 1
        if isinstance(held, tuple | list):
            held = list(held)
        if held != value:
            wrong.append(f"{key}: yaml {value!r}, {type(obj).__name__} {held!r}")
    assert compared, f"{type(obj).__name__} kept none of {sorted(values)}"
    return wrong


def test_the_schema_declares_no_default_value() -> None:
    values = {
        f"{path}.{name}": field.default
        for path, model in GROUPS.items()
        for name, field in model.model_fields.items()
        if not field.is_required() and field.default is not FROM_YAML
    }
    assert not values, values


@pytest.mark.parametrize("callback", ["bias_stats", "grad_norm", "progress"])
def test_callbacks_use_the_yaml_values(make_cfg, callback: str) -> None:
    cfg = make_cfg(tiny=False)
    node = cfg.callbacks[callback]
    assert not _compare(node, instantiate(node))


@pytest.mark.parametrize("dataset", ["gaussian_blobs", "digits"])
def test_the_datamodule_uses_the_yaml_values(make_cfg, dataset: str) -> None:
    cfg = make_cfg(f"dataset={dataset}", tiny=False)
    assert not _compare(cfg.dataset, instantiate_datamodule(cfg.dataset))


def test_the_ensemble_plan_uses_the_yaml_values(make_cfg) -> None:
    cfg = make_cfg(name="ensemble")
    plan = EvaluationPlan.from_spec(ensemble_spec(cfg), num_classes=10)
    ens = cfg.ensemble
    used = {
        "batch_size": plan.batch_size,
        "norm_mode": plan.norm_mode,
        "device": plan.device,
        "method": plan.method,
        "chunk_size": plan.chunk_size,
        "workers": plan.workers,
        "vary": plan.vary,
        "seed0": plan.backbone_seed,
    }
    assert used == {key: ens[key] for key in used}
    assert plan.model == OmegaConf.to_container(cfg.model, resolve=True)
    assert plan.norm == OmegaConf.to_container(cfg.norm, resolve=True)


def test_the_ensemble_settings_hold_the_yaml_values(make_cfg) -> None:
    cfg = make_cfg(name="ensemble")
    held = asdict(EnsembleSettings.from_mapping(OmegaConf.to_container(cfg.ensemble)))
    assert held == {key: cfg.ensemble[key] for key in held}
    assert set(cfg.ensemble) - set(held) == {"shard"}  # a label only: nothing reads it
