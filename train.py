"""Train one configuration, or a grid with -m: ``python train.py norm=post model=cnn -m``."""

import hydra
from omegaconf import DictConfig

import igb.train
from igb.cli import preflight
from igb.config import validate


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    return igb.train.run(cfg)


if __name__ == "__main__":
    preflight("train", validate)
    main()
