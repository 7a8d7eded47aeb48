"""The analysis of hand-made ensemble folders (the files an ensemble job writes, with
numbers chosen here): theory against measurement, the regime from the interval, the
figure comparing any set of ensembles, labels without ``nan`` or paths."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml

from multirun_analysis.__main__ import main as analysis_main
from multirun_analysis.collect import collect
from multirun_analysis.figures import common, compare, gamma, histograms, profiles
from multirun_analysis.tables import summarize


def _job(
    folder: Path,
    *,
    vary: str,
    weights: str | None,
    gamma: float,
    ci: tuple[float, float],
    theory: float | None = None,
    depth: int | None = None,
    n_inits: int = 6,
    overrides: tuple[str, ...] = (),
) -> Path:
    """One finished ensemble job's folder: config, overrides, summary.json, inits.csv."""
    (folder / ".hydra").mkdir(parents=True)
    ensemble = {"n_inits": n_inits, "norm_mode": "batch", "vary": vary}
    cfg = {
        "task_name": "ensemble",
        "seed": 0,
        "model": {"name": "torchvision-resnet18", "arch": "resnet18", "weights": weights,
                  "depth": depth, "activation": "native"},
        "norm": {"placement": "none", "kind": "batch"},
        "dataset": {"name": "blobs", "num_classes": 4},
        "ensemble": ensemble,
    }  # fmt: skip
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    summary = {
        "n_inits": n_inits, "n_classes": 4, "n_points": 200, "gamma": gamma,
        "gamma_ci": list(ci), "regime": "prejudiced", "gamma_theory": theory,
        "f_max_mean": 0.4,
    }  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    f_max = np.linspace(0.3, 0.6, n_inits)
    pd.DataFrame({"init": range(n_inits), "f_max": f_max}).to_csv(folder / "inits.csv")
    return folder


@pytest.fixture
def three_heads(tmp_path: Path) -> Path:
    """ResNet-18: whole network, fresh head, fresh head on a trained backbone."""
    root = tmp_path / "runs"
    _job(root / "whole" / "0", vary="all", weights=None, gamma=0.5, ci=(0.3, 0.8), theory=0.6)
    _job(root / "head" / "0", vary="head", weights=None, gamma=0.0103, ci=(0.008, 0.013),
         overrides=("ensemble.vary=head",))  # fmt: skip
    _job(root / "backbone" / "0", vary="head", weights="/ckpt/dir/backbone.pt", gamma=2.0,
         ci=(1.5, 2.5), theory=1.0, overrides=("ensemble.vary=head",
                                               "model.weights=/ckpt/dir/backbone.pt"))  # fmt: skip
    return root


def test_theory_columns_and_regime_from_the_interval(three_heads: Path) -> None:
    jobs = collect(three_heads).jobs.set_index("sweep")
    assert jobs.loc["whole", "gamma_ratio"] == pytest.approx(0.5 / 0.6)
    assert jobs.loc["whole", "theory_in_ci"] is True  # 0.6 in [0.3, 0.8]
    assert jobs.loc["backbone", "gamma_ratio"] == pytest.approx(2.0)
    assert jobs.loc["backbone", "theory_in_ci"] is False  # 1.0 below [1.5, 2.5]
    assert pd.isna(jobs.loc["head", "gamma_ratio"]) and jobs.loc["head", "theory_in_ci"] is None
    # regime from the interval, whatever summary.json said
    assert jobs.loc["head", "regime"] == "neutral or prejudiced"  # [0.008, 0.013] vs 0.01
    assert jobs.loc["whole", "regime"] == "prejudiced"
    assert jobs.loc["backbone", "regime"] == "deeply_prejudiced"


def test_labels_name_vary_and_weights_without_nan_or_paths(three_heads: Path) -> None:
    col = collect(three_heads)
    labels = dict(zip(col.jobs["sweep"], col.jobs["config"]))
    # the whole network's weights are None: left out, not "weights=nan"; a path: its name
    assert labels == {
        "whole": "vary=all",
        "head": "vary=head",
        "backbone": "weights=backbone.pt vary=head",
    }


def test_summary_table_carries_the_theory(three_heads: Path) -> None:
    table = summarize(collect(three_heads)).set_index("configuration")
    row = table.loc[[c for c in table.index if "backbone" in c][0]]
    assert row["γ theory"] == pytest.approx(1.0) and row["measured / theory"] == pytest.approx(2.0)
    assert row["theory in CI"] == "0/1"


def _keep(monkeypatch: pytest.MonkeyPatch) -> dict[str, plt.Figure]:
    """Figures are kept open instead of saved, so their data can be read."""
    drawn: dict[str, plt.Figure] = {}

    def keep(fig: plt.Figure, path: Path) -> Path:
        drawn[path.name] = fig
        return path

    for module in (common, histograms):
        monkeypatch.setattr(module, "save", keep)
    return drawn


def test_compare_figure_one_point_per_run(three_heads: Path, tmp_path: Path, monkeypatch) -> None:
    drawn = _keep(monkeypatch)
    col = collect(three_heads)
    assert compare.fig_gamma_compare(col, tmp_path)
    ax = drawn["gamma_compare.png"].axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 3 and not any("nan" in t for t in labels)
    points = ax.lines[0].get_xydata()  # the measured gammas, in the order of the labels
    by_label = {lab: x for lab, (x, _) in zip(labels, points)}
    assert by_label[[lab for lab in labels if "backbone" in lab][0]] == pytest.approx(2.0)
    assert ax.get_xscale() == "log"
    # no depth: no gamma-vs-depth figure (it would be empty)
    assert gamma.fig_gamma_vs_depth(col, tmp_path) == []


def test_compare_figure_needs_two_runs(tmp_path: Path) -> None:
    _job(tmp_path / "one" / "0", vary="all", weights=None, gamma=0.5, ci=(0.3, 0.8))
    assert compare.fig_gamma_compare(collect(tmp_path / "one"), tmp_path / "out") == []


def test_compare_figure_without_theory_or_interval_columns(tmp_path: Path) -> None:
    """Summaries that never name gamma_theory or gamma_ci (older files; a W&B summary
    drops null values): the figure draws the measured gammas alone."""
    for name, g in (("a", 0.5), ("b", 2.0)):
        folder = _job(tmp_path / "runs" / name / "0", vary="all", weights=None, gamma=g,
                      ci=(g, g), overrides=(f"seed={len(name)}",))  # fmt: skip
        summary = json.loads((folder / "summary.json").read_text())
        del summary["gamma_theory"], summary["gamma_ci"]
        (folder / "summary.json").write_text(json.dumps(summary))
    col = collect(tmp_path / "runs")
    assert not {"gamma_theory", "gamma_ci_lo", "gamma_ci_hi"} & set(col.jobs.columns)
    assert compare.fig_gamma_compare(col, tmp_path / "out")


def test_few_initializations_are_a_strip_with_a_1_over_c_line(tmp_path: Path) -> None:
    fig, (a, b) = plt.subplots(1, 2)
    few = np.linspace(0.3, 0.6, 6)
    assert histograms.hist_panel(a, few, 4, 0.5, 200) == "strip"
    assert len(a.collections[0].get_offsets()) == 6  # every value drawn
    assert any(line.get_xdata()[0] == pytest.approx(0.25) for line in a.lines)  # 1/C
    many = np.random.default_rng(0).uniform(0.25, 1, 300)
    assert histograms.hist_panel(b, many, 4, 0.5, 200) == "histogram"
    assert len(b.patches) == histograms.n_bins(300) == 14
    assert histograms.n_bins(24) == 6
    plt.close(fig)


def test_cli_writes_the_compare_figure(three_heads: Path, tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    assert analysis_main([str(three_heads), "--out", str(out)]) == 0
    names = {p.name for p in (out / "figures").glob("*.png")}
    assert "gamma_compare.png" in names and "gamma_vs_depth.png" not in names
    assert not any("ckpt" in n or "nan" in n for n in names)
    jobs = pd.read_csv(out / "jobs.csv")
    assert {"gamma_theory", "gamma_ratio", "theory_in_ci"} <= set(jobs.columns)
    md = (out / "report.md").read_text()
    assert "neutral or prejudiced" in md and "measured / theory" in md


def test_panel_grids_have_no_mostly_empty_row() -> None:
    assert common.grid_shape(5, 4) == (2, 3)  # not 2 x 4 with three empty panels
    assert common.grid_shape(4, 4) == (1, 4) and common.grid_shape(9, 4) == (3, 3)
    assert common.grid_shape(1, 3) == (1, 1)


def _profile(folder: Path, gammas: list[float]) -> None:
    """A profile.csv as ``ensemble.profile=true`` writes it (input first, head input last)."""
    n = len(gammas)
    pd.DataFrame({
        "index": range(n), "module": [f"m{i}" for i in range(n)], "kind": "Linear",
        "shape": "16", "gamma": gammas, "gamma_lo": [g / 2 for g in gammas],
        "gamma_hi": [g * 2 for g in gammas], "n_inits": 6,
    }).to_csv(folder / "profile.csv", index=False)  # fmt: skip


def test_profiles_of_several_runs_on_one_figure(
    three_heads: Path, tmp_path: Path, monkeypatch
) -> None:
    drawn = _keep(monkeypatch)
    _profile(three_heads / "whole" / "0", [0.003, 5.0, 2.0, 0.5])
    _profile(three_heads / "backbone" / "0", [0.003, 0.1, 1e-12, 3.0, 2.0, 2.0])
    col = collect(three_heads)
    figures = profiles.fig_profiles(col, tmp_path)
    assert [f.path.name for f in figures] == ["profiles.png"]
    ax = drawn["profiles.png"].axes[0]
    lines = {line.get_label(): line.get_xydata() for line in ax.lines if line.get_marker() == "o"}
    assert set(lines) == {"vary=all", "weights=backbone.pt vary=head"}  # the head run: none
    whole, backbone = lines["vary=all"], lines["weights=backbone.pt vary=head"]
    # aligned by the fraction of the forward path; gamma_l as written, zero at the floor
    assert whole[:, 0].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert whole[:, 1].tolist() == pytest.approx([0.003, 5.0, 2.0, 0.5])
    assert backbone[2, 1] == profiles.FLOOR and backbone[-1, 0] == 1.0
    assert ax.get_yscale() == "log"


def test_profiles_figure_needs_two_profiles(three_heads: Path, tmp_path: Path) -> None:
    _profile(three_heads / "whole" / "0", [0.003, 5.0])
    assert profiles.fig_profiles(collect(three_heads), tmp_path) == []
