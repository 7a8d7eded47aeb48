"""Train one configuration, or a grid with -m: ``python train.py norm=post model=cnn -m``.

Only Hydra is imported before the preflight: a bad key or option is reported in about a
second, before torch and Lightning load.
"""

import hydra
from omegaconf import DictConfig

from igb.cli import preflight


def validate(cfg: DictConfig) -> object:
    """The semantic checks of :mod:`igb.config` (they import torch: after composition)."""
    from igb.config import validate as check

    return check(cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    import igb.train  # torch and Lightning: once the input is known to be good

    return igb.train.run(cfg)


if __name__ == "__main__":
    preflight("train", validate)
    main()
