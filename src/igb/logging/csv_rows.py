"""``metrics.csv`` with one row per optimizer step and columns in natural order.

Several writers log at the same step: at an epoch end the statistics callback (train/val
statistics) and the module (running loss), after training the test statistics and
``test/acc``. Lightning's CSV writer gives each call its own row and sorts columns as
text (``f_rank/10`` before ``f_rank/2``). :class:`StepRowsFile` merges the rows of one
step into one (also across flushes: the file's last row is rewritten in place) and
orders columns ``epoch``, ``step``, then by name with numbers compared as numbers.

Within a step the first ``epoch`` logged wins: Lightning stamps the test rows with
``current_epoch``, which after fit is ``max_epochs``, one past the last epoch trained.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

#: columns that lead every row, in this order
LEADING = ("epoch", "step")
_NUMBER = re.compile(r"(\d+)")


def column_key(name: str) -> tuple[Any, ...]:
    """Sort key: ``epoch``, ``step`` first, then natural order (``f/2`` before ``f/10``)."""
    if name in LEADING:
        return (0, LEADING.index(name))
    parts = _NUMBER.split(name)
    return (1, *((0, int(p)) if p.isdigit() else (1, p) for p in parts))


def merge_by_step(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive rows of the same ``step`` merged into one (the first ``epoch`` kept)."""
    merged: list[dict[str, Any]] = []
    for row in rows:
        if merged and same_step(merged[-1], row):
            merged[-1] = merge_two(merged[-1], row)
        else:
            merged.append(dict(row))
    return merged


def same_step(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two rows are of one step (a row read back from the file holds strings)."""
    try:
        return float(a["step"]) == float(b["step"])
    except (KeyError, TypeError, ValueError):
        return False


def merge_two(first: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
    """``later``'s values over ``first``'s, except an ``epoch`` that ``first`` already has."""
    out = {**first, **{k: v for k, v in later.items() if v not in (None, "")}}
    if first.get("epoch") not in (None, ""):
        out["epoch"] = first["epoch"]
    return out


class StepRowsFile:
    """Append-only CSV of one row per step; the last row is rewritten when its step logs
    again (a truncate and one row, not a rewrite of the file)."""

    def __init__(self, path: str, fields: Iterable[str] = ()) -> None:
        self.path = path
        self.fields = list(fields)  # an existing file's header, in its order
        #: byte offset where the file's last row starts, and that row (None: no row)
        self._tail: tuple[int, dict[str, Any]] | None = self._read_tail()

    def _read_tail(self) -> tuple[int, dict[str, Any]] | None:
        """An existing file's last row (a resumed job may log again at its step)."""
        if not os.path.isfile(self.path):
            return None
        with open(self.path, "rb") as file:
            data = file.read()
        lines = data.splitlines(keepends=True)
        if len(lines) < 2:
            return None
        text = (lines[0] + lines[-1]).decode()
        return len(data) - len(lines[-1]), next(csv.DictReader(io.StringIO(text, newline="")))

    def write(self, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Append ``rows`` (merged by step, and into the file's last row when it has the
        same step); returns the header. A new column rewrites the file with a new header."""
        rows = merge_by_step(rows)
        if not rows:
            return self.fields
        if self._tail is not None and same_step(self._tail[1], rows[0]):
            offset, last = self._tail
            rows[0] = merge_two(last, rows[0])
            with open(self.path, "r+b") as file:
                file.truncate(offset)
            self._tail = None
        new = {k for row in rows for k in row} - set(self.fields)
        if new or not os.path.isfile(self.path):
            self._rewrite(sorted({*self.fields, *new}, key=column_key))
        with open(self.path, "ab") as file:
            for i, row in enumerate(rows):
                if i == len(rows) - 1:
                    self._tail = (file.tell(), row)
                file.write(self._encode(row))
        return self.fields

    def _encode(self, row: Mapping[str, Any]) -> bytes:
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=self.fields, lineterminator="\r\n").writerow(row)
        return buffer.getvalue().encode()

    def _rewrite(self, fields: list[str]) -> None:
        old: list[dict[str, str]] = []
        if os.path.isfile(self.path):
            with open(self.path, newline="") as file:
                old = list(csv.DictReader(file))
        self.fields = fields
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=fields, lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(old)
        os.replace(tmp, self.path)
        self._tail = None  # write() sets it again for the row it appends last
