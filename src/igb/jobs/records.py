"""What ties each record a job writes to that job: its configuration hash and how far it got.

A relaunch resumes from, and the analysis reports, the files in a job folder; a file
dropped in from another run, truncated, cut mid-row or deleted must not pass for this
job's. Each record therefore has a *fingerprint*, a digest of its content salted with the
configuration hash (:func:`igb.jobs.identity.config_hash`), kept where the job keeps its
identity:

- ``checkpoints/last.ckpt`` holds the fingerprint of ``metrics.csv`` up to the
  checkpoint's step (the rows a resume keeps; the row of that step itself may still
  receive values logged after the checkpoint, so it is only required to exist);
- ``status.json`` of a ``finished`` or ``diverged`` job holds the fingerprint of every
  record it wrote (``metrics.csv`` whole, ``inits.csv``, ``summary.json``,
  ``split_shares.json``, ``profile.csv``).

:func:`record_damage` compares a folder's files with a set of fingerprints and says, in one
line naming the file, what does not match (:mod:`igb.jobs.integrity` calls it).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: the field of status.json (and key of the checkpoint) that holds the fingerprints
RECORDS_KEY = "igb_records"
#: the per-step log a resume appends to
METRICS = "metrics.csv"
#: the records written whole, once (named here, not imported: jobs may not import data or
#: ensemble; split_shares.json is igb.data.shares.SHARES_FILE, profile.csv
#: igb.ensemble.run.PROFILE_FILES)
WHOLE = ("inits.csv", "summary.json", "split_shares.json", "profile.csv")
#: every record a fingerprint can be taken of
RECORDS = (METRICS, *WHOLE)


class Unreadable(ValueError):
    """A record that cannot be parsed (binary garbage, a row cut mid-line)."""


def _step(row: Mapping[str, str]) -> float:
    try:
        return float(row.get("step") or "nan")
    except ValueError:
        return float("nan")


def read_rows(path: Path, cut_tail: bool = False) -> list[dict[str, str]]:
    """The rows of a metrics.csv, each with its non-empty values only (a column added
    later, which rewrites the header, does not change the rows before it). A last row cut
    mid-line is :class:`Unreadable`, or, with ``cut_tail`` (a resume, which drops it: a
    kill while it was written), left out."""
    data = Path(path).read_bytes()
    if data and not data.endswith(b"\n"):
        if not cut_tail:
            raise Unreadable("its last row is cut mid-line")
        data = data[: data.rfind(b"\n") + 1]
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not text: {exc.reason} at byte {exc.start}") from None
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise Unreadable(f"not CSV: {exc}") from None
    if rows and "step" not in rows[0]:
        raise Unreadable("no 'step' column")
    return [{k: v for k, v in r.items() if k is not None and v not in (None, "")} for r in rows]


def _digest(config_hash: str, chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256(config_hash.encode())
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()[:16]


def _rows_digest(config_hash: str, rows: list[dict[str, str]]) -> str:
    return _digest(config_hash, (json.dumps(r, sort_keys=True).encode() for r in rows))


def metrics_fingerprint(path: Path, config_hash: str, step: int | None = None) -> dict[str, Any]:
    """``metrics.csv``'s fingerprint: whole (``step`` None), or its rows before ``step``
    (a checkpoint's step) and whether it has a row at ``step`` (which may still receive
    values logged after the checkpoint)."""
    rows = read_rows(path)
    if step is None:
        last = max((int(_step(r)) for r in rows if _step(r) == _step(r)), default=None)
        return {"config_hash": config_hash, "rows": len(rows), "step": last,
                "complete": True, "digest": _rows_digest(config_hash, rows)}  # fmt: skip
    before = [r for r in rows if _step(r) < step]
    at_step = any(_step(r) == step for r in rows)
    return {"config_hash": config_hash, "rows": len(before), "step": int(step), "complete": False,
            "at_step": at_step, "digest": _rows_digest(config_hash, before)}  # fmt: skip


def file_fingerprint(path: Path, config_hash: str) -> dict[str, Any]:
    """A record written whole: its size and a digest of its bytes."""
    data = Path(path).read_bytes()
    return {"config_hash": config_hash, "bytes": len(data), "digest": _digest(config_hash, [data])}


def fingerprints(folder: Path, config_hash: str) -> dict[str, dict[str, Any]]:
    """The fingerprint of every record ``folder`` holds (a job's last word on its files)."""
    folder = Path(folder)
    out: dict[str, dict[str, Any]] = {}
    for name in RECORDS:
        path = folder / name
        if path.is_file():
            take = metrics_fingerprint if name == METRICS else file_fingerprint
            out[name] = take(path, config_hash)
    return out


def _metrics_damage(path: Path, fp: Mapping[str, Any], source: str) -> str | None:
    try:  # a row cut past the checkpoint's rows is what a resume drops
        rows = read_rows(path, cut_tail=not fp.get("complete"))
    except (OSError, Unreadable) as exc:
        return f"{path} is damaged ({exc})"
    step, n = fp.get("step"), int(fp.get("rows", 0))
    if fp.get("complete"):
        kept, reach = rows, None
    else:
        kept = [r for r in rows if _step(r) < int(step)]
        reach = step if fp.get("at_step") else None
    where = f"{source} records {n} rows" + ("" if fp.get("complete") else f" before step {step}")
    if len(kept) < n:
        return f"{path} holds {len(kept)} rows where {where} (truncated)"
    if _rows_digest(str(fp.get("config_hash", "")), kept[:n]) != fp.get("digest"):
        return f"{path} is not this job's ({where}, and they differ: another run's file?)"
    if len(kept) > n:
        return f"{path} holds {len(kept)} rows where {where} (rows added by another run?)"
    if reach is not None and not any(_step(r) >= reach for r in rows):
        return f"{path} ends before step {reach}, where {source} is (truncated)"
    return None


def record_damage(
    folder: Path, records: Mapping[str, Any], source: str, exclusive: bool = False
) -> str | None:
    """One line naming the first record of ``folder`` that does not match ``records``
    (the fingerprints ``source`` holds: ``status.json``, ``last.ckpt``); None: all match.
    ``exclusive``: a record present but not fingerprinted is damage too (a finished job
    fingerprinted everything it wrote)."""
    folder = Path(folder)
    for name, fp in records.items():
        path = folder / name
        if name not in RECORDS or not isinstance(fp, Mapping):
            return f"{folder / source} is damaged ({RECORDS_KEY} entry {name!r} is not a record)"
        if not path.is_file():
            return f"{path} is missing ({source} records it)"
        if name == METRICS:
            problem = _metrics_damage(path, fp, source)
        else:
            try:
                ok = file_fingerprint(path, str(fp.get("config_hash", "")))["digest"] == fp.get(
                    "digest"
                )
            except OSError as exc:
                return f"{path} is unreadable ({exc.strerror or exc})"
            problem = None if ok else f"{path} is not the file this job wrote ({source} says)"
        if problem:
            return problem
    if exclusive:
        for name in RECORDS:
            if name not in records and (folder / name).is_file():
                return f"{folder / name} was not written by this job ({source} does not record it)"
    return None


def config_hashes(records: Mapping[str, Any]) -> set[str]:
    """The configuration hashes the fingerprints were taken with."""
    return {
        str(fp["config_hash"])
        for fp in records.values()
        if isinstance(fp, Mapping) and fp.get("config_hash")
    }
