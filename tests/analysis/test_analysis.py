"""multirun_analysis end to end: real Hydra multiruns -> tables, figures, report.

The grids run through the real entry points (``train.py -m``, ``ensemble.py -m``) in
subprocesses; the analysis runs as ``python -m multirun_analysis``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.sizes import TINY, merged

from igb.launch.preflight import check
from igb.launch.validate import validate
from multirun_analysis.__main__ import main as analysis_main
from multirun_analysis.collect import collect
from multirun_analysis.figures import common
from multirun_analysis.figures.dynamics import fig_dynamics_f_max
from multirun_analysis.grid import expected_jobs

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAIN_FIGURES = {
    "f_max_step0.png",
    "dynamics_f_max.png",
    "dynamics_acc_rank.png",
    "time_to_neutrality.png",
    "class_speed.png",
}
ENSEMBLE_FIGURES = {"f_histograms.png", "gamma_vs_depth.png", "gamma_compare.png"}


def _env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "IGB_ROOT": str(tmp),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "OMP_NUM_THREADS": "1",
    }


def _run(tmp: Path, *argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, *argv],
        cwd=tmp,
        env=_env(tmp),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _analyse(tmp: Path, source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """The real command line, in a subprocess."""
    return _run(tmp, "-m", "multirun_analysis", str(source), "--out", str(out), *extra)


def _analyse_here(source: Path, out: Path, capsys: pytest.CaptureFixture, *extra: str) -> str:
    """The same entry point in this process (no second interpreter start); its stdout."""
    assert analysis_main([str(source), "--out", str(out), *extra]) == 0
    return capsys.readouterr().out


def _assert_png(path: Path) -> None:
    assert path.is_file(), path
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 2000, path
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0.01  # not a blank canvas


def _sweep(factory: pytest.TempPathFactory, entry: str, *overrides: str) -> Path:
    """A real ``python <entry> -m <overrides>`` multirun in a fresh folder; its sweep dir."""
    tmp = factory.mktemp(Path(entry).stem)
    sweep = tmp / "sweep"
    _run(tmp, str(ROOT / entry), "-m", *overrides, f"hydra.sweep.dir={sweep}")
    return sweep


@pytest.fixture(scope="module")
def train_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 placements x 2 seeds on blobs, 2 epochs, CSV + offline W&B, log-spaced steps."""
    overrides = ["norm=pre,post", "seed=0,1", "logger=default", "callbacks.bias_stats.log_steps=4"]
    return _sweep(tmp_path_factory, "train.py", *merged(TINY, overrides))


@pytest.mark.slow
def test_tiny_grid_tables_figures_report(train_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    proc = _analyse(tmp_path, train_sweep, out)
    assert "4 jobs, 4 finished" in proc.stdout

    jobs = pd.read_csv(out / "jobs.csv")
    assert len(jobs) == 4
    for col in (
        "model",
        "norm_placement",
        "norm_kind",
        "norm",
        "activation",
        "depth",
        "width",
        "dataset",
        "num_classes",
        "optimizer",
        "lr",
        "epochs",
        "seed",
        "status",
        "config",
    ):
        assert col in jobs.columns, col
    assert set(jobs["status"]) == {"finished"}
    assert sorted(zip(jobs["norm_placement"], jobs["seed"])) == [
        ("post", 0),
        ("post", 1),
        ("pre", 0),
        ("pre", 1),
    ]
    assert set(jobs["norm"]) == {"batch-pre", "batch-post"}
    assert set(jobs["model"]) == {"mlp"} and set(jobs["depth"]) == {2}
    assert set(jobs["num_classes"]) == {4}
    # each row's choices are the job's own resolved config
    for row in jobs.itertuples():
        cfg = yaml.safe_load((Path(row.job_dir) / "config.yaml").read_text())
        assert (row.norm_placement, row.seed) == (cfg["norm"]["placement"], cfg["seed"])
    assert jobs["train_f_max_step0"].between(0.25, 1).all()

    series = pd.read_parquet(out / "series.parquet")
    assert set(series["job_dir"]) == set(jobs["job_dir"])
    assert (series.groupby("job_dir")["step"].min() == 0).all()
    assert "igb/val/f_max" in series and "val/acc_rank/1" in series

    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert figures == TRAIN_FIGURES
    for name in figures:
        _assert_png(out / "figures" / name)

    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for config in ("batch-pre", "batch-post"):
        assert config in md and config in html
    for name in figures:
        assert f"figures/{name}" in md
    assert html.count("data:image/png;base64,") == len(figures)
    assert "All 4 jobs finished" in md
    assert "Set by the grid: `norm` = pre, post; `seed` = 0, 1." in md
    assert "Differ between jobs" not in md  # nothing else changes with norm and seed
    assert "inits.csv" not in md  # a training grid has no initialization table


@pytest.mark.slow
def test_weight_overlap_panel_one_curve_per_placement(
    train_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dynamics figure's weight-overlap panel: one curve per placement, one point per
    logged step, each the mean over seeds of train/weight_overlap in the jobs' metrics.csv."""
    drawn: dict[str, plt.Figure] = {}
    monkeypatch.setattr(common, "save", lambda fig, path: drawn.setdefault(path.name, fig) and path)
    col = collect(train_sweep)
    assert fig_dynamics_f_max(col, tmp_path)
    panel = drawn["dynamics_f_max.png"].axes[2]
    assert panel.get_ylabel().startswith("weight overlap")
    expected = {}
    for job in sorted(train_sweep.glob("[0-9]*")):
        cfg = yaml.safe_load((job / "config.yaml").read_text())
        m = pd.read_csv(job / "metrics.csv")[["step", "train/weight_overlap"]].dropna()
        expected.setdefault(f"batch-{cfg['norm']['placement']}", []).append(m)
    curves = {line.get_label(): line for line in panel.lines}
    assert set(curves) == set(expected) == {"batch-pre", "batch-post"}
    for label, frames in expected.items():
        mean = pd.concat(frames).groupby("step")["train/weight_overlap"].mean()
        assert len(mean) > 3  # step 0, the log-spaced steps, the epoch ends
        np.testing.assert_allclose(curves[label].get_xdata(), mean.index + 1)
        np.testing.assert_allclose(curves[label].get_ydata(), mean.to_numpy(), rtol=1e-6)
        assert curves[label].get_ydata()[0] == pytest.approx(1.0)  # step 0: w0 itself


@pytest.mark.slow
def test_failed_and_missing_jobs_are_listed(
    train_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(train_sweep, sweep)
    # job 1 failed; job 3 never started (its folder is gone)
    status = json.loads((sweep / "1" / "status.json").read_text())
    status.update(status="failed", error="RuntimeError: boom")
    (sweep / "1" / "status.json").write_text(json.dumps(status))
    shutil.rmtree(sweep / "3")
    assert len(expected_jobs(sweep)) == 4

    col = collect(sweep)
    assert len(col.jobs) == 4
    by_status = col.jobs.set_index("status")
    assert set(col.jobs["status"]) == {"finished", "failed", "not_started"}
    assert by_status.loc["failed", "error"] == "RuntimeError: boom"
    missing = col.jobs[col.jobs["status"] == "not_started"].iloc[0]
    assert missing["norm_placement"] == "post" and missing["seed"] == 1

    out = tmp_path / "analysis"
    stdout = _analyse_here(sweep, out, capsys)
    assert "failed" in stdout and "RuntimeError: boom" in stdout
    assert "not_started" in stdout
    md = (out / "report.md").read_text()
    assert "2 of 4 jobs did not finish" in md and "RuntimeError: boom" in md
    jobs = pd.read_csv(out / "jobs.csv")
    assert len(jobs) == 4 and (jobs["status"] == "failed").sum() == 1
    # the figures use the finished jobs only
    assert {p.name for p in (out / "figures").glob("*.png")} == TRAIN_FIGURES


@pytest.mark.slow
def test_offline_wandb_runs_give_the_same_table(
    train_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "from_wandb"
    _analyse_here(train_sweep, out, capsys, "--wandb")
    from_wandb = pd.read_csv(out / "jobs.csv").sort_values(["norm", "seed"])
    from_csv = collect(train_sweep).jobs.sort_values(["norm", "seed"])
    assert len(from_wandb) == 4 and set(from_wandb["status"]) == {"finished"}
    for col in ("norm", "seed", "model", "depth"):
        assert list(from_wandb[col]) == list(from_csv[col])
    for col in ("train_f_max_step0", "val_acc_final", "val_time_to_neutral"):
        assert from_wandb[col].to_numpy() == pytest.approx(from_csv[col].to_numpy(), nan_ok=True)
    # the splits' class shares come from the W&B run config as from split_shares.json
    assert set(from_wandb["val_neutral_reference"]) == {"split shares"}
    assert set(from_csv["val_neutral_reference"]) == {"split shares"}
    assert {p.name for p in (out / "figures").glob("*.png")} == TRAIN_FIGURES


@pytest.fixture(scope="module")
def ensemble_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 placements x 2 depths of 24-initialization ensembles, offline W&B."""
    return _sweep(
        tmp_path_factory,
        "ensemble.py",
        "norm=none,post",
        "model.depth=1,3",
        "model.width=16",
        "dataset.shape=[16]",
        "dataset.num_samples=300",
        "dataset.num_classes=4",
        "ensemble.n_inits=24",
        "ensemble.eval_samples=200",
        "ensemble.batch_size=100",
        "ensemble.n_boot=50",
        "ensemble.progress=false",
        "logger=wandb",
    )


@pytest.mark.slow
def test_ensemble_grid_histograms_and_gamma(
    ensemble_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sweep = ensemble_sweep
    out = tmp_path / "analysis"
    _analyse_here(sweep, out, capsys)
    jobs = pd.read_csv(out / "jobs.csv")
    assert len(jobs) == 4 and set(jobs["kind"]) == {"ensemble"}
    assert set(jobs["norm"]) == {"none", "batch-post"} and set(jobs["depth"]) == {1, 3}
    assert {"gamma", "gamma_ci_lo", "gamma_ci_hi", "regime", "n_inits"} <= set(jobs.columns)
    post = jobs[jobs["norm"] == "batch-post"]
    assert (post["regime"] == "neutral").all()
    inits = pd.read_csv(out / "inits.csv")
    assert len(inits) == 4 * 24 and "f_max" in inits
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert figures == ENSEMBLE_FIGURES
    for name in figures:
        _assert_png(out / "figures" / name)
    md = (out / "report.md").read_text()
    assert "none" in md and "batch-post" in md and "neutral" in md

    # the same ensembles read back from their offline W&B runs
    out_wandb = tmp_path / "from_wandb"
    _analyse_here(sweep, out_wandb, capsys, "--wandb")
    from_wandb = pd.read_csv(out_wandb / "jobs.csv").sort_values(["norm", "depth"])
    jobs = jobs.sort_values(["norm", "depth"])
    assert list(from_wandb["kind"]) == ["ensemble"] * 4
    assert from_wandb["gamma"].to_numpy() == pytest.approx(jobs["gamma"].to_numpy())
    assert len(pd.read_csv(out_wandb / "inits.csv")) == 4 * 24
    assert {p.name for p in (out_wandb / "figures").glob("*.png")} == ENSEMBLE_FIGURES


@pytest.mark.slow
def test_train_jobs_and_ensembles_in_one_folder(
    train_sweep: Path, ensemble_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A folder holding both kinds: each kind is labelled by what varies within it, the
    figure files keep short fixed names, and ``--out`` naming a file is one line, exit 2."""
    mixed = tmp_path / "mixed"
    shutil.copytree(train_sweep, mixed / "train")
    shutil.copytree(ensemble_sweep, mixed / "ensembles")
    out = tmp_path / "analysis"
    proc = _analyse(tmp_path, mixed, out)
    assert "8 jobs, 8 finished, 6 configurations" in proc.stdout
    names = {p.name for p in (out / "figures").glob("*.png")}
    assert names == TRAIN_FIGURES | ENSEMBLE_FIGURES
    assert max(len(n) for n in names) <= 100
    jobs = pd.read_csv(out / "jobs.csv")
    labels = jobs.groupby("kind")["config"].agg(lambda c: sorted(set(c))).to_dict()
    assert labels == {
        "train": ["batch-post", "batch-pre"],
        "ensemble": ["batch-post depth=1", "batch-post depth=3", "none depth=1", "none depth=3"],
    }
    md = (out / "report.md").read_text()
    for name in names:
        assert f"figures/{name}" in md

    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    assert analysis_main([str(mixed), "--out", str(a_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {a_file} is a file" in err
    assert a_file.read_text() == "kept"


def test_norm_variant_selects_placement_and_kind(make_cfg) -> None:
    for variant, placement, kind in (
        ("none", "none", "batch"),
        ("batch-pre", "pre", "batch"),
        ("layer-post", "post", "layer"),
        ("rms-pre", "pre", "rms"),
    ):
        cfg = make_cfg("experiment=placement_mlp_dynamics", f"norm_variant={variant}", tiny=False)
        assert (cfg.norm.placement, cfg.norm.kind) == (placement, kind)


def _fake_cifar(root: Path) -> Path:
    """Empty files where CIFAR-10 lives: enough for the preflight's existence check when
    the checksums are not asked for (``dataset.verify=false``)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]:
        (folder / name).touch()
    return root


def test_experiments_pass_the_preflight(tmp_path: Path) -> None:
    # each grid with its seeds fixed to one (seeds change no rule the preflight checks)
    argv = ["-m", "experiment=placement_mlp_dynamics", "seed=0"]
    assert check("train", argv, validate) is None
    data = _fake_cifar(tmp_path / "data")
    for name in ("placement_cnn", "placement_vit"):
        argv = ["-m", f"experiment={name}", f"dataset.data_dir={data}", "dataset.verify=false"]
        assert check("train", [*argv, "seed=0"], validate) is None, name


def test_ensemble_experiment_passes_the_preflight() -> None:
    from igb.launch.validate_ensemble import validate_ensemble

    # every norm variant at the deepest depth (the other depths and activations build
    # the same layers, fewer of them)
    argv = ["-m", "experiment=placement_ensembles", "model.depth=20", "model.activation=relu"]
    assert check("ensemble", argv, validate_ensemble) is None


def test_dashboard_builds_without_network() -> None:
    pytest.importorskip("wandb_workspaces")
    from multirun_analysis import dashboard

    view = dashboard.View("someone", "igb", group="a-sweep").workspace()
    names = [s.name for s in view.sections]
    assert names == [
        "Ensembles",
        "Initial bias and neutrality",
        "Favoured class vs the rest",
        "Per class",
    ]
    keys = [k for s in view.sections for p in s.panels for k in dashboard.panel_keys(p)]
    assert "igb/val/f_max" in keys and "val/acc_rank/1" in keys
    assert {"gamma", "gamma_ci_lo", "ensemble/histogram", "ensemble/inits"} <= set(keys)
    lines = [p for s in view.sections[1:] for p in s.panels]
    assert all(p.log_x for p in lines)
    for s in view.sections:  # on a grid, three to a row: no two panels at one place
        places = [(p.layout.x, p.layout.y) for p in s.panels]
        assert len(set(places)) == len(places) and places[1] == (8, 0)
    by_placement = dashboard.View("someone", "igb", "a-sweep", group_by="config.norm.placement")
    rep = by_placement.report()
    assert len(rep.blocks) == 9
    listing = dashboard.listing(dashboard.panels())
    assert "Ensembles:" in listing and "[ 8, 0 8x6] BarPlot" in listing


@pytest.mark.parametrize(
    ("experiment", "overrides"),
    [
        ("placement_cnn", ["model=cnn", "norm=post"]),
        ("placement_cnn", ["model=resnet", "norm=pre", "model.depth=1", "model.stages=2"]),
        ("placement_vit", ["norm=post", "model.depth=1", "model.heads=2"]),
    ],
)
def test_cifar_experiments_train_on_real_format_files(
    make_cfg, tmp_path: Path, experiment: str, overrides: list[str]
) -> None:
    """The CIFAR studies' settings (schedule, log-spaced steps) train end to end on tiny
    hand-made files in the real CIFAR-10 format (no download)."""
    from helpers.dataset_files import write_cifar10

    from igb.launch.train_job import run

    write_cifar10(tmp_path / "data")
    cfg = make_cfg(
        f"experiment={experiment}",
        *overrides,
        f"dataset.data_dir={tmp_path / 'data'}",
        "dataset.verify=false",
        "dataset.batch_size=9",
        "model.width=8",
        "trainer.max_epochs=2",
        "trainer.accelerator=cpu",
        "callbacks.progress=null",
        "logger=csv",
        tiny=False,
    )
    assert validate(cfg) is not None
    run(cfg)
    job = Path(cfg.paths.output_dir)
    assert json.loads((job / "status.json").read_text())["status"] == "finished"
    series = pd.read_csv(job / "metrics.csv").groupby("step").first()
    measured = series["igb/val/f_max"].dropna()
    assert 0 in measured.index and len(measured) > 3  # step 0, log-spaced steps, epochs


def test_wandb_project_source_with_a_stand_in_api() -> None:
    """--wandb-project goes through wandb.Api(); a stand-in with the same attributes."""
    from types import SimpleNamespace

    from multirun_analysis.wandb_source import collect_project

    def fake_run(rid: str, placement: str, state: str, f_max: list[float]) -> SimpleNamespace:
        config = {
            "seed": 0,
            "model": {"name": "mlp", "depth": 2, "activation": "relu"},
            "norm": {"placement": placement, "kind": "batch"},
            "dataset": {"name": "gaussian_blobs", "num_classes": 4},
        }
        history = [
            {"trainer/global_step": step, "epoch": 0, "igb/val/f_max": f, "val/acc": 0.5}
            for step, f in zip((0, 5, 10), f_max)
        ]
        return SimpleNamespace(
            id=rid,
            state=state,
            config=config,
            summary={"val/acc": 0.5},
            group="sweep-1",
            job_type=f"mlp-batch-{placement}",
            scan_history=lambda: iter(history),
        )

    runs = [
        fake_run("a", "pre", "finished", [0.9, 0.5, 0.3]),
        fake_run("b", "post", "finished", [0.26, 0.27, 0.25]),
        fake_run("c", "post", "crashed", [0.3]),
    ]
    api = SimpleNamespace(runs=lambda path, filters=None: runs)
    col = collect_project("me/igb", group="sweep-1", api=api)
    jobs = col.jobs.set_index("job")
    assert list(jobs["status"]) == ["finished", "finished", "failed"]
    assert jobs.loc["a", "norm"] == "batch-pre" and jobs.loc["b", "norm"] == "batch-post"
    assert jobs.loc["a", "val_time_to_neutral"] == 10  # 0.3 <= 1/4 + 0.1 from step 10 on
    assert jobs.loc["b", "val_time_to_neutral"] == 0
    assert jobs.loc["a", "val_f_max_step0"] == pytest.approx(0.9)
