"""Measure a trained model: ``python eval.py ckpt_path=<job folder or checkpoint>``.

The statistics callback measures it as the training run did (bias statistics, per-class
accuracy and loss on the train subset, val and test splits); the rows go to this run's
own folder (``outputs/eval/runs/<time>/metrics.csv``) and loggers. Only Hydra is imported
before the pre-flight, as for ``train.py``.
"""

import hydra
from omegaconf import DictConfig

from igb.compat import known_run_mode
from igb.launch.preflight import preflight
from igb.launch.quick_exit import skip_final_collection


def validate(cfg: DictConfig) -> object:
    """The checks of :func:`igb.launch.validate.validate_eval` (they import torch)."""
    import lightning  # noqa: F401  (before Hydra's logging: see train.py)

    from igb.launch.validate import validate_eval

    return validate_eval(cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    from igb.launch.eval_job import run  # torch and Lightning: once the input is good

    return run(cfg)


if __name__ == "__main__":
    skip_final_collection()  # igb.launch.quick_exit: the exit skips its last collection
    with known_run_mode(preflight("eval", validate)):  # no composition only to read it
        main()
