"""Bad input: one clear line naming the key and the allowed values, non-zero exit,
and no job folder left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from igb.launch.preflight import check, expand_jobs
from igb.launch.validate import validate

ROOT = Path(__file__).resolve().parents[2]


MODEL_OPTIONS = "cnn, custom, mlp, mlp_mixer, resnet, resnet9, swin, timm, torchvision, vit"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["norm=sideways"], ["norm=sideways", "allowed: native, none, post, pre"]),
        (["model=foo"], ["model=foo", f"allowed: {MODEL_OPTIONS}"]),
        (["-m", "model=mlp,foo"], ["model=foo", f"allowed: {MODEL_OPTIONS}"]),
        (["model.widht=10"], ["model.widht", "keys of 'model'", "width"]),
        (["model.width=0"], ["model.width=0", "positive integer"]),
        (["model.depth=-3"], ["model.depth=-3", "positive integer"]),
        (["norm.kind=sideways"], ["norm.kind", "allowed: batch, layer, rms, group, instance"]),
        (["norm=post", "norm.kind=group", "model.width=30"], ["norm.groups=8", "30"]),
        (["model=mlp", "norm.kind=instance"], ["norm.kind=instance", "allowed there"]),
        (["dataset.batch_size=1"], ["dataset.batch_size=1", "BatchNorm"]),
        (
            ["dataset=cifar10", "dataset.data_dir=/nonexistent/igb-data"],
            ["dataset.data_dir", "/nonexistent/igb-data", "download=true"],
        ),
        (["norm=none,pre"], ["norm=none,pre lists several values", "-m"]),
        (["norm=pre", "-m", "seed=0,1"], ["after a flag: seed=0,1", "-m (--multirun)"]),
        (["checkpoint_every_s=-1"], ["checkpoint_every_s=-1", ">= 0"]),
        (["init_filter.mode=sometimes"], ["init_filter.mode", "none, high, low"]),
        (["init_filter.mode=high", "init_filter.threshold=2"], ["init_filter.threshold=2"]),
        (["model=vit", "model.mlp_norm=inside"], ["model.mlp_norm", "before, after"]),
        (["model=swin", "norm.kind=batch"], ["model=swin", "norm.kind=layer"]),
        (["dataset.means=opposite"], ["dataset.means", "random, antipodal"]),
        (
            ["+callbacks.model_checkpoint.save_last=true"],
            ["callbacks.model_checkpoint.save_last", "last.ckpt is igb's"],
        ),
    ],
)
def test_bad_input_gives_one_line_naming_the_key(argv: list[str], expected: list[str]) -> None:
    error = check("train", argv, validate)
    assert error is not None
    assert "\n" not in error
    for part in expected:
        assert part in error, (part, error)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["norm=post", "model=cnn", "-m"],
        ["-m", "model=mlp,cnn,resnet,vit", "norm=none,pre,post"],
        ["norm=none", "norm.kind=instance"],  # kind is ignored without a norm
        ["dataset=digits", "model=vit", "model.patch_size=2", "norm.kind=layer"],
        ["-m", "model.width=8,16"],  # a grid is one key, given once
        ["trainer.max_epochs=null", "+trainer.max_steps=5"],  # the steps end the run
        ["+logger.wandb.notes=note"],  # an argument of wandb.init
    ],
)
def test_good_input_passes(argv: list[str]) -> None:
    assert check("train", argv, validate) is None


def test_grid_expansion_matches_basic_sweeper() -> None:
    jobs = expand_jobs("train", ["model=mlp,cnn", "norm=none,pre,post", "seed=1"], True)
    assert len(jobs) == 6
    assert all("seed=1" in job for job in jobs)
    assert {tuple(sorted(j)) for j in jobs} == {
        tuple(sorted([f"model={m}", f"norm={n}", "seed=1"]))
        for m in ("mlp", "cnn")
        for n in ("none", "pre", "post")
    }


@pytest.mark.parametrize("argv", [["norm=sideways"], ["-m", "model.width=0,8"], ["model.widht=3"]])
def test_entry_point_exits_nonzero_with_one_line_and_no_folder(
    tmp_path: Path, argv: list[str]
) -> None:
    env = {**os.environ, "IGB_ROOT": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not (tmp_path / "outputs").exists()
    assert list(tmp_path.iterdir()) == []
