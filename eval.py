"""Measure a trained model: ``python eval.py ckpt_path=<job folder or checkpoint>``.

The statistics callback measures it as the training run did (bias statistics, per-class
accuracy and loss on the train subset, val and test splits); the rows go to this run's
own folder (``outputs/eval/runs/<time>/metrics.csv``) and loggers. Only Hydra is imported
before the pre-flight, as for ``train.py``.
"""

import hydra
from omegaconf import DictConfig

from igb.launch.entry import launch, lazy


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    return lazy("igb.launch.eval_job:run")(cfg)  # torch and Lightning: once the input is good


if __name__ == "__main__":
    launch("eval", main)
