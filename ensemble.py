"""Initialization ensembles: ``python ensemble.py model.depth=10 norm=post ensemble.n_inits=1000``.

Writes inits.csv, summary.json (gamma, its bootstrap CI, the regime) and histogram.png
into the job folder; see docs/ensemble.md.
"""

import sys

import hydra
from omegaconf import DictConfig

from igb.compat import known_run_mode
from igb.ensemble import figure_worker
from igb.errors import ConfigError
from igb.launch.preflight import preflight
from igb.launch.quick_exit import skip_final_collection
from igb.launch.shards import shard_argv


def validate(cfg: DictConfig) -> object:
    """The ensemble's checks (they import torch: only after every job composed)."""
    from igb.launch.validate_ensemble import validate_ensemble

    return validate_ensemble(cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="ensemble")
def main(cfg: DictConfig) -> float:
    from igb.launch.ensemble_job import run  # torch: once the input is known to be good

    return run(cfg)


if __name__ == "__main__":
    skip_final_collection()  # igb.launch.quick_exit: the exit skips its last collection
    figure_worker.start()  # matplotlib loads in parallel with torch (igb.ensemble.figure_worker)
    try:  # -m ensemble.shards=K: K jobs of one job folder (igb.launch.shards)
        sys.argv[1:] = shard_argv(sys.argv[1:])
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    with known_run_mode(preflight("ensemble", validate)):  # no composition only to read it
        main()
