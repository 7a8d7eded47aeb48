"""The job runner: one writer per folder, a folder's configuration is its identity,
damaged files are named, interrupted ensembles resume to the same result.

Real launches (``python train.py``/``ensemble.py`` subprocesses, real signals) on tiny
sizes; each case of docs/scaling.md's "Faults" promises has one test here.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers.entry_points import STOPPABLE_ENSEMBLE, run_entry
from helpers.sizes import TINY, merged
from omegaconf import OmegaConf

from igb.jobs.lock import JobLock, live_holder
from igb.jobs.records import RECORDS_KEY
from igb.jobs.status import JobFolder
from igb.launch import ensemble_job
from igb.launch.preflight import check
from igb.launch.train_job import run
from igb.launch.validate import validate
from multirun_analysis.collect import collect

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
FAST = merged(TINY, ["trainer.max_epochs=1", "logger=csv"])


def launch(tmp_path: Path, *argv: str, entry: str = "train.py", wait: bool = True):
    """Run an entry point in ``tmp_path`` (tests/ on the path, for the fault callbacks);
    ``wait=False``: the running ``Popen``."""
    pythonpath = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    if wait:
        return run_entry(entry, *argv, cwd=tmp_path, env={"PYTHONPATH": pythonpath}, timeout=300)
    env = {**os.environ, "IGB_ROOT": str(tmp_path), "WANDB_MODE": "offline",
           "PYTHONPATH": pythonpath}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, str(ROOT / entry), *argv], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint,
    )  # fmt: skip


def _default_sigint() -> None:
    """The job reacts to SIGINT as under a user's terminal: a suite started in the background
    of a non-interactive shell runs with SIGINT ignored, which its children would inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error: ")]


# -- 1. one writer per job folder ----------------------------------------------------------
def test_two_launchers_on_one_sweep_run_each_job_once(tmp_path: Path) -> None:
    sweep = tmp_path / "S"
    argv = ["-m", "seed=0,1", *TINY, "logger=default", f"hydra.sweep.dir={sweep}"]
    procs = [launch(tmp_path, *argv, wait=False) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outs):
        assert proc.returncode == 0, err[-3000:]
    for job in ("0", "1"):
        st = status(sweep / job)
        assert st["status"] == "finished" and st["attempt"] == 1, st  # run once, by one
        metrics = pd.read_csv(sweep / job / "metrics.csv")
        assert metrics["test/acc"].notna().sum() == 1
        f_max = metrics.loc[metrics["igb/train/f_max"].notna(), "step"]
        assert f_max.is_unique and f_max.tolist() == [0, 6, 12]
        runs = sorted((sweep / job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1 and runs[0].name.endswith(st["wandb_id"])
    assert status(sweep / "0")["wandb_id"] != status(sweep / "1")["wandb_id"]
    # what a launcher that met a busy job said is true: it named the other launcher
    text = outs[0][1] + outs[1][1]
    pids = {str(p.pid) for p in procs}
    for line in (x for x in text.splitlines() if "is being run by pid" in x):
        assert line.split("is being run by pid ")[1].split()[0] in pids, line
    # each report counts as run by it only the jobs it ran (a job's status holds its pid)
    for proc, (out, err) in zip(procs, outs, strict=True):
        ran = sum(status(sweep / job)["pid"] == proc.pid for job in ("0", "1"))
        head = next(x for x in (out + err).splitlines() if "jobs finished in" in x)
        done = int(head.split("multirun: ")[1].split("/")[0])
        if done > ran:
            assert f"({ran} run by this launch, {done - ran} found finished and skipped)" in head
        else:
            assert done == ran and "found finished" not in head, head


def test_a_held_folder_is_reported_and_a_dead_holder_is_interrupted(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    argv = [*FAST, f"hydra.run.dir={folder}"]
    lock = JobLock(folder).acquire()  # this test process plays the live launcher
    JobFolder(folder).mark("running", pid=os.getpid())
    before = (folder / "status.json").read_text()
    assert live_holder(folder)["pid"] == os.getpid()
    proc = launch(tmp_path, *argv)
    assert proc.returncode == 1
    (line,) = error_lines(proc)
    assert f"is being run by pid {os.getpid()}" in line and str(folder) in line
    assert (folder / "status.json").read_text() == before  # nothing written
    names = sorted(p.name for p in folder.iterdir())
    assert names == [".hydra", ".igb.lock", "status.json", "train.log"]

    lock.release()  # the holder dies: its `running` status is stale
    assert live_holder(folder) is None
    assert JobFolder(folder).current()["status"] == "interrupted"
    proc = launch(tmp_path, *argv)
    assert proc.returncode == 0, proc.stderr[-3000:]
    st = status(folder)
    assert st["status"] == "finished" and st["previous"]["status"] == "interrupted"
    assert "ended without recording an outcome" in st["previous"]["error"]


# -- 2. the configuration is the job's identity ----------------------------------------------
def test_relaunch_with_other_settings_is_refused_until_restart(tmp_path: Path) -> None:
    sweep = tmp_path / "S"
    first = launch(tmp_path, "-m", "seed=0,1", *FAST, f"hydra.sweep.dir={sweep}")
    assert first.returncode == 0, first.stderr[-3000:]
    overrides = (sweep / "0" / ".hydra" / "overrides.yaml").read_text()

    other = launch(tmp_path, "-m", "seed=5,6", *FAST, f"hydra.sweep.dir={sweep}")
    assert other.returncode == 2
    lines = [x for x in other.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, other.stderr
    expected = f"{sweep / '0'} holds a job of another configuration (finished; seed: 0 -> 5)"
    assert expected in lines[0]
    assert "restart=true" in lines[0]
    assert (sweep / "0" / ".hydra" / "overrides.yaml").read_text() == overrides  # untouched

    # one job of a two-job folder: the report counts this launch, not the folder
    one = launch(tmp_path, "-m", "seed=0", *FAST, f"hydra.sweep.dir={sweep}")
    assert one.returncode == 0 and "multirun: 1/1 jobs finished" in one.stderr + one.stdout

    again = launch(tmp_path, "-m", "seed=5,6", *FAST, "restart=true", f"hydra.sweep.dir={sweep}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "multirun: 2/2 jobs finished" in again.stdout + again.stderr
    assert OmegaConf.load(sweep / "0" / "config.yaml").seed == 5
    (kept,) = (sweep / "0" / ".discarded").iterdir()  # the seed-0 run, moved aside
    assert OmegaConf.load(kept / "config.yaml").seed == 0
    assert status(kept)["status"] == "finished" and (kept / "metrics.csv").is_file()
    assert sorted(collect(sweep).jobs["seed"]) == [5, 6]  # .discarded is not a job
    # the same command again (a requeue, a relaunch): the restarted jobs are not restarted
    stamp = status(sweep / "0")["updated"]
    same = launch(tmp_path, "-m", "seed=5,6", *FAST, "restart=true", f"hydra.sweep.dir={sweep}")
    assert same.returncode == 0 and "multirun: 2/2 jobs finished" in same.stdout + same.stderr
    assert status(sweep / "0")["updated"] == stamp
    assert len(list((sweep / "0" / ".discarded").iterdir())) == 1


def test_a_changed_model_or_lr_never_resumes_an_interrupted_checkpoint(make_cfg) -> None:
    cfg = make_cfg(*FAST)
    run(cfg)
    JobFolder(cfg.paths.output_dir).mark("interrupted")
    for changed in (["model.width=32"], ["optimizer.lr=0.5", "seed=3"]):
        argv = merged(FAST, changed, [f"hydra.run.dir={cfg.paths.output_dir}"])
        error = check("train", argv, validate)
        assert error is not None and "\n" not in error
        assert "holds a job of another configuration (interrupted; " in error
        for key in (c.split("=")[0] for c in changed):
            assert key in error, error
    # a longer run of the same job is a continuation (skip_finished=false), not another job
    argv = merged(FAST, ["trainer.max_epochs=2", "skip_finished=false"])
    assert check("train", [*argv, f"hydra.run.dir={cfg.paths.output_dir}"], validate) is None


# -- 3. analysis validates what it reads ---------------------------------------------------------
def test_truncated_or_empty_results_are_reported_damaged(make_cfg, tmp_path: Path) -> None:
    for job in ("a", "b", "c", "d"):
        run(make_cfg(*FAST, job=f"sweep/{job}"))
        (tmp_path / "sweep" / job / ".hydra").mkdir()
    a, b = tmp_path / "sweep" / "a" / "metrics.csv", tmp_path / "sweep" / "b" / "metrics.csv"
    a.write_bytes(a.read_bytes()[: int(a.stat().st_size * 0.6)])  # truncate -s 60%
    b.write_text("")
    # d: status.json without fingerprints (written before them), metrics.csv cut at a row
    d = tmp_path / "sweep" / "d"
    status = json.loads((d / "status.json").read_text())
    del status[RECORDS_KEY]
    (d / "status.json").write_text(json.dumps(status))
    lines = (d / "metrics.csv").read_bytes().splitlines(keepends=True)
    (d / "metrics.csv").write_bytes(b"".join(lines[:2]))
    ensemble_cfg = make_cfg("ensemble.n_inits=8", "ensemble.progress=false",
                            "dataset.num_samples=300", "dataset.shape=[10]",
                            "ensemble.eval_samples=100", "ensemble.n_boot=50",
                            name="ensemble", job="sweep/e")  # fmt: skip
    ensemble_job.run(ensemble_cfg)
    (tmp_path / "sweep" / "e" / ".hydra").mkdir()
    inits = tmp_path / "sweep" / "e" / "inits.csv"
    inits.write_text("".join(inits.read_text().splitlines(keepends=True)[:5]))

    jobs = collect(tmp_path / "sweep").jobs.set_index("job")
    assert jobs.loc["c", "status"] == "finished"
    assert set(jobs.loc[["a", "b", "d", "e"], "status"]) == {"damaged"}
    assert jobs.loc["a", "error"] == f"{a} is damaged (its last row is cut mid-line)"
    assert jobs.loc["b", "error"].startswith(f"{b} holds 0 rows where status.json records ")
    # without the status's fingerprints, the checkpoint's still say how far it got
    d_metrics = d / "metrics.csv"
    assert jobs.loc["d", "error"] == f"{d_metrics} ends before step 6, where " \
        "checkpoints/last.ckpt is (truncated)"  # fmt: skip
    assert jobs.loc["e", "error"] == f"{inits} is not the file this job wrote (status.json says)"


# -- 4. a damaged checkpoint -----------------------------------------------------------------------
def test_damaged_checkpoint_is_named_and_restart_true_starts_over(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    argv = [*FAST, f"hydra.run.dir={folder}"]
    assert launch(tmp_path, *argv).returncode == 0
    ckpt = folder / "checkpoints" / "last.ckpt"
    damaged = ckpt.read_bytes()[: ckpt.stat().st_size // 2]
    ckpt.write_bytes(damaged)
    JobFolder(folder).mark("interrupted")

    before = (folder / "status.json").read_text()
    proc = launch(tmp_path, *argv)
    assert proc.returncode == 2  # found before the folder is touched, like all damage
    (line,) = error_lines(proc)
    assert line.startswith(f"error: {ckpt} is damaged (") and "restart=true" in line
    assert "Traceback" not in proc.stderr
    assert (folder / "status.json").read_text() == before  # nothing written

    proc = launch(tmp_path, *argv, "restart=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    st = status(folder)
    assert st["status"] == "finished" and st["attempt"] == 1 and "resumed_from_step" not in st
    (kept,) = (folder / ".discarded").iterdir()
    assert (kept / "checkpoints" / "last.ckpt").read_bytes() == damaged  # moved, not deleted
    assert (kept / "split_shares.json").is_file()  # every result of the old run, not some


# -- 5. an ensemble stopped by a signal resumes to the same result --------------------------
ENSEMBLE = [*STOPPABLE_ENSEMBLE, "ensemble.n_boot=100"]  # signalled once a block is on disk


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_ensemble_stopped_by_a_signal_resumes_to_the_uninterrupted_result(
    tmp_path: Path, make_cfg, sig: str
) -> None:
    folder = tmp_path / "stopped"
    argv = [*ENSEMBLE, f"hydra.run.dir={folder}"]
    proc = launch(tmp_path, *argv, entry="ensemble.py", wait=False)
    deadline = time.monotonic() + 240
    while not list((folder / "partial").glob("[0-9]*.npz")):  # not a temporary file
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(getattr(signal, sig))
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode != 0, "finished before the signal: make the ensemble larger"
    st = status(folder)
    assert st["status"] == "interrupted", st
    blocks = sorted((folder / "partial").glob("[0-9]*.npz"))
    assert 1 <= len(blocks) < 8, (blocks, err[-2000:])
    assert not (folder / "summary.json").exists() and not (folder / "inits.csv").exists()

    again = launch(tmp_path, *argv, entry="ensemble.py")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{20 * len(blocks)} of 160 initializations found" in again.stderr + again.stdout
    # the time report says what this run evaluated and what came from the earlier blocks
    resumed = 20 * len(blocks)
    assert (
        f"{160 - resumed} inits evaluated in " in again.stderr + again.stdout
        and f"s by this run, {resumed} read from earlier blocks (160 in all)"
        in again.stderr + again.stdout
    )
    assert json.loads((folder / "summary.json").read_text())["inits_resumed"] == resumed
    assert status(folder)["status"] == "finished" and not (folder / "partial").exists()

    reference = make_cfg(*ENSEMBLE, name="ensemble", job="reference")
    ensemble_job.run(reference)
    ref_dir = Path(reference.paths.output_dir)
    pd.testing.assert_frame_equal(
        pd.read_csv(folder / "inits.csv"), pd.read_csv(ref_dir / "inits.csv"), check_exact=True
    )
    got, want = (json.loads((d / "summary.json").read_text()) for d in (folder, ref_dir))
    assert got["gamma"] == want["gamma"] and got["gamma_ci"] == want["gamma_ci"]


# -- 6. bad values: one line, exit 2, nothing written (each key: tests/launch/test_schema.py)
def test_unwritable_output_folder_is_one_line_and_nothing_written(tmp_path: Path) -> None:
    blocker = tmp_path / "outputs"
    blocker.write_text("a file where the output folder should be")
    proc = launch(tmp_path, "seed=abc")
    assert proc.returncode == 2 and len(error_lines(proc)) == 1
    proc = launch(tmp_path, *FAST)
    assert proc.returncode == 2
    (line,) = [x for x in proc.stderr.splitlines() if x.strip()]
    assert line.startswith("error: cannot create the job folder") and str(blocker) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]


# -- 7. small ones -------------------------------------------------------------------------
def test_a_signal_before_training_stops_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    fault = ["+callbacks.fault._target_=helpers.faults.SignalAtFitStart"]
    proc = launch(tmp_path, *FAST, *fault, f"hydra.run.dir={folder}")
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr[-3000:]
    st = status(folder)
    assert st["status"] == "interrupted" and st["signal"] == "SIGTERM"
    # stopped before the step-0 statistics: no statistics row was computed after the signal
    metrics = folder / "metrics.csv"
    assert not metrics.exists() or "igb/train/f_max" not in metrics.read_text()


def test_resume_log_names_the_epoch_training_continues_in(make_cfg, caplog) -> None:
    cfg = make_cfg(*TINY, "logger=csv", "trainer.max_epochs=1")
    run(cfg)
    caplog.set_level("INFO", logger="igb.jobs.checkpoint")
    run(make_cfg(*TINY, "logger=csv", "trainer.max_epochs=2", "skip_finished=false"))
    assert "resumed at step 6 (epoch 1)" in caplog.text
    assert not math.isnan(status(Path(cfg.paths.output_dir))["objective"])


def test_a_restart_moves_every_file_a_job_writes() -> None:
    """RESULTS spells out names that packages jobs may not import: they must agree."""
    from igb.data.shares import SHARES_FILE
    from igb.ensemble.run import OUTPUT_FILES, PROFILE_FILES
    from igb.jobs.runner import RESULTS

    assert {SHARES_FILE, *OUTPUT_FILES, *PROFILE_FILES} <= set(RESULTS)
