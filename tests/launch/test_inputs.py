"""Inputs that used to escape the one-line promise, built for real and run through the real
entry points: memory out of reach, pre-flight hangs, a user's faulty model, damaged dataset
and weight files, the other command lines. (The one-line cases of every key and override:
``bad_values.yaml``, read by ``test_schema.py``.)
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.dataset_files import write_cifar10, write_mnist
from helpers.entry_points import ROOT, run_entry
from helpers.sizes import TINY
from torch import nn

from igb.data.base import DatasetCorruptedError
from igb.data.vision import CIFAR10DataModule, MNISTDataModule
from igb.errors import ConfigError
from igb.launch.memory_plan import check_job_memory
from igb.launch.model_check import check_run, time_limit
from igb.nn.libraries import read_state_file

CUSTOM = ["model=custom", "norm=native"]


def _one_line_nothing_written(proc: subprocess.CompletedProcess[str], cwd: Path) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert list(cwd.iterdir()) == []
    return lines[0]


# ---------------------------------------------------------------------------- memory


def test_the_memory_plan_counts_parameters_data_and_a_batch() -> None:
    """Linear(10, 5): 55 parameters, with gradients 440 bytes; 100 samples of 10 values:
    4000 bytes; 5 outputs per sample in a batch of 8: 160 bytes. 4600 bytes in all."""
    model = nn.Linear(10, 5, device="meta")
    data = {"num_samples": 100}
    check_job_memory(model, (10,), data, 8, True, "model.width", available=4600)
    with pytest.raises(ConfigError) as exc:
        check_job_memory(model, (10,), data, 8, True, "model.width", available=4599)
    assert str(exc.value).startswith(
        "this job needs at least 4.28e-06 GiB (parameters and gradients 4.1e-07 GiB, dataset "
        "3.73e-06 GiB, activations of a batch of 8 1.49e-07 GiB)"
    )
    assert exc.value.key == "dataset.num_samples"  # the largest part names its key
    check_job_memory(model, (10,), data, 8, False, "model.width", available=4600 - 220)


@pytest.mark.parametrize("path", ["real", "meta"])
def test_activations_are_counted_per_sample_on_either_path(monkeypatch, path: str) -> None:
    """Hand counts: 5 + 5 + 3 values for the MLP; for the conv net 4x8x8 three times
    (conv, norm, ReLU), 4 after pooling and flattening, 2 logits: 778. The small-model path
    (a forward on uninitialized CPU memory) and the meta device's path count the same."""
    from igb.launch import memory_plan

    if path == "meta":
        monkeypatch.setattr(memory_plan, "REAL_FORWARD_BYTES", -1)
    mlp = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 3)).to("meta")
    conv = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
    ).to("meta")  # fmt: skip
    assert memory_plan.activation_values(mlp, (10,)) == 13
    assert memory_plan.activation_values(conv, (3, 8, 8)) == 778
    assert all(p.is_meta for p in conv.parameters())  # the caller's model stays on meta


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "argv", "says"),
    [
        ("train.py", ["model.width=100000000"], "lower model.width"),
        ("ensemble.py", ["dataset.num_samples=10000000000"], "lower dataset.num_samples"),
        ("train.py", [*CUSTOM, "model.cls=helpers.custom_models.Enormous"], "lower model.cls"),
    ],
)
def test_memory_out_of_reach_is_refused_before_anything_is_written(
    tmp_path: Path, script: str, argv: list[str], says: str
) -> None:
    proc = run_entry(script, *argv, cwd=tmp_path, env={"PYTHONPATH": str(ROOT / "tests")})
    line = _one_line_nothing_written(proc, tmp_path)
    assert "this job needs at least" in line and says in line, line


# ---------------------------------------------------------------------------- hangs and faults


def test_a_build_that_does_not_end_meets_its_time_limit() -> None:
    start = time.monotonic()
    with pytest.raises(ConfigError, match="^model.depth: too slow$"):
        with time_limit(0.3, "model.depth", "model.depth: too slow"):
            while True:
                time.sleep(0.01)
    assert time.monotonic() - start < 30  # the limit ended it, not the test's timeout


def test_a_constructor_that_never_returns_is_killed_in_its_child() -> None:
    from helpers.custom_models import NeverReturns

    with pytest.raises(ConfigError) as exc:
        check_run(lambda: NeverReturns(3), (3, 8, 8), 3, "model.cls=x.NeverReturns", seconds=2)
    assert str(exc.value) == "model.cls=x.NeverReturns did not build and run one batch within 2 s"


def test_a_sound_model_passes_the_child_check() -> None:
    from helpers.custom_models import Tiny

    check_run(lambda: Tiny(10), (3, 8, 8), 10, "model.cls=helpers.custom_models.Tiny")


@pytest.mark.slow
def test_a_model_with_nan_logits_is_named_at_the_entry_point(tmp_path: Path) -> None:
    argv = [*CUSTOM, "model.cls=helpers.custom_models.NaNLogits"]
    proc = run_entry("train.py", *argv, cwd=tmp_path, env={"PYTHONPATH": str(ROOT / "tests")})
    line = _one_line_nothing_written(proc, tmp_path)
    assert "NaNLogits returns non-finite logits (NaN or inf) at initialization" in line
    assert "not of optimizer.lr" in line


# ---------------------------------------------------------------------------- data files


def _mnist(root: Path, damage: str) -> MNISTDataModule:
    write_mnist(root, "MNIST")
    raw = root / "MNIST" / "raw"
    images, labels = raw / "train-images-idx3-ubyte", raw / "train-labels-idx1-ubyte"
    if damage == "truncated":
        images.write_bytes(images.read_bytes()[:1000])
    elif damage == "shape":  # a valid IDX file of 27x27 images
        n = int.from_bytes(images.read_bytes()[4:8], "big")
        images.write_bytes(struct.pack(">IIII", 2051, n, 27, 27) + bytes(n * 27 * 27))
    elif damage == "labels":
        data = bytearray(labels.read_bytes())
        data[8 + 3] = 77  # the fourth label: 77 of 10 classes
        labels.write_bytes(bytes(data))
    return MNISTDataModule(data_dir=str(root), standardize=False)


def _cifar(root: Path, damage: str) -> CIFAR10DataModule:
    write_cifar10(root)
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    if damage == "garbage":
        batch.write_bytes(bytes(range(256)) * 12)
    else:
        obj = pickle.loads(batch.read_bytes(), encoding="latin1")
        if damage == "shape":
            obj["data"] = obj["data"][:, :100]
        elif damage == "labels":
            obj["labels"] = [-1] * len(obj["labels"])
        batch.write_bytes(pickle.dumps(obj))
    return CIFAR10DataModule(data_dir=str(root), standardize=False, verify=False)


@pytest.mark.parametrize(
    ("make", "damage", "says"),
    [
        (_mnist, "truncated", "MNIST files cannot be read ("),
        (_mnist, "labels", "MNIST train files hold labels 0..77; expected 0..9"),
        (_cifar, "garbage", "CIFAR10 files cannot be read (UnpicklingError: "),
        (_cifar, "shape", "CIFAR10 files cannot be read (ValueError: all the input array"),
        (
            _mnist,
            "shape",
            "MNIST train files hold inputs (30, 1, 27, 27) and labels (30,); "
            "expected (N, 1, 28, 28) and (N,)",
        ),
        (_cifar, "labels", "CIFAR10 train files hold labels -1..9; expected 0..9"),
    ],
)
def test_a_damaged_dataset_file_is_one_line_at_the_first_read(
    tmp_path: Path, make, damage: str, says: str
) -> None:
    dm = make(tmp_path, damage)
    dm.check_available()  # present: the damage is inside the files
    with pytest.raises(DatasetCorruptedError) as exc:
        dm.setup()
    text = str(exc.value)
    assert "\n" not in text and says in text, text
    assert text.startswith(f"dataset.data_dir={tmp_path}: ")
    assert text.endswith("point dataset.data_dir at a good copy")


@pytest.mark.slow
def test_an_ensemble_on_damaged_files_stops_at_the_pre_flight(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _cifar(data, "garbage")
    before = set(tmp_path.rglob("*"))
    argv = ["dataset=cifar10", f"dataset.data_dir={data}", "dataset.verify=false"]
    proc = run_entry("ensemble.py", *argv, "ensemble.n_inits=4", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert "CIFAR10 files cannot be read" in lines[0]
    assert set(tmp_path.rglob("*")) == before


def test_a_weights_file_that_is_not_one_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError) as exc:
        read_state_file(path)
    assert str(exc.value).startswith(f"model.weights={path} cannot be read as a state dict (")
    assert "\n" not in str(exc.value)
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    assert list(read_state_file(path)) == ["fc.weight"]


# ---------------------------------------------------------------------------- other tools


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["-m", "multirun_analysis", ".", "--tol", "2"],
            "argument --tol: 2 is not a number in (0, 1)",
        ),
        (["-m", "multirun_analysis", "."], "no job folder (with .hydra/) or run found under ."),
        (
            ["-m", "multirun_analysis.dashboard", "--entity", "e", "--group-by", "nope"],
            "nope is not a grouping; allowed: JobType, Group, config.<key>",
        ),
        (["-m", "igb.theory.nngp", "model.depth=-3"], "model.depth=-3 must be"),
        (
            ["-m", "igb.theory.nngp", "model.depth=2", "model.depth=3"],
            "model.depth is given twice (model.depth=2, model.depth=3); give each key once",
        ),
        ([str(ROOT / "bench" / "bench_train.py"), "--nope"], "unrecognized arguments: --nope"),
    ],
)
def test_the_other_command_lines_answer_bad_input_in_one_line(
    tmp_path: Path, argv: list[str], says: str
) -> None:
    """Run from a folder that is not the checkout: ``python -m`` finds conf/ all the same."""
    env = {**os.environ, "IGB_ROOT": str(tmp_path)}
    proc = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    line = _one_line_nothing_written(proc, tmp_path)
    assert says in line, line


def test_a_file_system_without_flock_is_said_in_one_line(tmp_path: Path) -> None:
    """The real ``train.py`` whose ``flock`` answers as Lustre without ``-o flock`` does
    (ENOSYS; :mod:`helpers.no_flock`): one line naming the lock file in the job's folder
    and the way out, no traceback, no status written."""
    folder = tmp_path / "job"
    env = {**os.environ, "IGB_ROOT": str(tmp_path), "WANDB_MODE": "offline",
           "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT / "tests"),
                                                       os.environ.get("PYTHONPATH"))))}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "helpers.no_flock", str(ROOT / "train.py"), *TINY,
         "logger=none", f"hydra.run.dir={folder}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(
        f"error: cannot lock {folder / '.igb.lock'}: its file system does not support flock "
        "(Function not implemented); Lustre and GPFS need the 'flock' mount option"
    ), lines[0]
    assert not (folder / "status.json").exists()
