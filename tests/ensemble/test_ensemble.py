"""Initialization ensembles: row i is the model built alone with seed i, loop == vmap,
per-init statistics == BiasStatistics, gamma from synthetic logits, the files of a job,
the real Hydra entry, and one-line errors for bad ensemble.* keys."""

from __future__ import annotations

import csv
import importlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.entry_points import run_entry
from helpers.model_configs import MODELS
from helpers.sizes import TINY_ENSEMBLE
from omegaconf import OmegaConf

from igb import ensemble as ens
from igb.ensemble import loop as ens_loop
from igb.launch import ensemble_job
from igb.launch.preflight import check
from igb.launch.validate_ensemble import validate_ensemble
from igb.metrics import BiasStatistics, gamma_bootstrap_ci, gamma_from_moments, logit_statistics
from igb.metrics.measure import predict_logits
from igb.nn import build_model
from igb.theory import gaussian as theory
from multirun_analysis.wandb_files import find_run_dirs, read_run

#: the module of the job's body (the tests replace its evaluate_ensemble)
JOB_MODULE = importlib.import_module("igb.ensemble.run")


pytestmark = pytest.mark.usefixtures("one_intra_op_thread")


def alone(model_cfg, norm_cfg, x, num_classes, seed, batch_size, norm_mode="batch"):
    """BiasStatistics of the model built alone from ``seed`` (the reference of a row)."""
    model = build_model(model_cfg, norm_cfg, tuple(x.shape[1:]), num_classes, seed=seed)
    metric = BiasStatistics(num_classes)
    metric.update(predict_logits(model, x, batch_size, norm_mode))
    return {k: v.numpy() for k, v in metric.compute().items()}


def assert_rows_equal(result, refs, rtol=1e-5, atol=1e-6):
    # atol: float32 logits of order 1 carry ~1e-7 rounding per point, and a BN-post
    # network's mu is zero up to that rounding, which a different summation order changes
    for k, ref in enumerate(refs):
        np.testing.assert_array_equal(result.f[k], ref["f"], err_msg=f"f of row {k}")
        assert result.f_max[k] == ref["f_max"]
        np.testing.assert_allclose(result.entropy[k], ref["entropy"], rtol=1e-12)
        np.testing.assert_allclose(result.mu[k], ref["mu"], rtol=rtol, atol=atol)
        np.testing.assert_allclose(result.s2[k], ref["s2"], rtol=rtol, atol=atol)
        np.testing.assert_allclose(result.bias_degree[k], ref["bias_degree"], rtol=1e-4, atol=1e-9)


# -- per-initialization statistics -----------------------------------------------------------
def test_stacked_statistics_equal_streamed_ones() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 301, 5, generator=g) + 2 * torch.randn(6, 1, 5, generator=g)
    logits[0, :10] = 0.0  # ties: the first maximal class wins, as in argmax
    stats = logit_statistics(logits)
    for k in range(logits.shape[0]):
        metric = BiasStatistics(5)
        for chunk in logits[k].split(64):  # batch-wise, as a callback would feed it
            metric.update(chunk)
        ref = metric.compute()
        for key in ("f", "f_max", "entropy", "mu", "s2", "bias_degree"):
            torch.testing.assert_close(stats[key][k], ref[key], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("gamma", "num_classes"), [(0.0, 2), (0.05, 10), (0.5, 2), (3.0, 10)])
def test_gamma_recovered_from_synthetic_gaussian_logits(gamma: float, num_classes: int) -> None:
    """Centres N(0, gamma) per init, unit noise per point: the pipeline recovers gamma.

    The plug-in estimate on N points is (gamma + 1/N) / (1 - 1/N) (theory's finite-sample
    floor); the bootstrap interval must cover it.
    """
    n_inits, n = 2000, 400
    g = torch.Generator().manual_seed(1)
    centres = gamma**0.5 * torch.randn(n_inits, 1, num_classes, generator=g)
    logits = centres + torch.randn(n_inits, n, num_classes, generator=g)
    stats = logit_statistics(logits)
    est = gamma_from_moments(stats["mu"], stats["s2"])
    expected = (gamma + theory.gamma_finite_sample_floor(n)) / (1 - 1 / n)
    lo, hi = gamma_bootstrap_ci(stats["mu"], stats["s2"], n_boot=400)
    assert lo <= expected <= hi, (gamma, est, lo, hi, expected)
    assert abs(est - expected) <= 0.1 * expected + 1e-4
    assert theory.regime(est) == theory.regime(max(gamma, 1e-9))


# -- the ensemble equals models built alone; loop equals vmap ---------------------------------
@pytest.mark.parametrize("name", ["mlp-batch-post", "mlp-batch-pre", "cnn-batch-post"])
def test_row_i_is_the_model_built_alone_with_seed_i(name: str) -> None:
    model_cfg, norm_cfg, shape = MODELS[name]
    x = torch.randn(90, *shape, generator=torch.Generator().manual_seed(3))
    seeds = range(7, 12)
    refs = [alone(model_cfg, norm_cfg, x, 4, s, batch_size=32) for s in seeds]
    for method, workers in (("loop", 1), ("loop", 2), ("vmap", 1)):
        plan = ens.EvaluationPlan(
            model_cfg, norm_cfg, 4, batch_size=32, method=method, workers=workers, chunk_size=3
        )
        result = ens.evaluate_ensemble(plan, x, seeds)
        assert result.method == method
        assert result.seeds.tolist() == list(seeds)
        assert_rows_equal(result, refs)


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")  # MHA under vmap
@pytest.mark.parametrize("name", sorted(MODELS))
def test_loop_and_vmap_agree(name: str) -> None:
    model_cfg, norm_cfg, shape = MODELS[name]
    x = torch.randn(64, *shape, generator=torch.Generator().manual_seed(4))
    kw = dict(batch_size=20, chunk_size=4)
    loop = ens.evaluate_ensemble(ens.EvaluationPlan(model_cfg, norm_cfg, 3, method="loop", **kw),
                                 x, range(6))  # fmt: skip
    vmap = ens.evaluate_ensemble(ens.EvaluationPlan(model_cfg, norm_cfg, 3, method="vmap", **kw),
                                 x, range(6))  # fmt: skip
    np.testing.assert_array_equal(loop.f, vmap.f)
    np.testing.assert_allclose(loop.mu, vmap.mu, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(loop.s2, vmap.s2, rtol=1e-4, atol=1e-6)
    assert loop.gamma == pytest.approx(vmap.gamma, rel=1e-4, abs=1e-10)


def test_vmap_halves_its_chunk_on_out_of_memory(monkeypatch) -> None:
    import torch.func

    real_vmap = torch.func.vmap
    failures = []

    def flaky_vmap(fn, *args, **kwargs):
        batched = real_vmap(fn, *args, **kwargs)

        def call(p, b, xb):
            k = next(iter(p.values())).shape[0]
            if k > 2:  # "does not fit": more than 2 initializations at once
                failures.append(k)
                raise torch.OutOfMemoryError("simulated")
            return batched(p, b, xb)

        return call

    monkeypatch.setattr(torch.func, "vmap", flaky_vmap)
    model_cfg, norm_cfg, shape = MODELS["mlp-batch-post"]
    x = torch.randn(40, *shape)
    plan = ens.EvaluationPlan(model_cfg, norm_cfg, 3, 20, method="vmap", chunk_size=8)
    vmap = ens.evaluate_ensemble(plan, x, range(8))
    assert failures == [8, 4] and vmap.chunk_size == 2
    loop = ens.evaluate_ensemble(ens.EvaluationPlan(model_cfg, norm_cfg, 3, 20, method="loop"),
                                 x, range(8))  # fmt: skip
    np.testing.assert_array_equal(loop.f, vmap.f)
    np.testing.assert_allclose(loop.mu, vmap.mu, rtol=1e-4, atol=1e-6)


def test_eval_norm_mode_and_progress_and_rng_untouched() -> None:
    model_cfg, norm_cfg, shape = MODELS["mlp-batch-pre"]
    x = torch.randn(50, *shape)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    done: list[int] = []
    plan = ens.EvaluationPlan(model_cfg, norm_cfg, 3, 10, norm_mode="eval", workers=2)
    result = ens.evaluate_ensemble(plan, x, range(4), progress=done.append)
    assert torch.equal(torch.get_rng_state(), state)
    assert sum(done) == 4
    refs = [alone(model_cfg, norm_cfg, x, 3, s, batch_size=10, norm_mode="eval") for s in range(4)]
    assert_rows_equal(result, refs)


def test_auto_method_picks_loop_on_cpu_and_vmap_on_cuda() -> None:
    assert ens.resolve_method("auto", torch.device("cpu")) == "loop"
    assert ens.resolve_method("auto", torch.device("cuda")) == "vmap"
    assert ens.resolve_workers("auto", torch.device("cpu")) == torch.get_num_threads()


# -- the job: files, atomicity, W&B -------------------------------------------------------------
SUMMARY_KEYS = {
    "n_inits", "n_classes", "n_points", "gamma", "gamma_ci", "regime", "f_max_mean",
    "f_max_quantiles", "bias_degree_mean", "entropy_mean", "choices", "norm_mode",
    "batch_size", "device", "method", "wall_time_s", "eval_time_s", "seeds", "versions",
}  # fmt: skip


def check_outputs(out: Path, n_inits: int, num_classes: int, seed0: int = 0) -> dict:
    with (out / "inits.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    f_cols = [f"f_{c}" for c in range(num_classes)]
    assert list(rows[0]) == ["seed", *f_cols, "f_max", "entropy", "bias_degree", "mu2", "s2"]
    assert [int(r["seed"]) for r in rows] == list(range(seed0, seed0 + n_inits))
    for r in rows:
        f = [float(r[c]) for c in f_cols]
        assert sum(f) == pytest.approx(1.0) and float(r["f_max"]) == max(f)
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary), SUMMARY_KEYS - set(summary)
    assert summary["n_inits"] == n_inits and summary["n_classes"] == num_classes
    lo, hi = summary["gamma_ci"]
    assert lo <= summary["gamma"] <= hi
    assert summary["regime"] == theory.regime_of_interval(lo, hi)
    assert summary["seeds"] == [seed0, seed0 + n_inits - 1]
    mu2 = np.array([float(r["mu2"]) for r in rows])
    s2 = np.array([float(r["s2"]) for r in rows])
    assert summary["gamma"] == pytest.approx(mu2.mean() / s2.mean(), rel=1e-9)
    assert (out / "histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "status.json").read_text())["status"] == "finished"
    assert not list(out.glob(".*.tmp*")), "temporary files left behind"
    return summary


@pytest.mark.slow
def test_hydra_entry_writes_the_files(tmp_path: Path) -> None:
    """The real `python ensemble.py` entry (preflight, Hydra, run) with tiny sizes."""
    out = tmp_path / "run"
    args = [*TINY_ENSEMBLE, "norm=post", "dataset.num_classes=3", "ensemble.seed0=5"]
    proc = run_entry("ensemble.py", *args, f"hydra.run.dir={out}", cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = check_outputs(out, 24, 3, seed0=5)
    assert summary["regime"] == "neutral"  # BatchNorm post on centred data
    assert summary["choices"]["norm_placement"] == "post"
    assert (out / "ensemble.log").exists() and (out / "config.yaml").exists()


@pytest.mark.slow
def test_hydra_entry_bad_key_exits_with_one_line_and_no_folder(tmp_path: Path) -> None:
    proc = run_entry("ensemble.py", "ensemble.n_inits=0", cwd=tmp_path, timeout=240)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: ensemble.n_inits=0 must be an integer >= 2: gamma and its interval need two "
        "initializations"
    ], proc.stderr
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())


def test_binary_job_with_wandb_in_process(make_cfg, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = make_cfg(
        *TINY_ENSEMBLE, "norm=none", "dataset.num_classes=2", "logger=wandb", name="ensemble"
    )
    out = Path(cfg.paths.output_dir)
    gamma = ensemble_job.run(cfg)
    summary = check_outputs(out, 24, 2)
    assert gamma == summary["gamma"]
    assert {"f0_mean", "f0_std", "f0_quantiles"} <= set(summary)
    assert summary["choices"]["norm_kind"] == "none"
    (run_dir,) = find_run_dirs(out)
    run = read_run(run_dir)
    deadline = time.monotonic() + 30
    while not run.finished and time.monotonic() < deadline:
        # wandb 0.31 (offline) can return from finish() before its writer has flushed
        time.sleep(0.2)
        run = read_run(run_dir)
    assert run.job_type == "ensemble-mlp-none", run
    assert "ensemble" in run.tags, run.tags
    assert run.summary["gamma"] == pytest.approx(summary["gamma"])
    assert run.summary["regime"] == summary["regime"]
    logged = {k for row in run.history for k in row}
    assert {"ensemble/f_0", "ensemble/histogram", "ensemble/inits"} <= logged
    assert summary["wandb"]["mode"] == "offline"
    # readable name (job type and seed range) and the results as one artifact
    assert run.name == "ensemble-mlp-none-seeds0-23"
    (artifact,) = [a for a in run.artifacts if a["type"] != "run_table"]
    assert (artifact["name"], artifact["type"]) == (f"ensemble-{run.run_id}", "ensemble-results")
    assert artifact["files"] == ["histogram.png", "inits.csv", "summary.json"]


def test_interrupted_run_leaves_no_summary(make_cfg, monkeypatch) -> None:
    cfg = make_cfg(*TINY_ENSEMBLE, name="ensemble")
    out = Path(cfg.paths.output_dir)
    (out / "summary.json").write_text('{"gamma": 0.1}')  # a previous run's result
    (out / "status.json").write_text('{"status": "failed"}')
    # of this configuration: without config.yaml nothing would attribute it (refused)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(JOB_MODULE, "evaluate_ensemble", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensemble_job.run(cfg)
    assert not (out / "summary.json").exists() and not (out / "inits.csv").exists()
    assert json.loads((out / "status.json").read_text())["status"] == "interrupted"


def test_finished_job_is_skipped(make_cfg, monkeypatch) -> None:
    cfg = make_cfg(*TINY_ENSEMBLE, "ensemble.n_inits=4", name="ensemble")
    first = ensemble_job.run(cfg)
    monkeypatch.setattr(JOB_MODULE, "evaluate_ensemble", lambda *a, **k: pytest.fail("re-ran"))
    assert ensemble_job.run(cfg) == first


# -- pre-flight --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["ensemble.n_inits=0"], ["ensemble.n_inits=0", ">= 2"]),
        (["ensemble.seed0=-1"], ["ensemble.seed0=-1"]),
        (["norm=post", "ensemble.batch_size=1"], ["ensemble.batch_size=1", "BatchNorm"]),
        (["ensemble.eval_samples=99999"], ["ensemble.eval_samples=99999", "has 1600 points"]),
        (["ensemble.eval_split=holdout"], ["ensemble.eval_split=holdout", "train, val, test"]),
        (["ensemble.method=magic"], ["ensemble.method=magic", "auto, loop, vmap"]),
        (["ensemble.device=tpu"], ["ensemble.device=tpu", "auto, cpu, cuda"]),
        (["ensemble.workers=0"], ["ensemble.workers=0"]),
        (["ensemble.chunk_size=0"], ["ensemble.chunk_size=0"]),
        (["ensemble.norm_mode=train"], ["ensemble.norm_mode=train", "batch, eval"]),
        (["ensemble.n_initz=3"], ["ensemble.n_initz", "keys of 'ensemble'", "n_inits"]),
        (["model.depth=0"], ["model.depth=0", "positive integer"]),
        (["norm=sideways"], ["norm=sideways", "allowed: native, none, post, pre"]),
    ],
)
def test_bad_ensemble_input_gives_one_line(argv: list[str], expected: list[str]) -> None:
    error = check("ensemble", argv, validate_ensemble)
    assert error is not None and "\n" not in error
    for part in expected:
        assert part in error, (part, error)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["norm=none", "ensemble.batch_size=1"],
        ["norm=post", "norm.kind=layer", "ensemble.batch_size=1"],
        ["-m", "norm=none,pre,post", "model.depth=2,10"],
        ["ensemble.eval_samples=null", "ensemble.eval_split=test"],
    ],
)
def test_good_ensemble_input_passes(argv: list[str]) -> None:
    assert check("ensemble", argv, validate_ensemble) is None


def test_cuda_request_without_cuda_is_one_line() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    error = check("ensemble", ["ensemble.device=cuda"], validate_ensemble)
    assert error is not None and "ensemble.device=cuda" in error and "\n" not in error


def test_worker_threads_leave_the_thread_settings_alone() -> None:
    import threading

    model_cfg, norm_cfg, shape = MODELS["mlp-none"]
    torch.set_num_threads(2)
    try:
        plan = ens.EvaluationPlan(model_cfg, norm_cfg, 3, 10)
        ens.evaluate_ensemble(plan, torch.randn(20, *shape), range(4))
        seen = []
        t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert torch.get_num_threads() == 2 and seen == [2]
    finally:
        torch.set_num_threads(1)  # this module's setting


@pytest.mark.parametrize("workers", [1, 3])
def test_an_error_in_a_worker_is_raised_not_hung(monkeypatch, workers: int) -> None:
    real = ens_loop.logit_statistics
    calls = []

    def failing(logits):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom in the statistics")
        return real(logits)

    monkeypatch.setattr(ens_loop, "logit_statistics", failing)
    model_cfg, norm_cfg, shape = MODELS["mlp-batch-post"]
    with pytest.raises(RuntimeError, match="boom"):
        plan = ens.EvaluationPlan(model_cfg, norm_cfg, 3, 10, workers=workers)
        ens.evaluate_ensemble(plan, torch.randn(30, *shape), range(50))
    assert len(calls) < 50


@pytest.mark.parametrize(
    ("label", "gamma", "num_classes"),
    [("f_0", 0.0, 2), ("f_0", 1e-14, 2), ("f_0", 0.4, 2), ("f_0", 5.0, 2), ("f_max", 0.0, 10),
     ("f_max", 0.5, 10)],
)  # fmt: skip
def test_histogram_with_theory_overlay(tmp_path: Path, label, gamma, num_classes) -> None:
    from igb.ensemble.plot import plot_histogram, theory_curve, x_range

    n = 400
    rng = np.random.default_rng(0)
    if label == "f_0":
        values = rng.binomial(n, theory.sample_f0(gamma, 300, seed=1)) / n
    else:
        values = theory.sample_f_max(gamma, num_classes, 300, n_points=n, seed=1)
    low, high = x_range(values, label, num_classes)
    assert low <= values.min() and values.max() <= high
    edges = np.linspace(low, high, 51)
    x, dens, legend, is_hist = theory_curve(label, gamma, num_classes, n, edges)
    assert np.all(dens >= 0) and "theory" in legend
    if is_hist:  # a simulated law on the plotted range: nearly all its mass is visible
        assert 0.9 < float((dens * np.diff(edges)).sum()) <= 1.0 + 1e-9
    summary = {"gamma": gamma, "gamma_ci": [gamma, gamma], "regime": theory.regime(gamma)}
    path = tmp_path / "h.png"
    plot_histogram(values, label, summary, num_classes, n, path, title="test")
    assert path.read_bytes()[:4] == b"\x89PNG"
