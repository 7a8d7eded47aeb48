"""A CSV logger whose ``metrics.csv`` survives a resumed job.

Lightning's ``CSVLogger`` deletes ``metrics.csv`` when its folder is not empty, which a
resumed job's folder never is. :class:`ResumableCSVLogger` keeps the file, appends to it,
and on resume drops only the rows past the checkpoint step
(:meth:`ResumableCSVLogger.keep_rows_until`, called by :class:`igb.jobs.checkpoint.ResumeCallback`),
so a job interrupted any number of times leaves the same rows as one that never was.

It overrides a private hook of Lightning's writer and uses private attributes of the writer
and the logger: they are listed, with the version they were checked against, in
:mod:`igb.compat` (``tests/test_compat.py`` checks them).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from typing import Any

from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from igb.logging.csv_rows import StepRowsFile

log = logging.getLogger(__name__)


class AppendingExperimentWriter(ExperimentWriter):
    """Lightning's writer, minus deleting an existing metrics file: its header is reused."""

    #: whether the file's last row was cut mid-line when last read (dropped on resume)
    cut_tail = False

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            self.metrics_keys = self._read()[0]  # the file's column order
        # one row per step, natural column order (igb.logging.csv_rows)
        self._rows = StepRowsFile(self.metrics_file_path, self.metrics_keys)

    def save(self) -> None:
        """Write the buffered rows merged by step (see igb.logging.csv_rows)."""
        if self.metrics:
            self.metrics_keys = self._rows.write(self.metrics)
            self.metrics = []

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        """The file's header and rows; a last row cut mid-line (a kill while it was being
        written, after the last checkpoint) is left out, and :attr:`cut_tail` says so."""
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            text = file.read()
        self.cut_tail = bool(text) and not text.endswith("\n")
        if self.cut_tail:
            text = text[: text.rfind("\n") + 1]
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
        return list(reader.fieldnames or []), rows

    def keep_rows_until(self, step: int | None) -> int:
        """Drop the on-disk rows past ``step`` (all rows when ``step`` is None); returns how
        many were dropped. Rows still buffered in memory (this attempt's) are kept."""
        if not self._fs.isfile(self.metrics_file_path):
            return 0
        fields, rows = self._read()
        if step is None:
            self._fs.rm_file(self.metrics_file_path)
            self.metrics_keys = []
            self._rows = StepRowsFile(self.metrics_file_path)
            return len(rows)
        kept = [r for r in rows if _step(r) <= step]
        if len(kept) < len(rows) or self.cut_tail:
            tmp = self.metrics_file_path + ".tmp"
            with self._fs.open(tmp, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=fields)
                writer.writeheader()
                writer.writerows(kept)
            os.replace(tmp, self.metrics_file_path)
        self._rows = StepRowsFile(self.metrics_file_path, fields)  # its new tail
        return len(rows) - len(kept)


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or "nan")
    except ValueError:
        return math.nan


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` that appends to an existing ``metrics.csv`` instead of deleting it.

    Same arguments as Lightning's; ``flush_logs_every_n_steps`` defaults to 1 here (a
    flush with nothing new logged costs nothing), so a hard kill loses at most the rows
    of the step in progress.
    """

    def __init__(self, *args: Any, flush_logs_every_n_steps: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, flush_logs_every_n_steps=flush_logs_every_n_steps, **kwargs)

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingExperimentWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment

    @property
    def metrics_path(self) -> str | None:
        """The metrics file of this logger (None outside global rank 0, which writes it)."""
        if rank_zero_only.rank != 0:
            return None
        return self.experiment.metrics_file_path

    @rank_zero_only
    def keep_rows_until(self, step: int | None) -> None:
        """On resume from a checkpoint at ``step``: drop the rows past it. ``None`` (a fit
        from scratch): start a fresh file."""
        dropped = self.experiment.keep_rows_until(step)
        if dropped and step is None:
            log.info("metrics.csv: training starts from scratch; %d earlier rows removed", dropped)
        elif dropped:
            log.info("metrics.csv: dropped %d rows past the resume step %d", dropped, step)
