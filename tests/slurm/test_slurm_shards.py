"""``ensemble.shards=2`` through ``hydra/launcher=slurm`` on the real single-node SLURM of
``tests/helpers/slurm_cluster.py`` (the ``slurm`` fixture): one job array of two tasks, one
job folder, the results of one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.entry_points import ROOT, run_entry
from helpers.slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slurm

SMALL = ("ensemble.n_inits=48", "ensemble.eval_samples=100", "ensemble.batch_size=50",
         "ensemble.progress=false", "dataset.num_classes=3")  # fmt: skip


def test_two_shards_run_as_one_slurm_job_array(slurm: SlurmCluster, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    env = {**os.environ, **slurm.env, "IGB_ROOT": str(tmp_path), "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "ensemble.py"), "-m", "hydra/launcher=slurm",
         "ensemble.shards=2", *SMALL, f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:] + slurm.diagnostics()
    assert "multirun: 1/1 jobs finished" in output
    tasks = [p.name for p in (sweep / ".submitit").iterdir() if p.name[0] != "." and "_" in p.name]
    assert len({t.split("_")[0] for t in tasks}) == 1 and len(tasks) == 2, tasks  # one array
    job = sweep / "0"
    status = json.loads((job / "status.json").read_text())
    assert status["status"] == "finished" and "slurm_array_job_id" in status
    single = run_entry("ensemble.py", *SMALL, f"hydra.run.dir={tmp_path / 'one'}", cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    assert (job / "inits.csv").read_bytes() == (tmp_path / "one" / "inits.csv").read_bytes()
