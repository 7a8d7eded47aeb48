"""A grid submitted through ``hydra/launcher=slurm`` to a real single-node SLURM cluster.

The cluster comes from ``tests/helpers/slurm_cluster.py`` (the module-scoped ``slurm`` fixture:
as root, with slurm-wlm and munge installed by ``.ci/slurm_up.sh``, it starts munged +
slurmctld + slurmd with their state under a temp dir, and stops them by PID afterwards).
Skipped with the reason where that cannot be done; with ``CI`` set, failing instead.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers.sizes import TINY, merged
from helpers.slurm_cluster import SlurmCluster

from igb.compat import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slurm


def status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def submit_grid(
    slurm: SlurmCluster, tmp_path: Path, *argv: str, wait: bool = True
) -> subprocess.Popen | subprocess.CompletedProcess:
    """``python train.py -m hydra/launcher=slurm ...``: submits, then waits for the jobs."""
    pythonpath = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    env = {
        **slurm.env,  # SLURM_CONF of the test cluster, sacct stand-in on PATH
        "IGB_ROOT": str(tmp_path),
        "WANDB_MODE": "offline",
        "PYTHONPATH": pythonpath,
    }
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=slurm", *argv]
    if wait:
        return subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
    return subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_grid_of_two_jobs_runs_as_a_slurm_job_array(slurm: SlurmCluster, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = submit_grid(
        slurm, tmp_path, *merged(TINY, ["trainer.max_epochs=1", "logger=csv", "seed=0,1",
                                        f"hydra.sweep.dir={sweep}"]),
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:] + slurm.diagnostics()
    assert "multirun: 2/2 jobs finished" in output

    # submitit's folders: the array's sbatch script under <array job id>, and one folder
    # per array task, <array job id>_<task id>
    folders = [p for p in (sweep / ".submitit").iterdir() if not p.name.startswith(".")]
    submitit = sorted(p for p in folders if "_" in p.name)
    array_ids = {p.name.split("_")[0] for p in submitit}
    assert len(array_ids) == 1, folders  # one job array
    (array_id,) = array_ids
    assert {p.name for p in submitit} == {f"{array_id}_0", f"{array_id}_1"}
    script = (sweep / ".submitit" / array_id / f"{array_id}_submission.sh").read_text()
    assert "#SBATCH --array=0-1" in script
    for folder in submitit:
        assert list(folder.glob("*_submitted.pkl")), list(folder.iterdir())
        result = folder / f"{folder.name}_0_result.pkl"
        with result.open("rb") as f:
            outcome, job_return = pickle.load(f)
        assert outcome == "success"
        out_log = folder / f"{folder.name}_0_log.out"
        err_log = folder / f"{folder.name}_0_log.err"
        assert out_log.is_file() and err_log.is_file()
        assert "igb" in out_log.read_text() + err_log.read_text()  # the job's own log lines

    # each Hydra job folder: trained, under the SLURM job the scheduler gave it
    seen = {}
    for num in ("0", "1"):
        job = sweep / num
        st = status(job)
        assert st["status"] == "finished", st
        assert st["slurm_array_job_id"] == array_id
        seen[st["slurm_array_task_id"]] = st["slurm_job_id"]
        assert st["slurm_node"] == slurm.node
        metrics = pd.read_csv(job / "metrics.csv")
        assert metrics["test/acc"].notna().sum() == 1
        assert (metrics["step"] == 0).any()
    assert set(seen) == {"0", "1"} and len(set(seen.values())) == 2
    # the array's tasks are known to the controller under the same ids
    for task in ("0", "1"):
        # submitit reads the result file before the controller records the end: wait for it
        assert slurm.wait_for_job(f"{array_id}_{task}", timeout=60) == "COMPLETED"


def test_job_signalled_before_its_time_limit_is_requeued_and_resumes(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    """SIGUSR2 is what submitit has SLURM send before the time limit (``--signal``): the job
    checkpoints, submitit requeues it, and the requeued job resumes in the same folder."""
    sweep = tmp_path / "sweep"
    epochs, steps_per_epoch = 3, 6
    proc = submit_grid(
        slurm, tmp_path, *merged(TINY, [
            f"trainer.max_epochs={epochs}", "logger=default",
            "+callbacks.slow._target_=helpers.faults.SleepPerStep",
            "+callbacks.slow.seconds=0.25", f"hydra.sweep.dir={sweep}",
        ]), wait=False,
    )  # fmt: skip
    job = sweep / "0"
    deadline = time.monotonic() + 300
    steps: list[int] = []
    while max(steps, default=-1) < steps_per_epoch:  # one epoch done: mid-training
        assert proc.poll() is None, proc.communicate()[0][-3000:] + slurm.diagnostics()
        assert time.monotonic() < deadline, "the job did not train in time\n" + slurm.diagnostics()
        time.sleep(0.2)
        if (job / "metrics.csv").is_file():
            steps = pd.read_csv(job / "metrics.csv")["step"].astype(int).tolist()
    first = status(job)
    job_id = first["slurm_job_id"]
    slurm.run(["scancel", f"--signal={signal.SIGUSR2.name[3:]}", job_id])
    # submitit requeued it; SLURM holds a requeued job back for a while (Reason=BeginTime,
    # about 2 minutes here): let it start now, as an administrator could
    while proc.poll() is None and time.monotonic() < deadline:
        info = slurm.run(["scontrol", "-o", "show", "job", job_id], check=False).stdout
        fields = dict(t.split("=", 1) for t in info.split() if "=" in t)
        if fields.get("Reason") == "BeginTime":
            slurm.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"])
            break
        time.sleep(0.2)
    output = proc.communicate(timeout=400)[0]
    assert proc.returncode == 0, output[-3000:] + slurm.diagnostics()

    st = status(job)
    assert st["status"] == "finished", st
    assert st["attempt"] == 2 and st["slurm_restart_count"] == "1"
    assert st["slurm_job_id"] == first["slurm_job_id"]  # the same SLURM job, requeued
    prev = st["previous"]
    assert prev["status"] == "interrupted" and prev["signal"] == "SIGUSR2"
    assert st["resumed_from_step"] == prev["global_step"] > 0
    assert st["wandb_id"] == first["wandb_id"]  # the same W&B run continued
    metrics = pd.read_csv(job / "metrics.csv")
    stats = metrics.loc[metrics["igb/train/f_max"].notna(), "step"].astype(int).tolist()
    assert stats == [steps_per_epoch * e for e in range(epochs + 1)]
    ckpt = load_checkpoint(job / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == epochs * steps_per_epoch
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_log.*"))
    assert "Requeued job" in logs, logs[-3000:]
