"""Initialization ensembles: ``python ensemble.py model.depth=10 norm=post ensemble.n_inits=1000``.

Writes inits.csv, summary.json (gamma, its bootstrap CI, the regime) and histogram.png
into the job folder; see docs/ensemble.md.
"""

import hydra
from omegaconf import DictConfig

from igb.launch.preflight import preflight


def validate(cfg: DictConfig) -> object:
    """The ensemble's checks (they import torch: only after every job composed)."""
    from igb.launch.validate_ensemble import validate_ensemble

    return validate_ensemble(cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="ensemble")
def main(cfg: DictConfig) -> float:
    import igb.ensemble  # torch: once the input is known to be good

    return igb.ensemble.run(cfg)


if __name__ == "__main__":
    preflight("ensemble", validate)
    main()
