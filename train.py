"""Train one configuration, or a grid with -m: ``python train.py norm=post model=cnn -m``.

Only Hydra is imported before the preflight: a bad key or option is reported in about a
second, before torch and Lightning load (:mod:`igb.launch.entry`).
"""

import hydra
from omegaconf import DictConfig

from igb.launch.entry import launch, lazy


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    # torch and Lightning: once the input is good; exits 1 when the run diverged
    return lazy("igb.launch.train_job:main")(cfg)


if __name__ == "__main__":
    launch("train", main)
