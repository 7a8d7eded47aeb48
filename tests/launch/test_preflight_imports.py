"""A mistyped key or option is reported before torch and Lightning are imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imported(stderr: str) -> set[str]:
    """Top-level modules in ``python -X importtime``'s report."""
    return {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in stderr.splitlines()
        if line.startswith("import time:")
    }


@pytest.mark.parametrize(
    ("entry", "argv", "says"),
    [
        ("train.py", ["model.dept=3"], "model.dept is not a config key"),
        ("train.py", ["model=mlpp"], "model=mlpp is not an option of 'model'"),
        ("train.py", ["model=mlp,cnn"], "model=mlp,cnn lists several values"),
        ("ensemble.py", ["ensemble.n_init=5"], "ensemble.n_init is not a config key"),
    ],
)
def test_typo_is_reported_without_importing_torch(
    tmp_path: Path, entry: str, argv: list[str], says: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / entry), *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert says in proc.stderr
    imported = _imported(proc.stderr)
    assert "hydra" in imported  # the report above is read right
    assert not imported & {"torch", "lightning", "torchmetrics"}
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_help_lists_the_launchers_and_the_next_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "train.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("train.py: group=option and key=value overrides")
    assert (
        "callbacks: bias_stats, default, grad_norm, model_checkpoint, none, progress" in proc.stdout
    )
    assert "hydra/launcher: basic, local, slurm" in proc.stdout
    assert "python -m multirun_analysis <its folder>" in proc.stdout
    assert "torch" not in _imported(proc.stderr)
