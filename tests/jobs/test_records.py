"""Every record a job writes is tied to the job: a relaunch and the analysis check it.

Real runs of ``train.py`` (one finished, one of another seed, one stopped by SIGTERM at step
8 of 18) are copied and a record damaged in each copy as a user or a machine would:
another configuration's ``metrics.csv`` dropped in, ``metrics.csv`` deleted, truncated, cut
mid-row, ``last.ckpt`` truncated. The real entry point is launched again into each copy:
refused before it touches the folder (one line naming the file and ``restart=true``,
exit 2, nothing written), or, in a grid, reported and counted while the other jobs go on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.entry_points import ROOT, run_entry
from helpers.job_folders import copy_job, snapshot
from helpers.sizes import TINY, merged

from igb.compat import load_checkpoint
from igb.jobs.integrity import folder_damage
from igb.jobs.records import RECORDS_KEY

ARGS = merged(TINY, ["logger=csv", "trainer.max_epochs=3"])
FAULT = [
    "+callbacks.fault._target_=helpers.faults.SignalAtStep",
    "+callbacks.fault.step=8",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("records")
    out = {"finished": root / "finished", "other": root / "other", "stopped": root / "stopped"}
    for name, extra in (("finished", ()), ("other", ("seed=1",))):
        proc = run_entry("train.py", *ARGS, *extra, f"hydra.run.dir={out[name]}", cwd=root)
        assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_entry("train.py", *ARGS, *FAULT, f"hydra.run.dir={out['stopped']}", cwd=root,
                     env={"PYTHONPATH": str(ROOT / "tests")})  # fmt: skip
    assert proc.returncode != 0
    assert json.loads((out["stopped"] / "status.json").read_text())["status"] == "interrupted"
    return out


def _relaunch(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_entry("train.py", *ARGS, *extra, f"hydra.run.dir={folder}", cwd=folder.parent)


def _refused(folder: Path, *parts: str, extra: tuple[str, ...] = ()) -> str:
    """Relaunch into ``folder``: exit 2, one line holding ``parts`` and the way out, and
    not one byte of the folder changed."""
    before = snapshot(folder)
    proc = _relaunch(folder, *extra)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1, lines
    for part in (*parts, "restart=true"):
        assert part in lines[0], (part, lines[0])
    assert snapshot(folder) == before
    return lines[0]


def test_each_record_is_fingerprinted_with_the_config_hash(runs: dict[str, Path]) -> None:
    status = json.loads((runs["finished"] / "status.json").read_text())
    records = status[RECORDS_KEY]
    assert set(records) == {"metrics.csv", "split_shares.json"}
    assert {fp["config_hash"] for fp in records.values()} == {status["config_hash"]}
    assert records["metrics.csv"]["complete"] and records["metrics.csv"]["step"] == 18
    # the checkpoint of the stopped run: the rows before its step, 8
    ckpt = load_checkpoint(runs["stopped"] / "checkpoints" / "last.ckpt")
    fp = ckpt[RECORDS_KEY]["metrics.csv"]
    assert ckpt["global_step"] == 8 and fp["step"] == 8 and not fp["complete"]
    assert folder_damage(runs["finished"]) is None and folder_damage(runs["stopped"]) is None


@pytest.mark.slow
def test_another_configurations_metrics_is_refused_then_restart_runs_it(
    runs: dict[str, Path],
) -> None:
    folder = copy_job(runs["finished"], "foreign")
    shutil.copy(runs["other"] / "metrics.csv", folder / "metrics.csv")
    _refused(folder, f"{folder}/metrics.csv is not this job's", "status.json records")
    proc = _relaunch(folder, "restart=true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert folder_damage(folder) is None
    assert (folder / "metrics.csv").read_bytes() == (runs["finished"] / "metrics.csv").read_bytes()


@pytest.mark.slow
def test_a_stopped_jobs_metrics_deleted_truncated_or_cut_is_refused_before_training(
    runs: dict[str, Path],
) -> None:
    """Today's bug: a deleted metrics.csv resumed to ``finished`` with its first steps gone."""
    deleted = copy_job(runs["stopped"], "deleted")
    (deleted / "metrics.csv").unlink()
    _refused(deleted, f"{deleted}/metrics.csv is missing (checkpoints/last.ckpt records it)")
    truncated = copy_job(runs["stopped"], "truncated")
    lines = (truncated / "metrics.csv").read_bytes().splitlines(keepends=True)
    (truncated / "metrics.csv").write_bytes(b"".join(lines[:2]))
    _refused(truncated, f"{truncated}/metrics.csv holds 1 rows where checkpoints/last.ckpt")
    cut = copy_job(runs["stopped"], "cut")
    (cut / "metrics.csv").write_bytes((runs["stopped"] / "metrics.csv").read_bytes()[:-9])
    # a row cut past the checkpoint's would be dropped by the resume; this one is before it
    _refused(cut, f"{cut}/metrics.csv ", "(truncated)")


@pytest.mark.slow
def test_a_damaged_checkpoint_exits_2_like_the_rest(runs: dict[str, Path]) -> None:
    folder = copy_job(runs["stopped"], "bad-ckpt")
    ckpt = folder / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:4000])
    _refused(folder, f"{ckpt} is damaged (BadZipFile")


def test_a_stopped_job_names_its_checkpoint_relative_to_its_folder(runs: dict[str, Path]) -> None:
    """A copied folder's status (and every report read from it) names its own checkpoint."""
    status = json.loads((runs["stopped"] / "status.json").read_text())
    assert status["checkpoint"] == "checkpoints/last.ckpt"
    assert str(runs["stopped"]) not in status["error"]


@pytest.mark.slow
def test_a_grid_reports_a_damaged_finished_job_and_runs_the_others(tmp_path: Path) -> None:
    sweep = tmp_path / "S"
    grid = ["-m", "seed=0,1", *ARGS, f"hydra.sweep.dir={sweep}"]
    first = run_entry("train.py", *grid, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "multirun: 2/2 jobs finished" in first.stderr + first.stdout
    metrics = sweep / "1" / "metrics.csv"
    metrics.write_bytes(metrics.read_bytes()[:-20])  # a finished job's record cut short
    before = snapshot(sweep / "1")
    again = run_entry("train.py", *grid, cwd=tmp_path)
    out = again.stderr + again.stdout
    assert again.returncode == 1, out[-3000:]
    assert "multirun: 1/2 jobs finished" in out and "(0 run by this launch, 1 found" in out
    assert f"{metrics} is damaged (its last row is cut mid-line)" in out
    assert "1 of 2 jobs did not finish: 1 (seed=1)" in out and "restart=true" in out
    assert snapshot(sweep / "1") == before
    analysis = subprocess.run([sys.executable, "-m", "multirun_analysis", str(sweep)],
                              capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert analysis.returncode == 0, analysis.stderr[-2000:]
    assert f"damaged: {sweep / '1'} - {metrics} is damaged" in analysis.stdout


def test_a_row_cut_past_the_checkpoint_is_dropped_by_the_resume(tmp_path: Path) -> None:
    """A kill while a row past the checkpoint was written: not damage, and the resume's
    logger drops that row; a row cut before the checkpoint's step is damage."""
    from igb.jobs.records import metrics_fingerprint, record_damage
    from igb.logging.csv_logger import AppendingExperimentWriter

    whole = b"epoch,step,x\r\n0,0,1\r\n0,6,2\r\n"
    path = tmp_path / "metrics.csv"
    path.write_bytes(whole)
    fp = metrics_fingerprint(path, "0123456789abcdef", step=8)
    assert fp["rows"] == 2 and not fp["at_step"]
    path.write_bytes(whole + b"1,1")  # the row of step 1x, cut
    assert record_damage(tmp_path, {"metrics.csv": fp}, "checkpoints/last.ckpt") is None
    AppendingExperimentWriter(str(tmp_path)).keep_rows_until(8)
    assert path.read_bytes() == whole
    path.write_bytes(whole[:-3])  # the step-6 row, before the checkpoint, cut
    assert record_damage(tmp_path, {"metrics.csv": fp}, "checkpoints/last.ckpt") == (
        f"{path} holds 1 rows where checkpoints/last.ckpt records 2 rows before step 8 (truncated)"
    )
