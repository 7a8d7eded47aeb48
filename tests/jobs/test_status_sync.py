"""A job's status.json reaches the disk before the job goes on: a node crash must not take
back a status (a ``finished`` job rerun, a ``running`` one lost).

A real ensemble job runs in this process with ``os.fsync`` and ``os.replace`` observed (each
still does its work): every rename onto status.json must be of a file synced before it,
and the folder must be synced after it (the rename itself is a change of the folder).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from igb import ensemble as ens

ENSEMBLE = ["ensemble.n_inits=8", "ensemble.progress=false", "ensemble.n_boot=50",
            "ensemble.theory=false", "dataset.num_samples=300", "dataset.shape=[10]",
            "ensemble.eval_samples=100"]  # fmt: skip


def test_every_status_write_syncs_the_file_then_its_folder(
    make_cfg, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, int, bool | str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        real_fsync(fd)
        events.append(("fsync", info.st_ino, stat.S_ISDIR(info.st_mode)))

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str], **kw: int) -> None:
        inode = os.stat(src).st_ino
        real_replace(src, dst, **kw)
        events.append(("replace", inode, os.fspath(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    cfg = make_cfg(*ENSEMBLE, name="ensemble")
    ens.run(cfg)

    folder = Path(cfg.paths.output_dir)
    status_file = folder / "status.json"
    assert json.loads(status_file.read_text())["status"] == "finished"
    folder_inode = folder.stat().st_ino
    writes = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(status_file)]
    assert len(writes) >= 3  # the new attempt, running, finished
    assert events[writes[-1]][1] == status_file.stat().st_ino  # the file read now
    for at in writes:  # atomic_write: sync the file, rename it, sync the folder
        assert events[at - 1] == ("fsync", events[at][1], False), events[at - 1 : at + 2]
        assert events[at + 1] == ("fsync", folder_inode, True), events[at - 1 : at + 2]
