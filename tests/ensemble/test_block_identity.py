"""An unfinished ensemble's blocks carry the configuration's hash; a resume checks them.

One real ``python ensemble.py`` is stopped by SIGTERM once its first block is on disk; each
test relaunches the real entry into a copy of that folder with a record damaged, removed or
another configuration: refused in one line naming the file and ``restart=true`` (exit 2,
nothing written) unless the remaining records identify the launched configuration, the same
rules as a training job's checkpoint (tests/jobs/test_integrity.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.entry_points import ROOT, STOPPABLE_ENSEMBLE, run_entry
from helpers.job_folders import copy_job, snapshot

from igb.jobs.integrity import CHECKPOINT_KEY, folder_damage

ARGS = [*STOPPABLE_ENSEMBLE, "ensemble.n_boot=50", "ensemble.theory=false"]


def _blocks(folder: Path) -> list[Path]:
    return sorted((folder / "partial").glob("[0-9]*.npz"))  # not a temporary file


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("blocks")
    folder = root / "run"
    env = {**os.environ, "IGB_ROOT": str(root), "WANDB_MODE": "offline"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "ensemble.py"), *ARGS, f"hydra.run.dir={folder}"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not _blocks(folder):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode != 0, "finished before the signal: make the ensemble larger"
    assert json.loads((folder / "status.json").read_text())["status"] == "interrupted"
    return folder


def _relaunch(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_entry(
        "ensemble.py", *ARGS, *extra, f"hydra.run.dir={folder}", cwd=folder.parent, timeout=300
    )


def _refused(proc: subprocess.CompletedProcess[str], *parts: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1, lines
    for part in (*parts, "restart=true"):
        assert part in lines[0], (part, lines[0])
    return lines[0]


def test_every_block_records_the_hash_of_status_json(stopped: Path) -> None:
    recorded = json.loads((stopped / "status.json").read_text())["config_hash"]
    blocks = _blocks(stopped)
    assert 1 <= len(blocks) < 8
    for path in blocks:
        with np.load(path) as data:
            assert str(data[CHECKPOINT_KEY][()]) == recorded
    assert folder_damage(stopped) is None


def test_a_damaged_status_is_refused_then_restart_moves_it_aside(stopped: Path) -> None:
    folder = copy_job(stopped, "damaged")
    (folder / "status.json").write_text("{{{")
    before = snapshot(folder)
    _refused(_relaunch(folder), f"{folder}/status.json is damaged (not JSON")
    assert snapshot(folder) == before  # nothing written
    # the way out: the results (blocks included) move aside and the job runs from seed 0
    proc = _relaunch(folder, "restart=true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "initializations found" not in proc.stderr + proc.stdout
    assert json.loads((folder / "status.json").read_text())["status"] == "finished"
    assert json.loads((folder / "summary.json").read_text())["inits_resumed"] == 0
    (moved,) = (folder / ".discarded").iterdir()
    assert (moved / "status.json").read_text() == "{{{"
    assert sorted(p.name for p in _blocks(moved)) == sorted(p.name for p in _blocks(stopped))


def test_another_seed0_is_refused_by_every_record_left(stopped: Path) -> None:
    folder = copy_job(stopped, "seed0")
    before = snapshot(folder)
    _refused(
        _relaunch(folder, "ensemble.seed0=5"), "another configuration", "ensemble.seed0: 0 -> 5"
    )
    assert snapshot(folder) == before
    # without status.json the blocks still name seed0=0
    (folder / "status.json").unlink()
    first = _blocks(folder)[0]
    _refused(
        _relaunch(folder, "ensemble.seed0=5"),
        f"{folder}/status.json is missing and {first} records another configuration",
    )
    # and without config.yaml too
    (folder / "config.yaml").unlink()
    _refused(
        _relaunch(folder, "ensemble.seed0=5"),
        f"{folder}/config.yaml is missing and {first} records another configuration",
    )
    assert not (folder / "config.yaml").exists() and not (folder / "status.json").exists()
    # the launched configuration is the blocks': resumed from them
    proc = _relaunch(folder)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = 20 * len(_blocks(stopped))
    assert f"{found} of 160 initializations found" in proc.stderr + proc.stdout
    assert json.loads((folder / "status.json").read_text())["status"] == "finished"


def test_a_block_of_another_configuration_is_refused(stopped: Path) -> None:
    folder = copy_job(stopped, "other-block")
    path = _blocks(folder)[0]
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays[CHECKPOINT_KEY] = np.array("0123456789abcdef")
    with path.open("wb") as fh:
        np.savez(fh, **arrays)
    line = _refused(_relaunch(folder), "name different configurations", "0123456789abcdef")
    assert path.name in line


def _analyse(folder: Path) -> tuple[str, dict[str, tuple[str, str]]]:
    """One real ``python -m multirun_analysis``: its output, and ``job -> (status, error)``."""
    proc = subprocess.run([sys.executable, "-m", "multirun_analysis", str(folder)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    jobs = pd.read_csv(folder / "analysis" / "jobs.csv", keep_default_na=False)
    return proc.stdout, {j: (s, e) for j, s, e in zip(jobs["job"], jobs["status"], jobs["error"],
                                                      strict=True)}  # fmt: skip


def test_a_truncated_block_is_damage_that_a_relaunch_repairs(stopped: Path) -> None:
    """As docs/ensemble.md promises: a block cut short (a zip without its directory) is
    damage, which the analysis lists with the block and the reason beside a sound stopped
    copy; the relaunch is not refused: it logs the block, evaluates its initializations
    again, and the analysis then reads the finished job."""
    cut = copy_job(stopped, "zoo/cut-block")
    copy_job(stopped, "zoo/sound")
    path = _blocks(cut)[0]
    with path.open("r+b") as fh:  # the tail of the file, the zip's directory, never written
        fh.truncate(300)
    stdout, jobs = _analyse(cut.parent)
    reason = f"{path} is damaged (BadZipFile: File is not a zip file); relaunching the same "
    assert jobs["cut-block"][0] == "damaged" and jobs["cut-block"][1].startswith(reason)
    assert f"  damaged: {cut} - {reason}" in stdout
    assert jobs["sound"][0] == "interrupted"  # the other job: analysed as what it is
    proc = _relaunch(cut)
    out = proc.stderr + proc.stdout
    assert proc.returncode == 0, out[-2000:]
    assert f"{path} is unreadable (BadZipFile" in out
    assert "evaluating its initializations again" in out
    found = 20 * (len(_blocks(stopped)) - 1)
    assert f"{found} of 160 initializations found" in out or found == 0
    assert json.loads((cut / "summary.json").read_text())["inits_resumed"] == found
    assert not (cut / "partial").exists()
    _, jobs = _analyse(cut.parent)
    assert jobs["cut-block"] == ("finished", "") and jobs["sound"][0] == "interrupted"
    inits = pd.read_csv(cut.parent / "analysis" / "inits.csv")
    assert sorted(inits["seed"]) == list(range(160))
