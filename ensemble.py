"""Initialization ensembles: ``python ensemble.py model.depth=10 norm=post ensemble.n_inits=1000``.

Writes inits.csv, summary.json (gamma, its bootstrap CI, the regime) and histogram.png
into the job folder; see docs/ensemble.md.
"""

import hydra
from omegaconf import DictConfig

import igb.ensemble
from igb.cli import preflight


@hydra.main(version_base="1.3", config_path="conf", config_name="ensemble")
def main(cfg: DictConfig) -> float:
    return igb.ensemble.run(cfg)


if __name__ == "__main__":
    preflight("ensemble", igb.ensemble.validate_ensemble)
    main()
