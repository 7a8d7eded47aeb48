"""Preemption and resume: a job stopped by a signal checkpoints, and the same command
resumes it in its folder (same W&B run, no duplicated or missing metrics rows); a
finished job launched again is skipped.
"""

from __future__ import annotations

import csv
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
import torch
from helpers.sizes import TINY, merged

from igb.compat import load_checkpoint
from igb.data.loader import InMemoryLoader, LoaderSpec
from igb.data.resumable import ResumableLoader
from igb.jobs.checkpoint import ResumeCallback
from igb.jobs.signals import JobInterrupted, SignalGuard
from igb.launch.train_job import run
from igb.logging.csv_logger import ResumableCSVLogger
from multirun_analysis.wandb_files import find_run_dirs, read_run

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]

EPOCHS = 3
STEPS_PER_EPOCH = 6  # 192 train points (240 - val - test) / batch 32
LAST = EPOCHS * STEPS_PER_EPOCH
#: steps of the statistics callback's rows: step 0 and every epoch end
STAT_STEPS = [0, *(STEPS_PER_EPOCH * (e + 1) for e in range(EPOCHS))]


def train_cmd(*argv: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *argv]


def train_env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "IGB_ROOT": str(tmp_path), "WANDB_MODE": "offline", "PYTHONPATH": path}


def status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def csv_steps(path: Path) -> list[int]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [int(float(r["step"])) for r in csv.DictReader(f) if r.get("step")]


def assert_unique_steps(metrics: pd.DataFrame) -> None:
    """No metric has two values at one step (rows of one step may be split by logger)."""
    for col in metrics.columns.drop(["step", "epoch"], errors="ignore"):
        steps = metrics.loc[metrics[col].notna(), "step"]
        assert steps.is_unique, (col, steps[steps.duplicated()].tolist())


def stat_steps(metrics: pd.DataFrame) -> list[int]:
    return metrics.loc[metrics["igb/train/f_max"].notna(), "step"].astype(int).tolist()


# ------------------------------------------------------------------ the real thing, end to end


@pytest.mark.slow
def test_sigterm_mid_run_then_same_command_resumes_same_wandb_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cmd = train_cmd(
        *merged(
            TINY,
            [
                f"trainer.max_epochs={EPOCHS}",
                "logger=default",  # W&B (offline) + metrics.csv
                # slow enough to be killed mid-run from outside
                "+callbacks.slow._target_=helpers.faults.SleepPerStep",
                "+callbacks.slow.seconds=0.25",
                f"hydra.run.dir={run_dir}",
            ],
        )
    )
    env = train_env(tmp_path)

    # 1. start it, wait until the first epoch is done, kill it as SLURM would
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 240
    while max(csv_steps(run_dir / "metrics.csv"), default=-1) < STEPS_PER_EPOCH:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]

    first = status(run_dir)
    step = first["global_step"]
    assert first["status"] == "interrupted" and first["signal"] == "SIGTERM"
    assert STEPS_PER_EPOCH <= step < LAST, first
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == step  # the checkpoint is at the step the signal stopped
    wandb_id = first["wandb_id"]

    # 2. the same command again: resumes there, finishes, same W&B run
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    second = status(run_dir)
    assert second["status"] == "finished" and second["global_step"] == LAST
    assert second["attempt"] == 2 and second["resumed_from_step"] == step
    assert second["previous"]["status"] == "interrupted"
    assert second["wandb_id"] == wandb_id

    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert_unique_steps(metrics)
    assert stat_steps(metrics) == STAT_STEPS  # no gap, nothing twice
    assert metrics["test/acc"].notna().sum() == 1

    runs = [read_run(d) for d in find_run_dirs(run_dir / "wandb")]
    assert len(runs) == 2 and {r.run_id for r in runs} == {wandb_id}  # one run, resumed
    logged = [
        (int(row["trainer/global_step"]), key)
        for r in runs
        for row in r.history
        if "trainer/global_step" in row
        for key in row
        if key.startswith(("igb/", "train/", "val/", "test/"))
    ]
    assert len(logged) == len(set(logged)), "a W&B key was logged twice at one step"
    wb_stat_steps = sorted({s for s, k in logged if k == "igb/train/f_max"})
    assert wb_stat_steps == STAT_STEPS

    # 3. and once more: the finished job is recognised and skipped
    stamp = second["updated"]
    third = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "skipping" in third.stdout + third.stderr
    assert status(run_dir)["updated"] == stamp
    assert len(find_run_dirs(run_dir / "wandb")) == 2


# ------------------------------------------------------------- exactness of the resume rule


def _interrupt_then_resume(make_cfg, job: str, overrides: list[str]) -> Path:
    cfg = make_cfg(*overrides, job=job)
    with pytest.raises(JobInterrupted) as info:
        run(cfg)
    out = Path(cfg.paths.output_dir)
    assert info.value.code == 128 + info.value.signum
    assert status(out)["status"] == "interrupted"
    clean = [o for o in overrides if not o.startswith("+callbacks.fault")]
    run(make_cfg(*clean, job=job))  # relaunch (without the fault: it fires only once anyway)
    return out


@pytest.mark.parametrize(
    ("at", "sig", "saved_at"),
    [
        (8, "SIGUSR1", 8),  # mid-epoch: the epoch continues with its remaining batches
        (12, "SIGUSR2", 12),  # last batch of an epoch: its end-of-epoch row comes first
        (LAST, "SIGTERM", LAST),  # last batch of training: stops after fit, before test
    ],
)
def test_resumed_run_equals_uninterrupted_run(make_cfg, at: int, sig: str, saved_at: int) -> None:
    base = ["logger=csv", f"trainer.max_epochs={EPOCHS}"]
    fault = [
        "+callbacks.fault._target_=helpers.faults.SignalAtStep",
        f"+callbacks.fault.step={at}",
        f"+callbacks.fault.signal={sig}",
    ]
    out = _interrupt_then_resume(make_cfg, "resumed", base + fault)
    st = status(out)
    assert st["status"] == "finished" and st["attempt"] == 2
    assert st["previous"]["signal"] == sig and st["previous"]["global_step"] == saved_at
    assert st["resumed_from_step"] == saved_at

    ref_cfg = make_cfg(*base, job="reference")
    run(ref_cfg)
    ref = pd.read_csv(Path(ref_cfg.paths.output_dir) / "metrics.csv")
    got = pd.read_csv(out / "metrics.csv")
    assert_unique_steps(got)
    assert stat_steps(got) == STAT_STEPS
    assert list(got["step"]) == list(ref["step"]) and list(got["epoch"]) == list(ref["epoch"])

    # same weights, same batch order: every value equal, except the module's running
    # means of an epoch that was cut mid-way (they average the batches after the resume)
    cut_epoch = (saved_at - 1) // STEPS_PER_EPOCH if saved_at % STEPS_PER_EPOCH else None
    running = [c for c in ref.columns if c.endswith("_running")]
    for col in ref.columns:
        a, b = got[col].to_numpy(), ref[col].to_numpy()
        rows = range(len(ref))
        if col in running and cut_epoch is not None:
            rows = [i for i in rows if got["epoch"][i] != cut_epoch]
        for i in rows:
            assert (math.isnan(a[i]) and math.isnan(b[i])) or a[i] == pytest.approx(b[i]), (
                col,
                int(ref["step"][i]),
            )


def test_finished_job_run_again_with_skip_finished_false_extends_it(make_cfg) -> None:
    cfg = make_cfg("logger=csv", "trainer.max_epochs=1")
    run(cfg)
    out = Path(cfg.paths.output_dir)
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == 6
    run(make_cfg("logger=csv", "trainer.max_epochs=2", "skip_finished=false"))
    st = status(out)
    assert st["status"] == "finished" and st["attempt"] == 2
    assert st["resumed_from_step"] == STEPS_PER_EPOCH and st["global_step"] == 2 * STEPS_PER_EPOCH
    metrics = pd.read_csv(out / "metrics.csv")
    assert_unique_steps(metrics)
    assert stat_steps(metrics) == [0, STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert sorted(os.listdir(out / "checkpoints")) == ["last.ckpt"]


# ------------------------------------------------------------------------------- the pieces


def test_resumable_loader_continues_the_epoch_in_order() -> None:
    x = torch.arange(20.0).unsqueeze(1)
    y = torch.zeros(20, dtype=torch.long)

    def loader() -> ResumableLoader:
        return ResumableLoader(InMemoryLoader(x, y, LoaderSpec(batch_size=4, shuffle=True, seed=3)))

    whole = loader()
    whole.sampler.set_epoch(2)
    expected = [b[0].flatten().tolist() for b in whole]

    first = loader()
    first.sampler.set_epoch(2)
    it = iter(first)
    seen = [next(it)[0].flatten().tolist() for _ in range(2)]
    state = first.state_dict()
    assert state == {"epoch": 2, "batches": 2, "length": 5}

    resumed = loader()  # a new process: same loader, state from the checkpoint
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # Lightning sets the epoch before the first batch
    rest = [b[0].flatten().tolist() for b in resumed]
    assert seen + rest == expected
    resumed.sampler.set_epoch(3)  # the next epoch is whole again
    assert len(list(resumed)) == 5

    done = loader()
    done.load_state_dict({"epoch": 2, "batches": 5})  # an epoch-end checkpoint: no skip
    done.sampler.set_epoch(3)
    assert len(list(done)) == 5


def test_csv_logger_appends_and_drops_rows_past_the_resume_step(tmp_path: Path) -> None:
    first = ResumableCSVLogger(save_dir=str(tmp_path), name="", version="")
    for step in (0, 3, 6, 9):
        first.log_metrics({"a": float(step)}, step=step)
    first.save()

    second = ResumableCSVLogger(save_dir=str(tmp_path), name="", version="")
    second.keep_rows_until(6)  # resumed from a checkpoint at step 6: 9 is logged again
    second.log_metrics({"a": 9.5, "b": 1.0}, step=9)  # a new column too
    second.save()
    df = pd.read_csv(tmp_path / "metrics.csv")
    assert df["step"].tolist() == [0, 3, 6, 9]
    assert df["a"].tolist() == [0.0, 3.0, 6.0, 9.5] and df["b"].notna().sum() == 1

    third = ResumableCSVLogger(save_dir=str(tmp_path), name="", version="")
    third.keep_rows_until(None)  # a fit from scratch: a fresh file
    third.log_metrics({"a": 0.0}, step=0)
    third.save()
    assert pd.read_csv(tmp_path / "metrics.csv")["step"].tolist() == [0]


def test_signal_guard_raises_outside_training_defers_inside_and_chains() -> None:
    calls = []
    previous = signal.signal(signal.SIGUSR1, lambda s, f: calls.append(s))
    try:
        with SignalGuard(["SIGUSR1"]) as guard:
            with guard.deferred():
                os.kill(os.getpid(), signal.SIGUSR1)  # recorded only
                assert guard.received == signal.SIGUSR1
            os.kill(os.getpid(), signal.SIGUSR1)  # a second one while stopping: ignored
        with SignalGuard(["SIGUSR1"]) as guard:
            with pytest.raises(JobInterrupted) as info:
                os.kill(os.getpid(), signal.SIGUSR1)  # outside training: stops at once
                time.sleep(1)  # the handler runs before this ends
            assert info.value.code == 128 + signal.SIGUSR1
            guard.chain(signal.SIGUSR1)  # what was installed before (here: the lambda)
            assert calls == [signal.SIGUSR1]
        assert signal.getsignal(signal.SIGUSR1) is not guard._handle  # restored
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize(
    ("overrides", "saved_at"),
    [
        (["checkpoint_every_s=0"], [STEPS_PER_EPOCH * (e + 1) for e in range(EPOCHS)]),
        (["checkpoint_every_s=3600"], [LAST]),  # only the end of training
        (["checkpoint_every_s=3600", "+trainer.max_steps=8"], [8]),  # ends mid-epoch
    ],
)
def test_last_checkpoint_policy(make_cfg, monkeypatch, overrides, saved_at) -> None:
    """last.ckpt at epoch ends once ``checkpoint_every_s`` has passed, and always at the
    end of training, wherever training ends; the file holds the final step."""
    saves: list[int] = []
    real_save = ResumeCallback.save

    def spy(self, trainer) -> None:
        saves.append(trainer.global_step)
        real_save(self, trainer)

    monkeypatch.setattr(ResumeCallback, "save", spy)
    cfg = make_cfg("logger=csv", f"trainer.max_epochs={EPOCHS}", *overrides)
    run(cfg)
    assert saves == saved_at
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert load_checkpoint(ckpt)["global_step"] == saved_at[-1]
