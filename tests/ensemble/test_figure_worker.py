"""The figure worker draws what the job's process would draw, and never loses a figure."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from igb.ensemble import figure_worker
from igb.theory import gaussian as theory

PLOT = "igb.ensemble.plot:plot_histogram"


def _arguments(path: Path) -> tuple[object, ...]:
    values = theory.sample_f_max(0.3, 4, 200, n_points=300, seed=2)
    summary = {
        "gamma": 0.3,
        "gamma_ci": [0.2, 0.4],
        "regime": "prejudiced",
        "gamma_theory": 0.25,
        "gamma_theory_finite": 0.28,
        "choices": {"width": 64},
    }
    return (values, "f_max", summary, 4, 300, path)


@pytest.fixture
def worker() -> Iterator[None]:
    figure_worker.stop()
    figure_worker.start(require_spare_cpu=False)
    assert figure_worker.running()
    yield
    figure_worker.stop()


def test_the_worker_draws_the_same_png_as_this_process(worker: None, tmp_path: Path) -> None:
    """Also when the laws were drawn ahead (and a bad request came first: ignored)."""
    values, label, summary, c, n, _ = _arguments(tmp_path)
    figure_worker.prepare("igb.ensemble.plot:prepare_laws", {"gamma": "bad"}, c, n)
    figure_worker.prepare("igb.ensemble.plot:prepare_laws", summary, c, n)
    figure_worker.call(PLOT, *_arguments(tmp_path / "worker.png"), title="t")
    figure_worker.run(PLOT, _arguments(tmp_path / "here.png"), {"title": "t"})
    drawn = (tmp_path / "worker.png").read_bytes()
    assert drawn[:4] == b"\x89PNG"
    assert drawn == (tmp_path / "here.png").read_bytes()


def test_an_error_in_the_worker_is_raised_here(worker: None, tmp_path: Path) -> None:
    values, label, summary, c, n, path = _arguments(tmp_path / "h.png")
    del summary["gamma_ci"]  # type: ignore[attr-defined]
    with pytest.raises(KeyError, match="gamma_ci"):
        figure_worker.call(PLOT, values, label, summary, c, n, path)
    assert figure_worker.running()  # one bad drawing does not end the worker


def test_a_dead_worker_means_drawing_here(worker: None, tmp_path: Path) -> None:
    process = figure_worker.process()
    assert process is not None
    process.kill()
    process.wait()
    figure_worker.call(PLOT, *_arguments(tmp_path / "h.png"))
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"


def test_the_worker_ends_when_its_input_closes() -> None:
    """What happens when the job's process ends, however it ends."""
    worker = subprocess.Popen([sys.executable, "-m", figure_worker.__name__], stdin=subprocess.PIPE)
    worker.stdin.close()  # type: ignore[union-attr]
    assert worker.wait(timeout=60) == 0


def test_switched_off_no_worker_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    figure_worker.stop()
    monkeypatch.setenv(figure_worker.SWITCH_ENV, "0")
    figure_worker.start(require_spare_cpu=False)
    assert not figure_worker.running()


def test_a_job_given_one_cpu_starts_no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert not figure_worker.spare_cpu()


def test_threads_running_elsewhere_read_from_the_kernel() -> None:
    assert figure_worker.running_elsewhere("0.52 0.61 0.70 3/181 4242") == 2
    assert figure_worker.running_elsewhere("garbled") is None


def test_pickled_arguments_stay_free_of_torch(tmp_path: Path) -> None:
    """A torch object among the arguments would make the worker import torch to read them
    (seconds): the ensemble summary's versions are plain strings."""
    import pickle

    from igb.ensemble.summary import versions

    assert b"torch.torch_version" not in pickle.dumps(versions())
    assert np.asarray(_arguments(tmp_path)[0]).dtype == np.float64
