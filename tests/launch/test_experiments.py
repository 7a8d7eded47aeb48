"""The authors' study files (conf/experiment/authors_*.yaml): every one composes, its grid
expands, and the first and last job of the grid pass the preflight (meta-device build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from igb.launch.preflight import compose_job, expand_jobs
from igb.launch.validate import validate

CONF = Path(__file__).resolve().parents[2] / "conf"
STUDIES = sorted(p.stem for p in (CONF / "experiment").glob("authors_*.yaml"))
ENSEMBLES = {
    "authors_mlp_ensembles",
    "authors_mlp_ensembles_offline",
    "authors_swin",
    "authors_swin_offline",
    "authors_resnet101",
    "authors_resnet101_offline",
}
#: studies that are not binary: TinyImageNet's 200 classes, their twins' 10 blobs
CLASSES = {
    "authors_swin": 200,
    "authors_resnet101": 200,
    "authors_swin_offline": 10,
    "authors_resnet101_offline": 10,
}


def test_every_real_data_study_has_an_offline_twin() -> None:
    real = [s for s in STUDIES if not s.endswith("_offline")]
    assert len(real) == 8
    assert all(f"{s}_offline" in STUDIES for s in real)


@pytest.mark.parametrize("study", STUDIES)
def test_study_grid_expands_and_its_ends_validate(study: str) -> None:
    entry = "ensemble" if study in ENSEMBLES else "train"
    jobs = expand_jobs(entry, [f"experiment={study}"], multirun=True)
    assert len(jobs) > 1
    for job in (jobs[0], jobs[-1]):
        cfg = compose_job(entry, job)
        facts = validate(cfg, check_data=study.endswith("_offline"))
        assert facts["num_classes"] == CLASSES.get(study, 2)  # else binary
