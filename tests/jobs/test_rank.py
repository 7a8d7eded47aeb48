"""The process rank read from the environment, as Lightning reads it, without Lightning."""

from __future__ import annotations

import pytest

from igb.jobs.status import RANK_ENV, process_rank

CASES = [
    ({}, 0),
    ({"SLURM_PROCID": "2"}, 2),
    ({"JSM_NAMESPACE_RANK": "4"}, 4),
    ({"LOCAL_RANK": "1", "SLURM_PROCID": "0"}, 1),  # SLURM sets PROCID where it starts none
    ({"RANK": "3", "LOCAL_RANK": "1", "SLURM_PROCID": "0"}, 3),
    ({"SLURM_PROCID": "0", "JSM_NAMESPACE_RANK": "5"}, 0),
]


@pytest.mark.parametrize(("environ", "rank"), CASES)
def test_rank_from_the_environment_agrees_with_lightning(environ, rank, monkeypatch) -> None:
    from lightning.fabric.utilities.rank_zero import _get_rank

    assert process_rank(environ) == rank
    for key in RANK_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert (_get_rank() or 0) == rank  # Lightning's own reading of the same variables
