"""Copies of a real job folder to damage, and what a relaunch must leave as it was."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_job(source: Path, name: str) -> Path:
    """A copy of the job folder ``source`` beside it, named ``name``."""
    target = source.parent / name
    shutil.copytree(source, target)
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file a job keeps (not Hydra's per-launch ``.hydra/``, the log, the lock)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and ".hydra" not in p.parts and p.suffix != ".log"
            and p.name != ".igb.lock"}  # fmt: skip
