"""Run the real entry points (``train.py``, ``ensemble.py``) as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: an ensemble of 8 blocks of 20 initializations that a signal can stop once its first block
#: is on disk: the seven blocks left take long enough on one core that the signal sent
#: then arrives while blocks remain even on a loaded machine
STOPPABLE_ENSEMBLE = (
    "model.depth=4",
    "model.width=256",
    "dataset.num_samples=2000",
    "dataset.num_classes=2",
    "dataset.shape=[256]",
    "ensemble.n_inits=160",
    "ensemble.eval_samples=1500",
    "ensemble.batch_size=500",
    "ensemble.progress=false",
    "ensemble.workers=1",
)


def run_entry(
    script: str,
    *argv: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: int = 600,
    entry_dir: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """``python <entry_dir>/<script> *argv`` in ``cwd``, output captured as text. Results go
    under ``cwd`` (``IGB_ROOT``); W&B stays offline; ``env`` adds to (or overrides) the
    environment."""
    full = {**os.environ, "IGB_ROOT": str(cwd), "WANDB_MODE": "offline", **(env or {})}
    return subprocess.run(
        [sys.executable, str(entry_dir / script), *argv],
        cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
