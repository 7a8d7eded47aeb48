"""Whether a job folder's records agree on which configuration made them.

A folder's identity is recorded three times: ``config.yaml`` (readable, what the analysis
labels the job with), ``config_hash`` in ``status.json`` and the same hash in the saved
partial results: a training job's ``checkpoints/last.ckpt``, an unfinished ensemble's blocks
of initializations ``partial/<first>-<last>.npz`` (:func:`igb.jobs.identity.config_hash`).
Losing or damaging one of them must not let a relaunch resume, skip or relabel the folder as
another configuration: :func:`folder_damage` says, in one line naming the file, when the
records are damaged or disagree, and :func:`recorded_hashes` gives what a launch is checked
against when ``config.yaml`` is gone. The job runner refuses such a folder (the way out is
``restart=true``); ``multirun_analysis`` lists it as ``damaged``.
"""

from __future__ import annotations

from pathlib import Path

from igb.jobs.identity import config_hash, load_saved_config
from igb.jobs.status import JobFolder

#: the key under which the checkpoint and each block of an ensemble record the config hash
CHECKPOINT_KEY = "igb_config_hash"
#: the folder of an unfinished ensemble's blocks of initializations (``<first>-<last>.npz``)
BLOCKS = "partial"
#: files whose presence means a job ran here (a folder with only config.yaml never started);
#: all but the first hold results that a wrong label would misattribute
TRACES = (
    "status.json", "checkpoints/last.ckpt", "metrics.csv", "inits.csv", "summary.json", BLOCKS,
)  # fmt: skip


def checkpoint_hash(path: Path) -> str | None:
    """The configuration hash a checkpoint records (None: no checkpoint, an unreadable one
    (the resume's own check reports it) or one written before hashes were recorded)."""
    if not path.is_file():
        return None
    import torch

    try:  # mmap: only the pickled dict is read, not the tensors
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # noqa: BLE001 - a damaged checkpoint is reported by check_checkpoint
        return None
    value = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
    return value if isinstance(value, str) else None


def block_hashes(folder: Path) -> dict[str, str]:
    """``block -> config hash`` of an ensemble's saved blocks, one block per distinct hash
    (an unreadable block, or one written before hashes were recorded, holds none: the
    ensemble evaluates an unreadable block's initializations again)."""
    import numpy as np

    out: dict[str, str] = {}
    for path in sorted((Path(folder) / BLOCKS).glob("[0-9]*.npz")):
        try:
            with np.load(path) as data:
                value = str(data[CHECKPOINT_KEY][()]) if CHECKPOINT_KEY in data else None
        except (OSError, ValueError, KeyError):
            continue
        if value and value not in out.values():
            out[str(path)] = value
    return out


def recorded_hashes(folder: Path) -> dict[str, str]:
    """``file -> config hash`` of every record that holds one."""
    folder = Path(folder)
    out: dict[str, str] = {}
    saved = load_saved_config(folder)
    if saved is not None and "<config.yaml>" not in saved:
        out[str(folder / "config.yaml")] = config_hash(saved)
    status_hash = JobFolder(folder).read().get("config_hash")
    if status_hash:
        out[str(folder / "status.json")] = status_hash
    ckpt = folder / "checkpoints" / "last.ckpt"
    ckpt_hash = checkpoint_hash(ckpt)
    if ckpt_hash:
        out[str(ckpt)] = ckpt_hash
    out.update(block_hashes(folder))
    return out


def folder_damage(folder: Path) -> str | None:
    """One line when the folder's records are damaged or disagree (None: they agree, or
    no job ran here). It names the file; the caller adds the way out."""
    folder = Path(folder)
    if not any((folder / name).exists() for name in TRACES):
        return None
    job = JobFolder(folder)
    damage = job.damage()
    if damage:
        return f"{job.status_file} is damaged ({damage})"
    saved = load_saved_config(folder)
    if saved is not None and "<config.yaml>" in saved:
        return f"{folder / 'config.yaml'} is damaged ({saved['<config.yaml>']})"
    hashes = recorded_hashes(folder)
    if len(set(hashes.values())) > 1:
        listed = ", ".join(f"{Path(f).name} {h}" for f, h in hashes.items())
        return f"the records of {folder} name different configurations ({listed})"
    results = any((folder / name).exists() for name in TRACES[1:]) or job.is_done()
    if saved is None and not hashes and results:  # results nothing can attribute
        return (
            f"{folder / 'config.yaml'} is missing and no other record (status.json, "
            "last.ckpt, partial/ blocks) says which configuration ran here"
        )
    return None
