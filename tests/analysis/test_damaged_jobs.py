"""One damaged job never sinks the analysis: it is listed ``damaged`` with the file and why.

A real grid (two training jobs) and a real ensemble are copied into one folder, and in each
copy one file is replaced by binary garbage or cut short, as a failing disk or a killed
writer leaves it. One real ``python -m multirun_analysis`` over the folder analyses the
sound jobs and lists every damaged one with its file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers.entry_points import ROOT, run_entry
from helpers.sizes import TINY, TINY_ENSEMBLE

GARBAGE = bytes(range(256)) * 4
ENSEMBLE = [*TINY_ENSEMBLE, "ensemble.theory=false", "logger=none"]


def _garbage(path: Path) -> None:
    path.write_bytes(GARBAGE)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _cut_last_row(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-9])


#: copy name -> (source job, damaged file, what is done to it, the reason said)
DAMAGE = {
    "config": ("train", "config.yaml", _garbage, "config.yaml is damaged (unreadable"),
    "metrics": ("train", "metrics.csv", _garbage, "metrics.csv is damaged"),
    "cut": ("train", "metrics.csv", _cut_last_row, "metrics.csv is damaged (its last row is cut"),
    "ckpt": ("train", "checkpoints/last.ckpt", _truncate, "last.ckpt is damaged (BadZipFile"),
    "inits": ("ensemble", "inits.csv", _garbage, "inits.csv is not the file this job wrote"),
    "summary": ("ensemble", "summary.json", _garbage, "summary.json is not the file this job"),
}


@pytest.mark.slow
def test_each_damaged_job_is_listed_and_the_others_analysed(tmp_path: Path) -> None:
    grid = tmp_path / "grid"
    proc = run_entry("train.py", "-m", "seed=0,1", *TINY, "logger=csv",
                     f"hydra.sweep.dir={grid}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    ens = tmp_path / "ens"
    proc = run_entry("ensemble.py", *ENSEMBLE, f"hydra.run.dir={ens}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    zoo = tmp_path / "zoo"
    sources = {"train": grid / "1", "ensemble": ens}
    for name, (source, file, damage, _) in DAMAGE.items():
        shutil.copytree(sources[source], zoo / name)
        damage(zoo / name / file)
    shutil.copytree(grid / "0", zoo / "sound")
    shutil.copytree(ens, zoo / "sound-ensemble")
    # a block of initializations cut short (a relaunch evaluates it again): no traceback
    shutil.copytree(ens, zoo / "sound-ensemble-block")
    (zoo / "sound-ensemble-block" / "partial").mkdir()
    (zoo / "sound-ensemble-block" / "partial" / "0-7.npz").write_bytes(GARBAGE[:100])

    out = subprocess.run([sys.executable, "-m", "multirun_analysis", str(zoo)],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    for name, (_, file, _, reason) in DAMAGE.items():
        line = next(x for x in out.stdout.splitlines() if x.startswith(f"  damaged: {zoo / name}"))
        assert f"{zoo / name / file}"[: -len(file)] in line and reason in line, line
    jobs = pd.read_csv(zoo / "analysis" / "jobs.csv")
    status = dict(zip(jobs["job"], jobs["status"], strict=True))
    assert status == {**dict.fromkeys(DAMAGE, "damaged"), "sound": "finished",
                      "sound-ensemble": "finished", "sound-ensemble-block": "finished"}  # fmt: skip
    series = pd.read_csv(zoo / "analysis" / "series.csv")
    assert set(series["job"]) == {"sound"}  # the damaged jobs' rows are not analysed
