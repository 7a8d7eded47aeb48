"""A real single-node SLURM cluster: bring it up, run sbatch and srun, tear it down.

Skipped where no cluster can be started (not root, not Linux, SLURM not installed: CI
installs it with ``.ci/slurm_up.sh``); with ``CI`` set that becomes a failure. Select or
deselect with ``-m slurm``.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import helpers.slurm_cluster as sc
import pytest
from helpers.slurm_cluster import (
    SlurmCluster,
    cluster_fixture,  # noqa: F401  (the module-scoped fixture `slurm`)
    pid_alive,
    skip_or_fail_without_slurm,
    slurm_cluster,
)


@pytest.mark.parametrize("ci", ["", "true"])
def test_no_slurm_skips_locally_but_fails_on_ci(monkeypatch, ci: str) -> None:
    monkeypatch.setattr(sc, "why_no_slurm", lambda: "no SLURM here")
    monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="no SLURM here"):
        skip_or_fail_without_slurm()


@pytest.mark.slurm
def test_cluster_runs_sbatch_and_srun_then_tears_down(tmp_path: Path) -> None:
    skip_or_fail_without_slurm()
    out_file = tmp_path / "job_output.txt"
    with slurm_cluster(tmp_path) as cluster:
        pids = cluster.pids
        assert set(pids) == {"munged", "slurmctld", "slurmd"}
        assert all(pid_alive(pid) for pid in pids.values()), cluster.diagnostics()
        assert cluster.conf.is_file() and cluster.conf.is_relative_to(tmp_path)
        assert cluster.env["SLURM_CONF"] == str(cluster.conf)
        assert cluster.node_state() == "idle"

        job_id = cluster.sbatch(
            "--job-name=igb-probe",
            f"--chdir={tmp_path}",
            f"--output={tmp_path}/slurm-%j.out",
            "--wrap",
            f"echo hello-from-$SLURM_JOB_ID > {out_file}",
        )
        srun = cluster.run(["srun", "--nodes=1", "--ntasks=1", "hostname"], timeout=60)
        assert srun.stdout.strip() in {socket.gethostname(), cluster.node}

        assert cluster.wait_for_job(job_id, timeout=60) == "COMPLETED", cluster.diagnostics()
        assert out_file.read_text().strip() == f"hello-from-{job_id}"
        assert job_id not in cluster.queued_job_ids()

    for name, pid in pids.items():
        assert not pid_alive(pid), f"{name} (pid {pid}) still running after teardown"


@pytest.mark.slurm
def test_teardown_on_error_stops_the_daemons(tmp_path: Path) -> None:
    skip_or_fail_without_slurm()
    with pytest.raises(RuntimeError, match="boom"), slurm_cluster(tmp_path) as cluster:
        pids = cluster.pids
        raise RuntimeError("boom")
    assert not any(pid_alive(pid) for pid in pids.values())


@pytest.mark.slurm
def test_fixture_runs_venv_python_in_a_job(slurm: SlurmCluster, tmp_path: Path) -> None:
    """The fixture's cluster runs batch jobs with the submitting environment (our venv)."""
    out_file = tmp_path / "python.txt"
    job_id = slurm.sbatch(
        f"--output={tmp_path}/slurm-%j.out",
        "--cpus-per-task=1",
        "--wrap",
        f"{sys.executable} -c 'import sys, os; print(sys.prefix, os.environ[\"SLURM_JOB_ID\"])'"
        f" > {out_file}",
    )
    assert slurm.wait_for_job(job_id, timeout=60) == "COMPLETED", slurm.diagnostics()
    assert out_file.read_text().split() == [sys.prefix, job_id]
    # the sacct stand-in (no accounting daemon) reports it the way submitit reads it
    sacct = slurm.run(["sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", job_id])
    assert sacct.stdout.splitlines() == ["JobID|State|NodeList", f"{job_id}|COMPLETED|{slurm.node}"]
