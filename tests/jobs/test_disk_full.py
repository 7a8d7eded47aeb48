"""A full disk: one line naming it, ``failed`` recorded, no temporary file left; after space
is freed the same command runs the job to its end.

The disk is a real one: an 8 MiB tmpfs mounted for the test (root on Linux; skipped with the
reason elsewhere), filled but for a few hundred KiB, so the checkpoint write fails with
``ENOSPC`` in the middle of training.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.entry_points import ROOT, run_entry
from helpers.sizes import TINY, merged


@pytest.fixture
def small_disk(tmp_path: Path):
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8M", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_is_one_line_failed_and_a_relaunch_finishes(small_disk: Path) -> None:
    fill = small_disk / "fill"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    fill.write_bytes(b"\0" * (free - 96 * 1024))  # room for the config and status, not a ckpt
    folder = small_disk / "run"
    argv = merged(TINY, ["logger=csv", "checkpoint_every_s=0", "model.width=256", "model.depth=3"])
    argv += [f"hydra.run.dir={folder}"]
    proc = run_entry("train.py", *argv, cwd=small_disk.parent)
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no space left to write" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "failed" and "no space left" in status["error"]
    assert not [p for p in folder.rglob("*") if ".tmp" in p.name]  # no temporary file left

    fill.unlink()  # space freed: the same command continues to the end
    again = run_entry("train.py", *argv, cwd=small_disk.parent)
    assert again.returncode == 0, again.stderr[-2000:]
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "finished" and status["previous"]["status"] == "failed"


@pytest.mark.slow
def test_the_analysis_says_when_it_cannot_write(small_disk: Path, tmp_path: Path) -> None:
    """``--out`` naming a file: one line, exit 2; a full disk under ``--out``: one line
    naming the folder, exit 1 (the job folders themselves are only read)."""
    sweep = tmp_path / "sweep"
    proc = run_entry("train.py", "-m", *TINY, "logger=csv", f"hydra.sweep.dir={sweep}",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    analysis = [sys.executable, "-m", "multirun_analysis", str(sweep), "--out"]
    bad = subprocess.run([*analysis, str(a_file)], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"error: --out {a_file} is a file, not a folder; name a " \
        "folder (it is created)"  # fmt: skip
    first = subprocess.run([*analysis, str(small_disk / "an")], capture_output=True, text=True,
                           cwd=ROOT)  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    written = {p: p.read_bytes() for p in (small_disk / "an").rglob("*") if p.is_file()}
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "fill").write_bytes(b"\0" * (free - 8 * 1024))
    full = subprocess.run([*analysis, str(small_disk / "an")], capture_output=True, text=True,
                          cwd=ROOT)  # fmt: skip
    assert full.returncode == 1
    # written atomically: every earlier output is whole (none truncated), no temporary left
    after = {p: p.read_bytes() for p in (small_disk / "an").rglob("*") if p.is_file()}
    assert set(after) == set(written) and all(after[p] == written[p] for p in after
                                              if p.suffix != ".md")  # fmt: skip
    lines = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"cannot write the analysis under {small_disk / 'an'}" in lines[0]
    assert "No space left on device" in lines[0] and "Traceback" not in full.stderr
