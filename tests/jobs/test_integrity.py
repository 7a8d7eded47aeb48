"""A job folder whose identity cannot be established is never resumed, skipped or relabelled.

One finished run is copied, a record damaged or removed in each copy, and the real
``train.py`` relaunched into it: the launch is refused (one line naming the file and
``restart=true``, exit 2, nothing written) unless the remaining records identify the
launched configuration. A copied folder (another ``trainer.default_root_dir``) is the same
job. ``multirun_analysis`` lists a damaged folder as ``damaged``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.entry_points import run_entry
from helpers.sizes import TINY, merged

from igb.compat import load_checkpoint
from igb.jobs.integrity import CHECKPOINT_KEY, folder_damage
from igb.jobs.status import JobFolder

ARGS = merged(TINY, ["trainer.max_epochs=1", "logger=csv"])


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("integrity")
    proc = run_entry("train.py", *ARGS, f"hydra.run.dir={root / 'run'}", cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "run"


def _copy(finished: Path, name: str) -> Path:
    target = finished.parent / name
    shutil.copytree(finished, target)
    return target


def _relaunch(folder: Path, *extra: str):
    return run_entry("train.py", *ARGS, *extra, f"hydra.run.dir={folder}", cwd=folder.parent)


def test_the_config_hash_is_in_status_and_checkpoint(finished: Path) -> None:
    status = json.loads((finished / "status.json").read_text())
    ckpt = load_checkpoint(finished / "checkpoints" / "last.ckpt")
    assert len(status["config_hash"]) == 16
    assert ckpt[CHECKPOINT_KEY] == status["config_hash"]
    assert folder_damage(finished) is None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "extra", "reason"),
    [("{{{", (), "not JSON"), ("[]", ("seed=5",), "not a JSON object but list")],
)
def test_a_damaged_status_is_refused_then_restart_moves_it_aside(
    finished: Path, damage: str, extra: tuple[str, ...], reason: str
) -> None:
    folder = _copy(finished, f"status-{len(damage)}")
    (folder / "status.json").write_text(damage)
    proc = _relaunch(folder, *extra)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and f"{folder}/status.json is damaged ({reason}" in lines[0]
    assert "restart=true" in lines[0]
    assert (folder / "status.json").read_text() == damage  # nothing written
    if extra:
        return
    # the way out: restart=true moves the results aside and runs the job again
    proc = _relaunch(folder, "restart=true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((folder / "status.json").read_text())["status"] == "finished"
    (moved,) = (folder / ".discarded").iterdir()
    assert (moved / "status.json").read_text() == damage


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"status": "finished", "attempt": "x"}', "'attempt' is 'x', not an integer"),
        ('{"status": "done"}', "'status' is 'done', not one of running"),
        ('{"status": "failed", "attempt": 0}', "'attempt' is 0, not a count >= 1"),
        ('{"status": "failed", "previous": []}', "'previous' is [], not an object"),
        ('"finished"', "not a JSON object but str"),
    ],
)
def test_every_wrong_shape_of_status_is_damage(tmp_path: Path, text: str, reason: str) -> None:
    """Each is the same one line as above in a relaunch (shown there for two of them)."""
    (tmp_path / "status.json").write_text(text)
    job = JobFolder(tmp_path)
    assert job.damage() == reason if "one of" not in reason else reason in job.damage()
    assert job.read() == {} and job.status is None
    assert folder_damage(tmp_path).startswith(f"{tmp_path}/status.json is damaged ({reason}")


@pytest.mark.slow
def test_a_missing_config_is_identified_by_status_and_checkpoint(finished: Path) -> None:
    folder = _copy(finished, "no-config")
    (folder / "config.yaml").unlink()
    saved_overrides = (folder / ".hydra" / "overrides.yaml").read_text()
    proc = _relaunch(folder, "seed=5")  # status.json's hash is seed 0's
    assert proc.returncode == 2
    assert "config.yaml is missing and" in proc.stderr and "status.json records" in proc.stderr
    assert (folder / ".hydra" / "overrides.yaml").read_text() == saved_overrides
    assert not (folder / "config.yaml").exists()
    # without status.json too, the checkpoint's hash still names seed 0
    (folder / "status.json").unlink()
    proc = _relaunch(folder, "seed=5")
    assert proc.returncode == 2 and "last.ckpt records another configuration" in proc.stderr
    # the same command: identified by the checkpoint; config.yaml is written again
    proc = _relaunch(folder)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "config.yaml was missing" in proc.stderr + proc.stdout
    assert (folder / "config.yaml").is_file() and folder_damage(folder) is None


@pytest.mark.slow
def test_a_missing_status_leaves_config_yaml_as_the_identity(finished: Path) -> None:
    """A job that died before its first status and checkpoint: config.yaml alone names it."""
    folder = _copy(finished, "no-status")
    (folder / "status.json").unlink()
    shutil.rmtree(folder / "checkpoints")
    saved = (folder / "config.yaml").read_text()
    proc = _relaunch(folder, "seed=5")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "holds a job of another configuration (no status.json; seed" in proc.stderr
    assert (folder / "config.yaml").read_text() == saved and not (folder / "status.json").exists()


@pytest.mark.slow
def test_records_that_disagree_are_refused_and_listed_damaged(finished: Path) -> None:
    folder = _copy(finished, "disagree")
    status = json.loads((folder / "status.json").read_text())
    status["config_hash"] = "0123456789abcdef"
    (folder / "status.json").write_text(json.dumps(status))
    proc = _relaunch(folder)
    assert proc.returncode == 2 and "name different configurations" in proc.stderr
    from multirun_analysis.collect import read_job

    row, _, _ = read_job(folder)
    assert row["status"] == "damaged" and "different configurations" in row["error"]


@pytest.mark.slow
def test_a_moved_folder_is_the_same_job(finished: Path) -> None:
    """``trainer.default_root_dir`` follows the folder: a copy relaunches (skips here)."""
    folder = _copy(finished, "moved")
    proc = _relaunch(folder)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "already holds a finished run; skipping" in proc.stderr + proc.stdout


def test_keys_added_later_keep_an_older_folders_hash(make_cfg) -> None:
    """The hash an older igb recorded (its comparable keys had no init-scale or unit-pool
    keys) is the hash of a launch that leaves those keys at their defaults, so an older
    folder relaunches as the same job; a key moved off its default is another job."""
    import hashlib

    from igb.jobs.identity import HASHED_ONLY_OFF_DEFAULT, RULES
    from igb.launch.job_spec import comparable, config_hash

    launched = make_cfg()
    older = {
        k: v
        for k, v in comparable(launched).items()
        if k not in RULES.length and k not in HASHED_ONLY_OFF_DEFAULT
    }
    recorded = hashlib.sha256(json.dumps(older, sort_keys=True, default=str).encode())
    assert config_hash(launched) == recorded.hexdigest()[:16]
    assert config_hash(make_cfg("model.bias_var=0.05")) != config_hash(launched)
