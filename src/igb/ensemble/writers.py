"""The files of an ensemble job, each written atomically (a reader never sees half a file)."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from igb.ensemble.statistics import EnsembleResult
from igb.jobs.files import atomic_write, atomic_write_text


def write_inits_csv(result: EnsembleResult, path: Path) -> None:
    c = result.num_classes
    header = ["seed", *[f"f_{i}" for i in range(c)], "f_max", "entropy", "bias_degree"]
    header += ["mu2", "s2"]
    mu2 = (result.mu**2).mean(axis=1)
    s2 = result.s2.mean(axis=1)

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for k in range(result.n_inits):
                w.writerow(
                    [
                        int(result.seeds[k]),
                        *(repr(float(v)) for v in result.f[k]),
                        repr(float(result.f_max[k])),
                        repr(float(result.entropy[k])),
                        repr(float(result.bias_degree[k])),
                        repr(float(mu2[k])),
                        repr(float(s2[k])),
                    ]
                )

    atomic_write(path, write)


def write_summary(summary: Mapping[str, Any], path: Path) -> None:
    atomic_write_text(path, json.dumps(summary, indent=2, default=_json))


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
