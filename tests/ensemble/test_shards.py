"""``ensemble.shards``: one ensemble spread over several processes writing into one job
folder gives the results of one process, each block evaluated once; a killed shard is
resumed by the same command (the local launcher here; SLURM in tests/slurm/)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers.entry_points import ROOT, STOPPABLE_ENSEMBLE, run_entry

#: 48 initializations in 8 blocks of 6, on 100 points
SMALL = ("ensemble.n_inits=48", "ensemble.eval_samples=100", "ensemble.batch_size=50",
         "ensemble.progress=false", "dataset.num_classes=3")  # fmt: skip
#: what says how a run went, not what it found: differs between any two runs
RUN_FACTS = {"workers", "eval_time_s", "wall_time_s", "gamma_theory_time_s", "versions",
             "inits_resumed"}  # fmt: skip


def results(folder: Path) -> tuple[bytes, dict]:
    summary = json.loads((folder / "summary.json").read_text())
    return (folder / "inits.csv").read_bytes(), {
        k: v for k, v in summary.items() if k not in RUN_FACTS
    }


def evaluated(log: str) -> int:
    """Initializations evaluated, summed over the processes that wrote ``log``."""
    shards = sum(int(n) for n in re.findall(r"ensemble shard: (\d+) inits evaluated here", log))
    last = re.findall(r"(\d+) inits evaluated in [\d.]+ s", log)
    return shards + sum(int(n) for n in last)


def test_two_shards_on_the_local_launcher_equal_one_process(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_entry("ensemble.py", "-m", "hydra/launcher=local", "ensemble.shards=2", *SMALL,
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "multirun: 1/1 jobs finished" in proc.stdout + proc.stderr
    folders = [p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert [p.name for p in folders] == ["0"]  # one job folder for both shards
    job = folders[0]
    assert json.loads((job / "status.json").read_text())["status"] == "finished"
    assert not (job / "partial").exists()
    assert evaluated((job / "ensemble.log").read_text()) == 48  # no block twice

    single = run_entry("ensemble.py", *SMALL, f"hydra.run.dir={tmp_path / 'one'}", cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    assert results(job) == results(tmp_path / "one")


def test_a_sharded_launch_sweeps_nothing_else(tmp_path: Path) -> None:
    proc = run_entry("ensemble.py", "-m", "ensemble.shards=2", "norm=pre,post", *SMALL,
                     f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: ensemble.shards=2 spreads one ensemble over 2 processes; sweep no other key "
        "in the same launch (found norm=pre,post): launch each configuration on its own"
    ]
    assert not (tmp_path / "sweep").exists()


def test_a_killed_shard_is_resumed_by_the_same_command(tmp_path: Path) -> None:
    job = tmp_path / "job"
    argv = [*STOPPABLE_ENSEMBLE, "ensemble.shards=2", f"hydra.run.dir={job}"]
    env = {"IGB_ROOT": str(tmp_path), "WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    shard = subprocess.Popen(
        [sys.executable, str(ROOT / "ensemble.py"), *argv], cwd=tmp_path, env=env, **quiet
    )
    deadline = time.monotonic() + 300
    while not list((job / "partial").glob("*.npz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    shard.send_signal(signal.SIGKILL)  # no chance to record anything
    shard.wait()
    kept = sum(1 for _ in (job / "partial").glob("*.npz"))
    assert 1 <= kept < 8
    again = run_entry("ensemble.py", *argv, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    log = (job / "ensemble.log").read_text().split("inits evaluated")[-2:]  # the relaunch's
    assert f"by this run, {kept * 20} read from earlier blocks" in log[-1]
    single = run_entry("ensemble.py", *STOPPABLE_ENSEMBLE, f"hydra.run.dir={tmp_path / 'one'}",
                       cwd=tmp_path)  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    assert results(job) == results(tmp_path / "one")
