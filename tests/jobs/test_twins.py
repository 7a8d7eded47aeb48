"""Twins: keys that cannot change a job are not part of it; such jobs run once, count once.

``norm=none`` reads no ``norm.kind``: a grid over both composes one network twice, with the
same seeds. The configuration hash treats the unused keys as the values ``norm=none``
composes, the later job of the grid is recorded as the twin of the earlier one (not run),
and the grid's report and the analysis count it once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import run_train
from helpers.entry_points import run_entry
from helpers.sizes import TINY, TINY_ENSEMBLE, merged

from igb.jobs.identity import RULES, config_hash
from igb.launch.schema import identity_rules
from multirun_analysis.collect import collect

#: what a job computes, flattened as config_hash reads it (paths: where it runs, left out)
NO_NORM = {"seed": 0, "norm": {"placement": "none", "kind": "batch", "eps": 1e-5}}


def _sha(flat: dict) -> str:
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]


def test_the_identity_rules_are_those_the_schema_fields_declare() -> None:
    assert identity_rules() == RULES


def test_a_norm_kind_without_a_norm_is_not_part_of_the_job() -> None:
    expected = _sha({"norm.eps": 1e-5, "norm.kind": "batch", "norm.placement": "none", "seed": 0})
    layer = {**NO_NORM, "norm": {**NO_NORM["norm"], "kind": "layer", "eps": 1e-3}}
    assert config_hash({**NO_NORM, "paths": {"output_dir": "/a"}}) == expected
    assert config_hash(layer) == expected
    placed = {**NO_NORM, "norm": {**NO_NORM["norm"], "placement": "pre"}}
    placed_layer = {**placed, "norm": {**placed["norm"], "kind": "layer"}}
    assert config_hash(placed) != config_hash(placed_layer)


def _statuses(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep.glob("*/status.json"))}


def _overrides(sweep: Path, job: str) -> list[str]:
    return (sweep / job / ".hydra" / "overrides.yaml").read_text().split()


def _check_twin(sweep: Path, output: str) -> dict[str, dict]:
    statuses = _statuses(sweep)
    twins = {job: st for job, st in statuses.items() if st["status"] == "twin"}
    assert sorted(st["status"] for st in statuses.values()) == ["finished"] * 3 + ["twin"]
    ((job, twin),) = twins.items()
    original = twin["twin_of"]
    assert "norm.kind=layer" in _overrides(sweep, job) and "norm=none" in _overrides(sweep, job)
    assert "norm.kind=batch" in _overrides(sweep, original)
    assert twin["config_hash"] == statuses[original]["config_hash"]
    assert not (sweep / job / "metrics.csv").exists() and not (sweep / job / "inits.csv").exists()
    assert f"multirun: 3/3 jobs finished (1 more repeating one of them) in {sweep}" in output
    assert f"the job of {original} (counted there)" in output
    return statuses


@pytest.mark.slow
def test_a_training_grid_runs_and_counts_a_twin_once(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    grid = ["-m", "norm=none,pre", "norm.kind=batch,layer"]
    argv = merged(grid, TINY, ["trainer.max_epochs=1", "logger=csv", f"hydra.sweep.dir={sweep}"])
    proc = run_train(tmp_path, *argv)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    before = _check_twin(sweep, proc.stdout + proc.stderr)
    col = collect(sweep)
    assert len(col.not_finished) == 0 and len(col.twins) == 1
    assert list(col.twins["kind"]) == ["train"]
    assert (col.jobs["status"] == "finished").sum() == 3
    # the same command again: nothing runs, the twin stays one
    proc = run_train(tmp_path, *argv)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    after = _check_twin(sweep, proc.stdout + proc.stderr)
    assert {j: st["attempt"] for j, st in after.items() if "attempt" in st} == {
        j: st["attempt"] for j, st in before.items() if "attempt" in st
    }


@pytest.mark.slow
def test_an_ensemble_grid_runs_and_counts_a_twin_once(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    grid = ["-m", "norm=none,pre", "norm.kind=batch,layer"]
    proc = run_entry("ensemble.py", *grid, *TINY_ENSEMBLE, f"hydra.sweep.dir={sweep}",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    _check_twin(sweep, proc.stdout + proc.stderr)
    col = collect(sweep)
    assert len(col.twins) == 1 and len(col.not_finished) == 0
    assert list(col.twins["kind"]) == ["ensemble"]
    n_inits = int(next(a for a in TINY_ENSEMBLE if a.startswith("ensemble.n_inits=")).split("=")[1])
    assert len(col.inits) == 3 * n_inits  # three distinct jobs of n_inits each
