"""Every key's type and range is checked by the pre-flight: one line naming the key, exit 2.

The pre-flight (:func:`igb.launch.preflight.check`) is called as the entry points call it;
one case per class runs the real ``train.py``/``ensemble.py`` to show the exit code and
that nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers.entry_points import run_entry

from igb.launch.preflight import check
from igb.launch.validate import validate
from igb.launch.validate_ensemble import check_memory_plan, check_theory_plan, validate_ensemble

#: entry point -> cases; kept as data beside this file, one case per bad value
BAD_VALUES = yaml.safe_load((Path(__file__).parent / "bad_values.yaml").read_text())
CASES = [
    (entry, case["argv"], case["says"]) for entry, cases in BAD_VALUES.items() for case in cases
]


VALIDATORS = {"train": validate, "ensemble": validate_ensemble}


@pytest.mark.parametrize(("entry", "argv", "expected"), CASES)
def test_a_bad_value_is_one_line_naming_the_key(entry: str, argv: list[str], expected: str) -> None:
    error = check(entry, argv, VALIDATORS[entry])
    assert error is not None and expected in error, error
    assert "\n" not in error


def test_a_gpu_asked_for_where_there_is_none() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    error = check("train", ["trainer.accelerator=gpu"], validate)
    assert (
        error
        == ("trainer.accelerator=gpu but this machine has no CUDA GPU; allowed here: auto, cpu")
        or "trainer.accelerator=gpu but this machine has no CUDA GPU" in error
    )


def test_the_memory_plan_counts_bytes_per_initialization() -> None:
    """10 classes: f, mu, s2 (30) + 4 scalars, float64, twice, + 24 bytes = 568 a seed."""
    check_memory_plan(1000, 10, available=2 * 568 * 1000)  # fits exactly in half
    with pytest.raises(Exception, match="ensemble.n_inits<=1000,"):
        check_memory_plan(1001, 10, available=2 * 568 * 1000)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "argv"),
    [
        ("train.py", ["scheduler.warmup_steps=-3"]),
        ("train.py", ["hydra.run.dir="]),
        ("train.py", ["model.width=8", "model.width=16"]),
        ("train.py", ["trainer.max_epochs=null"]),
        ("train.py", ["logger.wandb.system_metrics=banana"]),
        ("ensemble.py", ["-m", "model.width=8,16", "+model.width=32"]),
        ("ensemble.py", ["ensemble.n_inits=4000000000"]),
        ("ensemble.py", ["ensemble.theory_points=10"]),
    ],
)
def test_the_entry_points_exit_2_and_write_nothing(
    tmp_path: Path, script: str, argv: list[str]
) -> None:
    proc = run_entry(script, *argv, cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_the_theory_plan_counts_its_n_by_n_kernels() -> None:
    """4 float64 N x N matrices: N = 1000 needs 32 MB; a subsample needs its own size's."""
    check_theory_plan(1000, available=2 * 32 * 1000**2)
    with pytest.raises(
        Exception, match=r"use ensemble.theory_points<=1000 or ensemble.theory=false$"
    ):
        check_theory_plan(1001, available=2 * 32 * 1000**2)
    check_theory_plan(20000, available=2 * 32 * 1000**2, max_points=1000)  # walks 1000
    big = ["dataset.num_samples=2000000", "ensemble.eval_samples=null"]
    assert check("ensemble", big, validate_ensemble) is None  # the default 2000 points fit
    error = check("ensemble", [*big, "ensemble.theory_points=null"], validate_ensemble)
    assert error is not None and "\n" not in error
    assert error.startswith(
        "ensemble.theory=true walking 1600000 of the 1600000 evaluation points "
        "(ensemble.theory_points=null) needs about 7.63e+04 GiB for its kernels"
    ), error
    error = check("ensemble", ["ensemble.theory_points=50"], validate_ensemble)
    assert error == (
        "ensemble.theory_points=50 must be an integer >= 100, all or null (every evaluation point)"
    )


@pytest.mark.slow
def test_an_ensemble_without_the_theory(tmp_path: Path) -> None:
    folder = tmp_path / "ens"
    argv = ["ensemble.theory=false", "ensemble.n_inits=8", "ensemble.eval_samples=64"]
    argv += ["dataset.num_samples=240", "ensemble.progress=false", f"hydra.run.dir={folder}"]
    proc = run_entry("ensemble.py", *argv, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["gamma_theory"] is None
    assert summary["gamma_theory_reason"] == "not computed (ensemble.theory=false)"
