"""``trainer=ddp`` on a CPU: two gloo processes measure the same step-0 statistics as one.

Runs through the real entry point as a 2-job multirun, the case Lightning's own Hydra
re-launch gets wrong: the second rank must run this job, in this job's folder, and the
next job (same process) must start its own second rank.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from helpers.entry_points import run_entry
from helpers.sizes import TINY, merged

from igb.jobs.ddp import RankCommand
from igb.launch.train_job import run
from multirun_analysis.wandb_files import find_run_dirs, read_run

C = 4
#: measurement batches of 64: the 192 train points are 3 batches, split 2 + 1 over 2 ranks
SHORT = ["trainer.max_epochs=1", "callbacks.bias_stats.batch_size=64"]


def step0(metrics: pd.DataFrame) -> pd.Series:
    rows = metrics[(metrics["step"] == 0) & metrics["igb/train/f_max"].notna()]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.mark.slow
def test_ddp_two_cpu_processes_log_the_single_process_step0_f(tmp_path: Path, make_cfg) -> None:
    sweep = tmp_path / "sweep"
    proc = run_entry(
        "train.py",
        "-m",
        *merged(
            TINY,
            SHORT,
            [
                "logger=default",  # W&B (offline) and metrics.csv
                "trainer=ddp",
                "trainer.accelerator=cpu",
                "trainer.devices=2",
                "seed=0,1",
                f"hydra.sweep.dir={sweep}",
            ],
        ),
        cwd=tmp_path,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert output.count("GLOBAL_RANK: 1, MEMBER: 2/2") == 2  # a second process per job
    # each rank 1 ran its job in the job's folder: no extra job folders
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for num in ("0", "1"):
        folder = sweep / num
        assert json.loads((folder / "status.json").read_text())["status"] == "finished"
        assert (folder / "train.rank1.log").is_file()
        (wandb_dir,) = find_run_dirs(folder / "wandb")  # W&B from rank 0 only
        assert (
            read_run(wandb_dir).run_id
            == json.loads((folder / "status.json").read_text())["wandb_id"]
        )
    job = sweep / "0"  # seed=0

    single = make_cfg(*SHORT, "logger=csv", job="single")
    run(single)
    ddp = step0(pd.read_csv(job / "metrics.csv"))
    one = step0(pd.read_csv(Path(single.paths.output_dir) / "metrics.csv"))
    for split in ("train", "val"):
        for c in range(C):
            key = f"igb/{split}/f/{c}"
            assert ddp[key] == pytest.approx(one[key], abs=1e-7), key
        for key in (f"igb/{split}/f_max", f"{split}/acc", f"{split}/loss"):
            assert ddp[key] == pytest.approx(one[key], rel=1e-5), key
    assert sum(ddp[f"igb/train/f/{c}"] for c in range(C)) == pytest.approx(1.0)


def test_a_rank_runs_this_job_alone_in_its_folder_with_its_own_log(monkeypatch) -> None:
    """Rank 1's command: the entry point the parent runs, the job's overrides only, then its
    folder (quoted: a space, a quote), no ``.hydra`` copy, and its own log file where Hydra
    logs to a file."""
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", SimpleNamespace(name="entry"))
    rank = RankCommand(("seed=1", "norm=pre"), "/out/it's 0", "train", True, "/start")
    command, cwd = rank.command(1)
    assert cwd == "/start"
    assert command == [
        sys.executable,
        "-m",
        "entry",
        "seed=1",
        "norm=pre",
        "hydra.run.dir='/out/it\\'s 0'",
        "hydra.output_subdir=null",
        "hydra.job.name=train",
        "hydra.job_logging.handlers.file.filename='/out/it\\'s 0/train.rank1.log'",
    ]
    quiet = RankCommand(("seed=1",), "/out/0", "train", False, "/start")
    assert quiet.command(1)[0][-1] == "hydra.job.name=train"
