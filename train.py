"""Train one configuration, or a grid with -m: ``python train.py norm=post model=cnn -m``.

Only Hydra is imported before the preflight: a bad key or option is reported in about a
second, before torch and Lightning load.
"""

import hydra
from omegaconf import DictConfig

from igb.compat import known_run_mode
from igb.launch.preflight import preflight
from igb.launch.quick_exit import skip_final_collection


def validate(cfg: DictConfig) -> object:
    """The semantic checks of :mod:`igb.launch.validate` (they import torch: after composition).

    Lightning is imported here, before Hydra sets up logging: it then keeps its own console
    handler (one line per message); imported after, its lines would also reach Hydra's.
    """
    import lightning  # noqa: F401

    from igb.launch.validate import validate as check

    return check(cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from igb.launch.train_job import main as train  # torch, Lightning: once the input is good

    return train(cfg)  # exits 1 when the run diverged, as a grid holding it does


if __name__ == "__main__":
    skip_final_collection()  # igb.launch.quick_exit: the exit skips its last collection
    with known_run_mode(preflight("train", validate)):  # no composition only to read it
        main()
