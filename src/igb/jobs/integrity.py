"""Whether a job folder's records agree on which configuration made them.

A folder's identity is recorded three times: ``config.yaml`` (readable, what the analysis
labels the job with), ``config_hash`` in ``status.json`` and the same hash in the saved
partial results: a training job's ``checkpoints/last.ckpt``, an unfinished ensemble's blocks
of initializations ``partial/<first>-<last>.npz`` (:func:`igb.jobs.identity.config_hash`).
Losing or damaging one of them must not let a relaunch resume, skip or relabel the folder as
another configuration: :func:`folder_damage` says, in one line naming the file, when the
records are damaged or disagree, and :func:`recorded_hashes` gives what a launch is checked
against when ``config.yaml`` is gone. Each record the job wrote must also match the
fingerprint that ``last.ckpt`` or a finished job's ``status.json`` holds of it
(:mod:`igb.jobs.records`). The job runner refuses such a folder before touching it (the way
out is ``restart=true``); ``multirun_analysis`` lists it as ``damaged``. An unfinished
ensemble's block that cannot be read is no such refusal, a relaunch evaluates it again, but
the analysis lists the job ``damaged`` too (:func:`block_damage`). Checkpoints are read
with ``weights_only=True`` (:func:`igb.compat.load_checkpoint`): nothing in a job folder is
unpickled as code.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from igb.compat import load_checkpoint
from igb.jobs.identity import config_hash, load_saved_config
from igb.jobs.records import RECORDS_KEY, record_damage
from igb.jobs.status import TERMINAL, JobFolder

#: the key under which the checkpoint and each block of an ensemble record the config hash
CHECKPOINT_KEY = "igb_config_hash"
CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
#: the folder of an unfinished ensemble's blocks of initializations (``<first>-<last>.npz``)
BLOCKS = "partial"
#: files whose presence means a job ran here (a folder with only config.yaml never started);
#: all but the first hold results that a wrong label would misattribute
TRACES = (
    "status.json", "checkpoints/last.ckpt", "metrics.csv", "inits.csv", "summary.json", BLOCKS,
)  # fmt: skip


def last_checkpoint(output_dir: str | os.PathLike[str]) -> Path:
    """The checkpoint a job resumes from: ``<job folder>/checkpoints/last.ckpt``."""
    return Path(output_dir) / CHECKPOINT_DIR / LAST


def checkpoint_zip_damage(path: Path, crc: bool = True) -> str | None:
    """Why ``path`` is not a complete checkpoint (None: it is, or there is none).

    ``torch.save`` writes a zip archive whose directory is at its end: a truncated or
    overwritten file fails to open; ``crc`` also checks every member's CRC (reads the
    whole file, nothing is unpickled)."""
    if not path.exists():
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip() if crc else None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return f"member {bad} fails its CRC check" if bad else None


def checkpoint_meta(path: Path) -> dict[str, Any]:
    """What igb records in a checkpoint: ``igb_config_hash`` and ``igb_records`` ({}: no
    checkpoint, an unreadable one (:func:`checkpoint_zip_damage` says why) or one written
    before they were recorded). Read with ``weights_only=True``, tensors mapped, not read."""
    if not path.is_file():
        return {}
    try:
        ckpt = load_checkpoint(path, mmap=True)
    except Exception:  # noqa: BLE001 - a damaged checkpoint is reported by checkpoint_zip_damage
        return {}
    if not isinstance(ckpt, dict):
        return {}
    return {k: ckpt[k] for k in (CHECKPOINT_KEY, RECORDS_KEY) if k in ckpt}


def checkpoint_hash(path: Path) -> str | None:
    """The configuration hash a checkpoint records (None: none, see :func:`checkpoint_meta`)."""
    value = checkpoint_meta(path).get(CHECKPOINT_KEY)
    return value if isinstance(value, str) else None


def block_paths(folder: Path) -> list[Path]:
    """An ensemble's saved blocks, ``partial/<first>-<last>.npz`` (not a temporary file)."""
    return sorted((Path(folder) / BLOCKS).glob("[0-9]*.npz"))


def read_block(path: Path) -> dict[str, Any]:
    """Every array of a saved block, each read whole: a block cut short or overwritten
    raises here (``BadZipFile``, ``EOFError``, ``zlib.error``, ``ValueError``), so what
    reads a block and what checks one agree on which blocks are unreadable."""
    import numpy as np

    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def block_hashes(folder: Path) -> dict[str, str]:
    """``block -> config hash`` of an ensemble's saved blocks, one block per distinct hash
    (an unreadable block, or one written before hashes were recorded, holds none: the
    ensemble evaluates an unreadable block's initializations again)."""
    out: dict[str, str] = {}
    for path in block_paths(folder):
        try:
            recorded = read_block(path).get(CHECKPOINT_KEY)
        except Exception:  # noqa: BLE001 - BadZipFile, EOFError, ...: evaluated again
            continue
        value = None if recorded is None else str(recorded[()])
        if value and value not in out.values():
            out[str(path)] = value
    return out


def block_damage(folder: Path) -> str | None:
    """One line naming the first block of an unfinished ensemble that cannot be read, and
    why (None: every block reads, or the job is done and its blocks are gone or unused).

    Not a reason to refuse a relaunch, which evaluates that block's initializations again
    (:mod:`igb.ensemble.run`), so :func:`folder_damage` leaves it out; until then the
    results are not all on disk, and ``multirun_analysis`` lists the job ``damaged``."""
    if JobFolder(folder).is_done():  # summary.json and inits.csv hold every block
        return None
    for path in block_paths(folder):
        try:
            read_block(path)
        except Exception as exc:  # noqa: BLE001 - any error reading it is damage
            return (
                f"{path} is damaged ({type(exc).__name__}: {exc}); relaunching the same "
                "command evaluates its initializations again"
            )
    return None


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
    ckpt = last_checkpoint(folder)
    ckpt_hash = checkpoint_hash(ckpt)
    if ckpt_hash:
        out[str(ckpt)] = ckpt_hash
    out.update(block_hashes(folder))
    return out


def folder_damage(folder: Path, crc: bool = True) -> str | None:
    """One line when the folder's records are damaged or disagree (None: they agree, or
    no job ran here). It names the file; the caller adds the way out. ``crc``: check every
    byte of ``last.ckpt`` (a relaunch that resumes from it), not only its zip directory."""
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
    ckpt = last_checkpoint(folder)
    broken = checkpoint_zip_damage(ckpt, crc=crc and not job.is_done())
    if broken:
        return f"{ckpt} is damaged ({broken})"
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
    return fingerprint_damage(folder, job)


def fingerprint_damage(folder: Path, job: JobFolder) -> str | None:
    """The first record that does not match the fingerprint the job keeps of it: a finished
    job's ``status.json`` (every record, none added), else ``last.ckpt`` (metrics.csv up to
    the step a resume continues from)."""
    status = job.read()
    records = status.get(RECORDS_KEY)
    if isinstance(records, dict) and status.get("status") in TERMINAL:
        return record_damage(folder, records, "status.json", exclusive=True)
    in_ckpt = checkpoint_meta(last_checkpoint(folder)).get(RECORDS_KEY)
    if isinstance(in_ckpt, dict):
        return record_damage(folder, in_ckpt, "checkpoints/last.ckpt")
    return None
