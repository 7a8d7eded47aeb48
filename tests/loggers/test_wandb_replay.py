"""A job continued in a second offline W&B attempt (two ``offline-run-*`` folders of one id)
ends, through ``multirun_analysis.wandb_replay``, as one offline run holding its whole
metrics.csv; read back from disk with the project's reader."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from igb.launch.train_job import run
from multirun_analysis.wandb_files import find_run_dirs, read_run
from multirun_analysis.wandb_replay import REPLAY_DIR, main


def test_two_offline_attempts_replay_into_one_complete_run(make_cfg, capsys) -> None:
    for epochs, extra in ((1, ()), (2, ("skip_finished=false",))):
        cfg = make_cfg("logger=default", f"trainer.max_epochs={epochs}", *extra)
        run(cfg)
    job = Path(cfg.paths.output_dir)
    wandb_id = json.loads((job / "status.json").read_text())["wandb_id"]
    attempts = [read_run(d) for d in find_run_dirs(job / "wandb")]
    assert len(attempts) == 2 and {a.run_id for a in attempts} == {wandb_id}

    assert main([str(job.parent)]) == 0
    printed = capsys.readouterr().out.splitlines()
    (replayed,) = find_run_dirs(job / REPLAY_DIR)
    assert printed[-1] == f"wandb sync {replayed}"

    one = read_run(replayed)
    assert one.run_id == wandb_id and one.finished and one.exit_code == 0
    assert (one.name, one.job_type, one.tags) == (
        attempts[0].name, attempts[0].job_type, attempts[0].tags,
    )  # fmt: skip
    assert one.config["model"]["depth"] == cfg.model.depth
    csv = pd.read_csv(job / "metrics.csv")
    steps = [int(r["trainer/global_step"]) for r in one.history]
    assert steps == csv["step"].tolist()  # every step once, in order: one history
    stats = {int(r["trainer/global_step"]): r for r in one.history if "igb/val/f_max" in r}
    want = csv[csv["igb/val/f_max"].notna()].set_index("step")["igb/val/f_max"]
    assert {s: stats[s]["igb/val/f_max"] for s in want.index} == want.to_dict()
    assert one.summary["test/acc"] == attempts[-1].summary["test/acc"]
