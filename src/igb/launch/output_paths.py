"""Where a launch may write: never a system folder, never out of the output root by its name.

A job folder receives ``config.yaml``, ``status.json``, checkpoints and a restart's
``.discarded/``; a sweep folder one folder per job. Pointed at ``/``, ``/etc`` or the home
folder itself (``hydra.run.dir=/``, ``hydra.sweep.dir=$HOME``), a launch run as a user with
the rights to write there would scatter them among the system's files; a ``task_name`` such
as ``../../etc`` would carry the default folders (``<paths.log_dir>/<task_name>/...``) out of
the output root. :func:`output_path_problem` refuses both before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path

#: folders whose insides belong to the system: no job writes below them
SYSTEM_TREES = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin",
    "/sys", "/usr",
)  # fmt: skip
#: folders that hold others' folders: a job may write below them, never into them directly
SHARED_FOLDERS = ("/", "/home", "/mnt", "/media", "/opt", "/root", "/run", "/srv", "/tmp", "/var")


def _inside(path: Path, tree: str) -> bool:
    return path == Path(tree) or Path(tree) in path.parents


def system_folder(folder: str | os.PathLike[str]) -> str | None:
    """Why ``folder`` is no place for a job's files (None: it is one)."""
    path = Path(os.path.realpath(folder))
    for tree in SYSTEM_TREES:
        if _inside(path, tree):
            return f"it is inside the system folder {tree}"
    shared = {Path(f) for f in SHARED_FOLDERS} | {Path(os.path.realpath(Path.home()))}
    if path in shared:
        return "it is a system or home folder itself"
    return None


def task_name_problem(task_name: object) -> str | None:
    """``task_name`` names one folder under ``paths.log_dir``: no separators, not ``..``."""
    name = str(task_name)
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        return (
            f"task_name={name} is not a folder name: it would place the outputs outside "
            "paths.log_dir; use a plain name (letters, digits, '-', '_', '.')"
        )
    return None


def output_path_problem(task_name: object, folder: Path, multirun: bool) -> str | None:
    """One line when a launch would write where it must not (None: it may)."""
    problem = task_name_problem(task_name)
    if problem:
        return problem
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    target = folder.parent if multirun else folder
    why = system_folder(target)
    if why:
        return f"{key}={target} is refused: {why}; name a folder of your own (e.g. under outputs/)"
    return None
