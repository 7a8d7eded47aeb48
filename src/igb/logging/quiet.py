"""Silence Lightning's chatter that says nothing about an igb run (no Lightning import)."""

from __future__ import annotations

import logging
import warnings

#: Lightning chatter that says nothing about this run (our loaders shard themselves,
#: validation is measured by the statistics callback, srun is only on PATH).
_QUIET = (
    r".*`srun` command is available.*",
    r".*val_dataloader` but have no `validation_step.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)


def quiet_lightning() -> None:
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    # the "try litlogger" tip and accelerator inventory are INFO lines of this logger
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
