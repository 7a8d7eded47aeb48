"""A stop signal to a parallel local grid (``hydra/launcher=local``) stops its workers:
the running jobs checkpoint and record ``interrupted``, jobs not yet started stay so, the
grid's report is printed, the launcher exits 128 + signal, and no process is left.

Real processes: the launcher in a session of its own, loky workers, a real SIGTERM, either
to the launcher alone or to its whole process group (what ``kill -TERM -<pgid>`` and a
terminal's Ctrl-C do).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.sizes import TINY, merged

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]


def _statuses(sweep: Path) -> dict[str, str]:
    out = {}
    for status in sweep.glob("*/status.json"):
        try:
            out[status.parent.name] = json.loads(status.read_text())["status"]
        except (OSError, ValueError, KeyError):
            continue
    return out


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            alive.append(int(stat.parent.name))
    return alive


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree")
@pytest.mark.parametrize("to_group", [False, True], ids=["launcher", "process-group"])
def test_sigterm_stops_the_workers_and_reports(tmp_path: Path, to_group: bool) -> None:
    sweep = tmp_path / "sweep"
    argv = [
        sys.executable, str(ROOT / "train.py"), "-m", *merged(TINY, [
            "logger=csv", "trainer.max_epochs=200", "hydra/launcher=local",
            "hydra.launcher.n_jobs=2", "seed=0,1,2,3",
            "+callbacks.slow._target_=helpers.faults.SleepPerStep",
            "+callbacks.slow.seconds=0.1", f"hydra.sweep.dir={sweep}",
        ]),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, start_new_session=True, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while list(_statuses(sweep).values()).count("running") < 2:
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the grid's first two jobs never ran"
            time.sleep(0.5)
        time.sleep(1.0)  # both jobs into training
        if to_group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    statuses = _statuses(sweep)
    assert sorted(statuses.values()) == ["interrupted", "interrupted"], statuses
    assert "jobs did not finish" in output and "not started" in output, output[-3000:]
    # no traceback of igb's; joblib's resource tracker (loky), signalled with the process
    # group, may print its own when it dies, which is not the grid's report
    tracebacks = output.split("Traceback (most recent call last):")[1:]
    assert all("/loky/" in t.splitlines()[1] for t in tracebacks), output[-3000:]
    for name in statuses:  # each stopped at a checkpoint it resumes from
        assert (sweep / name / "checkpoints" / "last.ckpt").is_file()
    deadline = time.monotonic() + 15
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not _group_alive(proc.pid), "processes of the grid were left running"


@pytest.mark.slow
def test_a_later_launch_of_any_launcher_clears_the_stop_mark(tmp_path: Path) -> None:
    """The mark a stopped grid leaves must not keep a relaunch (basic launcher) from
    running its jobs."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / ".igb.stopping").touch()  # what a stopped local grid leaves
    pythonpath = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", *TINY, "logger=csv", "seed=0",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": pythonpath}, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _statuses(sweep) == {"0": "finished"}
    assert not (sweep / ".igb.stopping").exists()
