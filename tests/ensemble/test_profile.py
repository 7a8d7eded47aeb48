"""ensemble.profile: gamma_l of a fresh Gaussian head on every layer's output, checked on a
hand-made network (exact), against the infinite-width kernel walk (width 1024), against the
measured logits gamma of the same ensemble, and through the real ``ensemble.py``."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.entry_points import run_entry
from helpers.model_configs import mlp, norm
from helpers.sizes import SMALL_PROFILED_ENSEMBLE
from torch import nn

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.ensemble.profile import HEAD_INPUT, LOGITS, Profiler
from igb.ensemble.profile_report import profile_rows
from igb.launch.ensemble_job import ensemble_spec
from igb.metrics import gamma_bootstrap_ci
from igb.theory.nngp import WalkSettings, predict_layers

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")


class HandMade(nn.Module):
    """features = relu(x @ A^T) (A written down), then a linear head."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.lin = nn.Linear(a.shape[1], a.shape[0], bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(a)
        self.act = nn.ReLU()
        self.head = nn.Linear(a.shape[0], 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.lin(x)))


def _moments(h: np.ndarray) -> tuple[float, float]:
    mean = h.mean(axis=0)
    return float((mean**2).mean()), float(h.var(axis=0).mean())


def test_hand_made_network_exact() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]], dtype=torch.float64)
    weights = [torch.tensor([[1.0, 0.0], [1.0, -1.0], [0.5, 2.0]]),
               torch.tensor([[-1.0, 1.0], [2.0, 0.0], [0.0, 1.0]])]  # fmt: skip
    profiler = Profiler("head")
    expected: dict[str, tuple[list[float], list[float]]] = {
        "lin": ([], []), "act": ([], []), "logits": ([], [])
    }  # fmt: skip
    for seed, a in enumerate(weights):
        torch.manual_seed(seed)  # the head: PyTorch's default draw, its bias included
        model = HandMade(a).double()
        tap = profiler.attach(model)
        tap.start()
        with torch.no_grad():
            for rows in (slice(0, 3), slice(3, 4)):  # two batches of one initialization
                model(x[rows])
        profiler.finish(seed, tap)
        pre = (x @ a.double().T).numpy()
        with torch.no_grad():
            logits = model.head(torch.from_numpy(np.maximum(pre, 0))).numpy()
        for name, h in (("lin", pre), ("act", np.maximum(pre, 0)), ("logits", logits)):
            m, s = _moments(h)
            expected[name][0].append(m)
            expected[name][1].append(s)
    table = profiler.table(n_boot=20)
    assert [r["module"] for r in table] == ["lin", "act", "head:input", "logits"]
    assert table[-2]["kind"] == HEAD_INPUT and table[-1]["kind"] == LOGITS
    for row, name in zip(table, ["lin", "act", "act", "logits"], strict=True):
        a, b = expected[name]
        assert row["gamma"] == pytest.approx(np.mean(a) / np.mean(b), rel=1e-12)
        assert row["n_inits"] == 2


def test_mlp_profile_matches_infinite_width() -> None:
    model_cfg, norm_cfg = mlp(depth=2, width=1024), norm("post")
    x = torch.randn(60, 12, generator=torch.Generator().manual_seed(0))
    profiler = Profiler("head")
    evaluate_ensemble(EvaluationPlan(model_cfg, norm_cfg, 3, 30), x, range(12), profiler=profiler)
    theory = predict_layers(WalkSettings.from_groups(model_cfg, norm_cfg, 30), x)
    rows = {r["module"]: r for r in profiler.table(n_boot=50)}
    assert set(theory) <= set(rows)
    for name, predicted in theory.items():
        assert rows[name]["gamma"] == pytest.approx(predicted, rel=0.08, abs=0.01), name


def test_last_entry_agrees_with_measured_gamma() -> None:
    """The head is kaiming-normal with zero bias: the head-input gamma_l and the logits'
    gamma estimate the same ratio of expectations."""
    model_cfg, norm_cfg = mlp(depth=3, width=32), norm("none")
    x = torch.randn(50, 12, generator=torch.Generator().manual_seed(2))
    profiler = Profiler("head")
    res = evaluate_ensemble(
        EvaluationPlan(model_cfg, norm_cfg, 3, 50), x, range(300), profiler=profiler
    )
    *_, head_input, logits = profiler.table(n_boot=200)
    lo, hi = gamma_bootstrap_ci(res.mu, res.s2, n_boot=200)
    assert lo < head_input["gamma"] < hi
    assert head_input["gamma_lo"] < res.gamma < head_input["gamma_hi"]
    assert logits["gamma_lo"] < res.gamma < logits["gamma_hi"]  # the same logits, measured


def test_ensemble_py_profile_files(tmp_path) -> None:
    out = tmp_path / "job"
    proc = run_entry("ensemble.py", "model=mlp", "model.depth=2", "model.width=16",
                     *SMALL_PROFILED_ENSEMBLE, f"hydra.run.dir={out}", cwd=tmp_path,
                     timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((out / "profile.csv").open()))
    assert rows[0]["module"] == "(input)" and rows[-2]["kind"] == HEAD_INPUT
    assert rows[-1]["kind"] == LOGITS
    assert all(r["gamma_theory"] for r in rows[1:-1])  # built-in MLP: the theory column
    assert (out / "profile.png").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profile"]["nonzero_biases"] == []
    assert summary["profile"]["head_input_gamma"] == pytest.approx(float(rows[-2]["gamma"]))
    assert summary["profile"]["logits_gamma"] == pytest.approx(float(rows[-1]["gamma"]))


def test_default_biases_are_reported(tmp_path) -> None:
    out = tmp_path / "job"
    custom = ["model=custom", "model.cls=helpers.custom_models.DefaultBiases", "norm=native"]
    env = {"PYTHONPATH": str(Path(__file__).parents[1])}  # tests/: helpers.custom_models
    proc = run_entry("ensemble.py", *custom, *SMALL_PROFILED_ENSEMBLE, f"hydra.run.dir={out}",
                     cwd=tmp_path, env=env, timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    prof = json.loads((out / "summary.json").read_text())["profile"]
    assert prof["nonzero_biases"] == ["net.body.1.bias", "net.body.3.bias", "net.fc.bias"]
    assert prof["gamma_profile_without_biases"] < prof["gamma_profile_with_biases"]


def test_neutralize_head_on_a_users_head_with_a_bias_ends_neutral_at_the_logits() -> None:
    """A user's head keeping PyTorch's default bias: model.neutralize=head removes it, so
    the profile's last entry, the logits, is as neutral as the head's input, and the
    ensemble's own gamma agrees."""
    cfg = {"_target_": "igb.nn.libraries.Custom", "name": "custom",
           "cls": "helpers.custom_models.DefaultBiases", "neutralize": "head"}  # fmt: skip
    native = {"placement": "native", "kind": "native"}
    x = torch.rand(40, 12, generator=torch.Generator().manual_seed(0))
    profiler = Profiler("net.fc")
    res = evaluate_ensemble(EvaluationPlan(cfg, native, 3, 40, method="loop"), x, range(6),
                            profiler=profiler)  # fmt: skip
    *_, head_input, logits = profiler.table(n_boot=20)
    assert head_input["gamma"] < 1e-10 and logits["gamma"] < 1e-10 and res.gamma < 1e-6


def test_bad_profile_features_is_one_line(tmp_path) -> None:
    proc = run_entry("ensemble.py", "ensemble.profile_features=max", cwd=tmp_path, timeout=240)
    assert proc.returncode == 2
    assert "ensemble.profile_features=max must be one of pool, flatten" in proc.stderr
    assert not any(tmp_path.rglob("summary.json"))


def test_torchvision_entries_are_named_modules_and_repeated_calls() -> None:
    """Hooks on any network: torchvision's ResNet-18 reuses one ReLU per block (``#2``);
    BatchNorm on batch statistics centres its output exactly; the last entry is the
    head's input, and an nn.Sequential's entry repeats its last child's."""
    cfg = {"_target_": "igb.nn.libraries.Torchvision", "name": "tv-r18", "arch": "resnet18"}
    native = {"placement": "native", "kind": "native"}
    x = torch.randn(12, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    profiler = Profiler("net.fc")
    evaluate_ensemble(EvaluationPlan(cfg, native, 3, 12), x, [0, 1], profiler=profiler)
    rows = {r["module"]: r for r in profiler.table(n_boot=20)}
    assert {"net.conv1", "net.layer1.0.relu", "net.layer1.0.relu#2", "net.avgpool"} <= set(rows)
    assert rows["net.bn1"]["gamma"] < 1e-8 < rows["net.relu"]["gamma"]
    assert list(rows)[-2:] == ["net.fc:input", "logits"]
    assert rows["net.layer4"]["gamma"] == rows["net.layer4.1"]["gamma"]
    assert rows["net.fc:input"]["gamma"] == pytest.approx(rows["net.avgpool"]["gamma"])


def test_neutralized_head_input_is_centred() -> None:
    model_cfg, norm_cfg = {**mlp(depth=2, width=32), "neutralize": "head"}, norm("none")
    x = torch.randn(40, 12, generator=torch.Generator().manual_seed(3))
    profiler = Profiler("head")
    evaluate_ensemble(EvaluationPlan(model_cfg, norm_cfg, 3, 40), x, range(5), profiler=profiler)
    table = profiler.table(n_boot=20)
    names = [r["module"] for r in table]
    assert names[-4:] == ["blocks", "head.center", "head:input", "logits"]  # centring: an entry
    assert table[-4]["gamma"] > 0.1 and table[-2]["gamma"] < 1e-10 and table[-1]["gamma"] < 1e-10
    assert predict_layers(WalkSettings.from_groups(model_cfg, norm_cfg, 40), x)[
        "head:input"
    ] == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize(("theory", "points"), [(False, None), (True, 100), (True, None)])
def test_the_profiles_theory_follows_the_ensembles_settings(make_cfg, theory, points) -> None:
    """ensemble.theory=false: no theory column; ensemble.theory_points: the per-layer walk
    on the same subsample as gamma_theory (a large evaluation set walks no N x N kernels)."""
    model_cfg, norm_cfg = mlp(depth=2, width=64), norm("pre")
    x = torch.randn(240, 12, generator=torch.Generator().manual_seed(0))
    profiler = Profiler("head")
    evaluate_ensemble(EvaluationPlan(model_cfg, norm_cfg, 3, 30), x, range(4), profiler=profiler)
    spec = ensemble_spec(make_cfg(name="ensemble"))
    ens = replace(spec.ensemble, batch_size=30, norm_mode="batch", theory=theory,
                  theory_points=points)  # fmt: skip
    spec = replace(spec, model=model_cfg, norm=norm_cfg, ensemble=ens)
    rows = {r["module"]: r for r in profile_rows(profiler, spec, x, n_boot=20, level=0.95)}
    if not theory:
        assert all("gamma_theory" not in r for r in rows.values())
        return
    expected = predict_layers(
        WalkSettings.from_groups(model_cfg, norm_cfg, 30, max_points=points), x
    )
    assert {name: rows[name]["gamma_theory"] for name in expected} == expected
