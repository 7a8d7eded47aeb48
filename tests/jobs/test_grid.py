"""igb.compat.split_grid and igb.jobs.grid: the one grid expansion and the one matching of
jobs to folders, used by the end-of-multirun summary and by the analysis."""

from __future__ import annotations

from pathlib import Path

import yaml

from igb.compat import split_grid
from igb.jobs.grid import grid_key, match_grid
from igb.launch.hydra_callbacks import collect_statuses
from multirun_analysis.grid import missing_jobs


def _folder(sweep: Path, name: str, overrides: list[str]) -> Path:
    (sweep / name / ".hydra").mkdir(parents=True)
    (sweep / name / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return sweep / name


def test_split_grid_orders_jobs_as_the_basic_sweeper() -> None:
    jobs = split_grid({"seed": "0,1"}, ["norm=pre,post"])
    assert jobs == [
        ["seed=0", "norm=pre"],
        ["seed=0", "norm=post"],
        ["seed=1", "norm=pre"],
        ["seed=1", "norm=post"],
    ]
    # the command line wins over the config's params on a key given by both
    assert split_grid({"seed": "0,1"}, ["seed=5"]) == [["seed=5"]]


def test_grid_key_ignores_order_spaces_and_quotes() -> None:
    assert grid_key(["b=2", "a='x y'"]) == grid_key(["a=xy", "b=2"])
    assert grid_key(["a=[1, 2]"]) == grid_key(['a="[1,2]"'])
    assert grid_key(["a=1"]) != grid_key(["a=2"])


def test_match_grid_pairs_folders_and_lists_jobs_without_one(tmp_path: Path) -> None:
    grid = [["norm=pre", "seed=0"], ["norm=post", "seed=0"], ["norm=pre", "seed=0"]]
    a = _folder(tmp_path, "0", ["seed=0", "norm=pre"])
    b = _folder(tmp_path, "1", ["norm=other"])  # an earlier launch's job
    matched, missing = match_grid(grid, [a, b])
    assert matched == [a]
    # the job given twice needs two folders: one is missing, and so is norm=post
    assert missing == [["norm=post", "seed=0"], ["norm=pre", "seed=0"]]


def test_the_summary_and_the_analysis_agree_on_missing_jobs(tmp_path: Path) -> None:
    grid = split_grid({}, ["seed=0,1,2"])
    _folder(tmp_path, "0", ["seed=0"])
    _folder(tmp_path, "2", ["seed=2"])
    statuses = collect_statuses(tmp_path, grid)
    assert [k for k in statuses if k.startswith("<not started")] == ["<not started: seed=1>"]
    multirun = {"hydra": {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper."
                                      "BasicSweeper", "params": {}},
                          "overrides": {"task": ["seed=0,1,2"]}}}  # fmt: skip
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    assert missing_jobs(tmp_path, [tmp_path / "0", tmp_path / "2"]) == [["seed=1"]]


def test_summary_lists_jobs_in_number_order(tmp_path: Path) -> None:
    for n in (0, 1, 2, 10, 11):
        _folder(tmp_path, str(n), [f"seed={n}"])
    assert list(collect_statuses(tmp_path)) == ["0", "1", "2", "10", "11"]


def test_end_report_names_the_wandb_group_only_when_runs_log_to_wandb() -> None:
    from omegaconf import OmegaConf

    from igb.launch.hydra_callbacks import wandb_group

    hydra = {"sweep": {"dir": "/x/multirun/2026-12-06_00-00-00"},
             "runtime": {"choices": {"experiment": "placement_mlp"}}}  # fmt: skip
    wandb = {"wandb": {"_target_": "igb.logging.loggers.wandb_logger"}}
    cfg = OmegaConf.create({"hydra": hydra, "logger": wandb})
    assert wandb_group(cfg) == "placement_mlp-2026-12-06_00-00-00"
    csv = {"csv": {"_target_": "igb.logging.csv_logger.CSVLogger"}}
    assert wandb_group(OmegaConf.create({"hydra": hydra, "logger": csv})) is None
