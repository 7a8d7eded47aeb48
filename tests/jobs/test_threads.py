"""A job's torch threads follow its CPU allocation: SLURM_CPUS_PER_TASK within the CPU
affinity, the affinity without SLURM, OMP_NUM_THREADS when set."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers.entry_points import run_entry

from igb.jobs.threads import allocated_cpus


@pytest.mark.parametrize(
    ("environ", "affinity", "cpus"),
    [
        ({}, range(8), 8),
        ({}, {2, 5}, 2),  # taskset / cpuset
        ({"SLURM_CPUS_PER_TASK": "3"}, range(8), 3),  # SLURM gave 3 of the node's 8
        ({"SLURM_CPUS_PER_TASK": "16"}, {0, 1}, 2),  # never beyond the affinity
        ({"SLURM_CPUS_PER_TASK": ""}, range(4), 4),
    ],
)
def test_allocated_cpus(environ, affinity, cpus) -> None:
    assert allocated_cpus(environ, affinity) == cpus


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
@pytest.mark.parametrize(("slurm", "threads"), [("1", "1"), ("2", "2")])
def test_a_job_under_slurm_uses_the_cpus_per_task(tmp_path: Path, slurm, threads) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["SLURM_CPUS_PER_TASK"] = slurm
    job = tmp_path / "job"
    proc = run_entry("ensemble.py", "ensemble.n_inits=2", "ensemble.eval_samples=20",
                     "ensemble.batch_size=10", "ensemble.progress=false",
                     f"hydra.run.dir={job}", cwd=tmp_path, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((job / "summary.json").read_text())
    assert summary["versions"]["cpu_threads"] == threads
