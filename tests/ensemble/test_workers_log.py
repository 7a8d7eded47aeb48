"""ensemble.workers=auto follows torch's thread count; when OMP_NUM_THREADS sets it, the
log says so (OMP_NUM_THREADS=1 silently meant one initialization at a time)."""

from __future__ import annotations

import logging

import pytest
import torch

from igb.ensemble.resolve import resolve_workers


def test_auto_workers_name_omp_num_threads(monkeypatch, caplog) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    with caplog.at_level(logging.INFO, logger="igb.ensemble.resolve"):
        assert resolve_workers("auto", torch.device("cpu")) == max(1, threads)
    assert "OMP_NUM_THREADS=1" in caplog.text and "ensemble.workers=N" in caplog.text


def test_explicit_workers_say_nothing(monkeypatch, caplog) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with caplog.at_level(logging.INFO, logger="igb.ensemble.resolve"):
        assert resolve_workers(3, torch.device("cpu")) == 3
    assert caplog.text == ""
    with pytest.raises(Exception, match="positive integer"):
        resolve_workers(0, torch.device("cpu"))
