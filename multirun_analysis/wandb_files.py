"""Read a W&B run back from its files on disk: no network, no wandb server, no wandb login.

wandb (offline or online) writes every run as an append-only transaction log
``<dir>/wandb/{offline-,}run-<time>-<id>/run-<id>.wandb``. wandb 0.31 ships no Python reader
for it (the old ``wandb.sdk.internal.datastore`` is gone; the writer lives in the Go
``wandb-core``), so this module reads it itself. The format:

* a 7-byte header: ``b":W&B"``, the magic ``0xBEE1`` (uint16 little-endian), version ``0``;
* then LevelDB-log framing in 32 KiB blocks, counted from the start of the file (the header
  takes the first 7 bytes of block 0). Each chunk is ``crc32: uint32 LE``, ``length: uint16 LE``,
  ``type: uint8`` (1 full, 2 first, 3 middle, 4 last) and ``length`` payload bytes; a chunk
  never crosses a block, and a block tail shorter than 7 bytes is zero padding.
  **CRC:** unlike LevelDB (masked CRC-32C), wandb writes the plain, unmasked CRC-32/IEEE
  (``zlib.crc32``) of the type byte followed by the payload (``leveldb.CRCAlgoIEEE`` in
  wandb-core; checked on every chunk of files written by wandb 0.31). It is verified here.
* each record (the payloads of one full chunk, or of first..last chunks joined) is a
  ``wandb.proto.wandb_internal_pb2.Record``.

What ``read_run`` extracts: the ``run`` record (id, entity, project, group, job type, tags,
name, initial config), ``config`` updates, ``history`` rows, ``summary`` updates, ``metric``
records (``define_metric``), ``artifact`` records (name, type, aliases, file paths; logged
tables are artifacts too), the ``exit`` record and wandb's version (``header`` record).

Values: history, summary and config values are stored as JSON text (``value_json``) and, with
``x_history_value_encoding="json,typed"``, also as typed scalars for history; the typed value is
preferred (it keeps ``1.0`` a float), else the JSON is decoded (``NaN``/``Infinity`` included).
A key is either ``key`` or a path ``nested_key``: ``run.log({"a": {"b": 1}})`` is stored as
``nested_key=["a", "b"]`` and read back nested, ``{"a": {"b": 1}}``; ``"igb/train/f/0"`` is a
single key (slashes are not split). ``history_frame`` flattens nested dicts to ``"a.b"`` columns.

Config is kept as W&B stores it: one entry per top-level key, each decoded from JSON, so a
nested config (``{"model": {"depth": 3}}``) stays a nested dict (not ``"model.depth"``); wandb's
internal ``_wandb`` entry is dropped from config and summary.

Damage: a chunk with a wrong CRC, an impossible length or type, broken chunk sequencing, an
undecodable record or a bad file header raises ``ValueError`` naming the file and byte offset.
A file that merely stops early (a run still being written, or a copy cut short) yields every
complete record; ``WandbRun.complete`` is then False and ``WandbRun.end_offset`` says where the
incomplete tail starts (``strict=True`` raises instead).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from igb.compat import wandb_record_module
from multirun_analysis.wandb_framing import BLOCK_SIZE, scan

if TYPE_CHECKING:
    import pandas as pd
    from wandb.proto.wandb_internal_pb2 import Record

__all__ = [
    "BLOCK_SIZE",
    "WandbRun",
    "find_run_dirs",
    "flatten",
    "history_frame",
    "iter_records",
    "read_run",
]


@dataclass
class WandbRun:
    """One W&B run as read from its ``run-*.wandb`` file (see the module doc for the format)."""

    path: Path
    run_id: str | None = None
    project: str | None = None
    entity: str | None = None
    group: str | None = None
    job_type: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    #: top-level key -> decoded value; nested dicts stay nested; ``_wandb`` dropped
    config: dict[str, Any] = field(default_factory=dict)
    #: one dict per logged row, with wandb's ``_step``, ``_runtime``, ``_timestamp``
    history: list[dict[str, Any]] = field(default_factory=list)
    #: final summary (last value of each key unless set explicitly); ``_wandb`` dropped
    summary: dict[str, Any] = field(default_factory=dict)
    #: define_metric records in order: name, glob_name, step_metric, step_sync, hidden,
    #: summary (aggregations), goal, expanded_from_glob
    metrics: list[dict[str, Any]] = field(default_factory=list)
    #: logged artifacts: name, type, aliases and the paths of their files
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    #: None until the run has finished (no ``exit`` record yet)
    exit_code: int | None = None
    start_time: float | None = None
    wandb_version: str | None = None
    #: False when the file ends inside a record (run still being written, or cut short)
    complete: bool = True
    #: byte offset just after the last complete record
    end_offset: int = 0

    @property
    def finished(self) -> bool:
        return self.exit_code is not None


# --------------------------------------------------------------------------- finding runs


def _wandb_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob("run-*.wandb") if p.is_file())


def find_run_dirs(root: str | os.PathLike[str]) -> list[Path]:
    """Every ``offline-run-*`` / ``run-*`` folder under ``root`` (recursive), sorted by path.

    Only folders holding a ``run-*.wandb`` file count; symlinks (wandb's ``latest-run``) are
    neither returned nor followed. ``root`` may itself be a run folder.
    """
    root = Path(root)
    found: list[Path] = []
    candidates = [root] if root.is_dir() else []
    for dirpath, dirnames, _ in os.walk(root, followlinks=False):
        candidates.extend(Path(dirpath, d) for d in dirnames)
    for path in candidates:
        if path.is_symlink() or not path.name.startswith(("offline-run-", "run-")):
            continue
        if _wandb_files(path):
            found.append(path)
    return sorted(found)


def _resolve_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.is_dir():
        files = _wandb_files(path)
        if not files:
            raise FileNotFoundError(f"no run-*.wandb file in {path} (see find_run_dirs)")
        if len(files) > 1:
            raise ValueError(f"{path} holds several .wandb files: {[f.name for f in files]}")
        return files[0]
    if not path.exists():
        raise FileNotFoundError(path)
    return path


def _records(path: Path, strict: bool) -> tuple[list[tuple[int, Record]], int | None, int]:
    from google.protobuf.message import DecodeError

    pb = wandb_record_module()

    data = path.read_bytes()
    name = str(path)
    payloads, tail = scan(data, name)
    if tail is not None and strict:
        raise ValueError(
            f"{name}: offset {tail}: file ends inside a record "
            "(run still being written, or the file was cut short)"
        )
    out = []
    for offset, payload in payloads:
        record = pb.Record()
        try:
            record.ParseFromString(payload)
        except DecodeError as e:
            raise ValueError(f"{name}: offset {offset}: undecodable record: {e}") from e
        out.append((offset, record))
    return out, tail, len(data)


def iter_records(path: str | os.PathLike[str], *, strict: bool = False) -> Iterator[Record]:
    """Every complete ``wandb_internal_pb2.Record`` in a ``.wandb`` file (or run folder)."""
    records, _, _ = _records(_resolve_file(path), strict)
    for _, record in records:
        yield record


# --------------------------------------------------------------------------- values


def _decode_json(text: str) -> Any:
    return json.loads(text) if text else None


def _history_value(item: Any) -> Any:
    try:
        kind = item.WhichOneof("value")
    except ValueError:  # a wandb whose HistoryItem has no typed values: JSON only
        kind = None
    if kind is None:
        return _decode_json(item.value_json)
    if kind == "none":
        return None
    if kind == "json":
        return _decode_json(item.json)
    return getattr(item, kind)


def _path(item: Any) -> list[str]:
    return list(item.nested_key) if item.nested_key else [item.key]


def _set(target: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        nxt = target.get(key)
        if not isinstance(nxt, dict):
            nxt = target[key] = {}
        target = nxt
    target[path[-1]] = value


def _remove(target: dict[str, Any], path: list[str]) -> None:
    for key in path[:-1]:
        target = target.get(key)
        if not isinstance(target, dict):
            return
    target.pop(path[-1], None)


def _apply(target: dict[str, Any], record: Any) -> None:
    """Apply a ConfigRecord / SummaryRecord (update + remove items) to a dict."""
    for item in record.update:
        _set(target, _path(item), _decode_json(item.value_json))
    for item in record.remove:
        _remove(target, _path(item))


def _metric(m: Any) -> dict[str, Any]:
    goal = type(m).MetricGoal.Name(m.goal).removeprefix("GOAL_").lower()
    return {
        "name": m.name or m.glob_name,
        "glob_name": m.glob_name or None,
        "step_metric": m.step_metric or None,
        "step_sync": m.options.step_sync,
        "hidden": m.options.hidden,
        "summary": [f.name for f, v in m.summary.ListFields() if v is True],
        "goal": None if goal == "unset" else goal,
        "expanded_from_glob": m.expanded_from_glob,
    }


def flatten(d: dict[str, Any], sep: str = ".", prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": 2}`` -> ``{"a.b": 1, "c": 2}`` (empty dicts are kept as values)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        full = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, sep, full))
        else:
            out[full] = value
    return out


# --------------------------------------------------------------------------- reading a run


def read_run(path: str | os.PathLike[str], *, strict: bool = False) -> WandbRun:
    """Read a run from its folder (``offline-run-*``/``run-*``) or its ``run-*.wandb`` file.

    Raises ValueError (naming the file and offset) when the file is corrupt, and, with
    ``strict=True``, when it ends inside a record; otherwise a partly written file gives
    every complete record with ``complete=False``.
    """
    file = _resolve_file(path)
    records, tail, size = _records(file, strict)
    run = WandbRun(path=file, complete=tail is None, end_offset=size if tail is None else tail)
    for _, record in records:
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _set(row, _path(item), _history_value(item))
            if "_step" not in row and record.history.HasField("step"):
                row["_step"] = record.history.step.num
            run.history.append(row)
        elif kind == "summary":
            _apply(run.summary, record.summary)
        elif kind == "config":
            _apply(run.config, record.config)
        elif kind == "metric":
            run.metrics.append(_metric(record.metric))
        elif kind == "run":
            r = record.run
            for attr, value in (
                ("run_id", r.run_id),
                ("project", r.project),
                ("entity", r.entity),
                ("group", r.run_group),
                ("job_type", r.job_type),
                ("name", r.display_name),
            ):
                if value:
                    setattr(run, attr, value)
            if r.tags:
                run.tags = list(r.tags)
            if r.HasField("start_time"):
                run.start_time = r.start_time.seconds + r.start_time.nanos / 1e9
            _apply(run.config, r.config)
            _apply(run.summary, r.summary)
        elif kind == "artifact":
            a = record.artifact
            files = sorted(e.path for e in a.manifest.contents)
            run.artifacts.append(
                {"name": a.name, "type": a.type, "aliases": list(a.aliases), "files": files}
            )
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
        elif kind == "header":
            run.wandb_version = record.header.version_info.producer or None
    run.config.pop("_wandb", None)
    run.summary.pop("_wandb", None)
    return run


def history_frame(run: WandbRun | str | os.PathLike[str]) -> pd.DataFrame:
    """The history as a DataFrame: one row per logged row, nested keys flattened to ``a.b``.

    Keys missing from a row are NaN. Columns keep first-seen order.
    """
    import pandas as pd

    if not isinstance(run, WandbRun):
        run = read_run(run)
    return pd.DataFrame([flatten(row) for row in run.history])
