"""Initialization ensembles: ``python ensemble.py model.depth=10 norm=post ensemble.n_inits=1000``.

Writes inits.csv, summary.json (gamma, its bootstrap CI, the regime) and histogram.png
into the job folder; see docs/ensemble.md.
"""

import sys

import hydra
from omegaconf import DictConfig

from igb.ensemble import figure_worker
from igb.errors import ConfigError
from igb.launch.entry import launch, lazy
from igb.launch.shards import shard_argv


@hydra.main(version_base="1.3", config_path="conf", config_name="ensemble")
def main(cfg: DictConfig) -> float:
    return lazy("igb.launch.ensemble_job:run")(cfg)  # torch: once the input is known to be good


if __name__ == "__main__":
    figure_worker.start()  # matplotlib loads in parallel with torch (igb.ensemble.figure_worker)
    try:  # -m ensemble.shards=K: K jobs of one job folder (igb.launch.shards)
        sys.argv[1:] = shard_argv(sys.argv[1:])
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    launch("ensemble", main)
