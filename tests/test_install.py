"""A non-editable install (``pip install .``) runs the checkout's entry points.

The package is installed into a temporary target, away from ``src/``, and
``python train.py`` / ``python ensemble.py`` of the checkout run with only that target on
``PYTHONPATH``: the pre-flight must compose from the ``conf/`` next to the entry script,
as ``@hydra.main`` does, not from a path relative to the installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.entry_points import run_entry
from helpers.sizes import TINY, merged

ROOT = Path(__file__).resolve().parents[1]
#: what ``pip install .`` reads (copied, so the build leaves nothing in the checkout)
SOURCES = ("pyproject.toml", "README.md", "src", "multirun_analysis")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("install")
    source, target = base / "source", base / "target"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (target / "igb" / "launch" / "preflight.py").is_file()
    assert (target / "igb" / "data" / "digits.csv.gz").is_file()  # package data: the digits
    assert not (target / "igb" / "conf").exists()
    return target


#: the README's check of a torch/torchvision pair, as its line runs it
PAIR_CHECK = (
    "import torch, torchvision; from torchvision.ops import nms; "
    "print(torch.__version__, torchvision.__version__, nms(torch.zeros(1, 4), torch.zeros(1), 0.5))"
)


def test_the_readmes_pair_check_passes_here() -> None:
    """The README's one-line check runs as printed and names both versions (an unpaired
    torchvision fails it: its compiled nms operator is missing)."""
    readme = (ROOT / "README.md").read_text()
    assert f'.venv/bin/python -c "{PAIR_CHECK}"' in readme
    proc = subprocess.run(
        [sys.executable, "-c", PAIR_CHECK], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import torch
    import torchvision

    assert proc.stdout.split() == [torch.__version__, torchvision.__version__, "tensor([0])"]


def run_installed(installed: Path, tmp_path: Path, script: str, *argv: str):
    """The checkout's entry point with only the installed package importable."""
    return run_entry(script, *argv, cwd=tmp_path, env={"PYTHONPATH": str(installed)}, timeout=300)


def test_the_entry_points_import_the_installed_package(installed: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run(
        [sys.executable, "-c", "import igb.launch.preflight as p; print(p.__file__, p.CONF_DIR)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    module, conf = proc.stdout.split()
    assert Path(module).is_relative_to(installed)
    # not run from the checkout: no conf/ to find next to a script, nor in the cwd
    assert not (Path(conf) / "train.yaml").exists()


def test_train_and_ensemble_run_from_a_non_editable_install(
    installed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "train-job"
    proc = run_installed(
        installed, tmp_path, "train.py",
        *merged(TINY, ["trainer.max_epochs=1", "logger=csv", f"hydra.run.dir={out}"]),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "status.json").read_text())["status"] == "finished"
    assert (out / "metrics.csv").is_file()

    out = tmp_path / "ensemble-job"
    proc = run_installed(
        installed, tmp_path, "ensemble.py", "model.depth=2", "model.width=8",
        "dataset.num_samples=100", "dataset.shape=[6]", "ensemble.n_inits=8",
        "ensemble.eval_samples=null", "ensemble.batch_size=40", "ensemble.progress=false",
        "logger=none",
        f"hydra.run.dir={out}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["n_inits"] == 8


def test_bad_input_from_an_install_is_one_line(installed: Path, tmp_path: Path) -> None:
    proc = run_installed(installed, tmp_path, "train.py", "norm=sideways")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: norm=sideways is not an option of 'norm'; allowed: native, none, post, pre"
    ], proc.stderr
    assert not any(tmp_path.iterdir())
