"""A user's own config folder (``--config-dir``) and the git-ignored ``conf/local/`` group:
the pre-flight composes with them as Hydra does, and the real run uses them."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import yaml
from conftest import ROOT
from helpers.entry_points import run_entry
from helpers.sizes import TINY

from igb.launch.preflight import check, compose_job
from igb.launch.validate import validate

#: a logger option of the user's own: igb's CSV logger writing into <job>/mine/
MINE = """\
mine:
  _target_: igb.logging.csv_logger.ResumableCSVLogger
  save_dir: ${paths.output_dir}/mine
  name: ""
  version: ""
"""


def _user_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "my-conf"
    (folder / "logger").mkdir(parents=True)
    (folder / "logger" / "mine.yaml").write_text(MINE)
    return folder


def test_the_preflight_composes_with_the_users_config_dir(tmp_path: Path) -> None:
    folder = _user_dir(tmp_path)
    assert "logger=mine is not an option" in check("train", ["logger=mine"], validate)
    assert check("train", ["--config-dir", str(folder), "logger=mine"], validate) is None
    typo = check("train", [f"--config-dir={folder}", "logger=mien"], validate)
    assert typo.startswith("logger=mien is not an option of 'logger'; allowed: ")
    assert "mine" in typo.split("allowed: ")[1].split(", ")
    missing = check("train", ["--config-dir", str(tmp_path / "nope"), "seed=1"], validate)
    assert missing == f"--config-dir {tmp_path / 'nope'}: no such folder"


def test_a_run_logs_with_a_logger_from_the_users_config_dir(tmp_path: Path) -> None:
    folder = _user_dir(tmp_path)
    out = tmp_path / "job"
    argv = ["--config-dir", str(folder), *TINY, "logger=mine", f"hydra.run.dir={out}"]
    result = run_entry("train.py", *argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = (out / "mine" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith(("epoch", "igb/", "step", "train", "val")) and len(rows) > 2
    assert not (out / "metrics.csv").exists()  # the default CSV logger is not in use


def test_local_default_is_applied_to_every_run_and_feeds_the_slurm_launcher(
    tmp_path: Path,
) -> None:
    """``conf/local/default.yaml`` (in a copy of the tree: the checkout's stays the
    user's) sets keys of every run; its ``cluster`` block becomes the SLURM launcher's
    values, which a command-line override still beats; ``cluster`` is not identity."""
    tree = tmp_path / "igb"
    shutil.copytree(ROOT / "conf", tree / "conf")
    shutil.copy(ROOT / "train.py", tree / "train.py")
    local = textwrap.dedent(
        """\
        # @package _global_
        cluster:
          partition: long
          setup: ["echo from-local"]
        trainer:
          max_epochs: 1
        """
    )
    (tree / "conf" / "local" / "default.yaml").write_text(local)  # replaces one copied
    out = tmp_path / "job"
    tiny = [o for o in TINY if not o.startswith("trainer.max_epochs")]
    argv = [*tiny, "logger=csv", f"hydra.run.dir={out}"]
    result = run_entry("train.py", *argv, cwd=tmp_path, entry_dir=tree)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["trainer"]["max_epochs"] == 1 and saved["cluster"]["partition"] == "long"

    slurm = compose_job("train", ["local=example", "hydra/launcher=slurm"])
    example = yaml.safe_load((ROOT / "conf" / "local" / "example.yaml").read_text())["cluster"]
    assert slurm.hydra.launcher.partition == example["partition"]
    assert list(slurm.hydra.launcher.setup) == example["setup"]
    beaten = compose_job(
        "train", ["local=example", "hydra/launcher=slurm", "hydra.launcher.partition=debug"]
    )
    assert beaten.hydra.launcher.partition == "debug"
    assert compose_job("train", ["hydra/launcher=slurm"]).hydra.launcher.partition is None
