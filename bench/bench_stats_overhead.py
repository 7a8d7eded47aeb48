"""Epoch time of the default run with and without the statistics callback.

The default run (``python train.py``: MLP on 2000 Gaussian-blob samples 3x32x32,
5 epochs) is built exactly as ``igb.train.fit`` builds it, with the CSV logger and the
checkpoint callback; the variants differ only in the ``bias_stats`` callback. An epoch
is the wall time from one epoch start to the next, so it includes every epoch-end
callback (the statistics pass, the checkpoint); the first epoch (warm-up) and the last
(it ends in the one-off test-split measurement) are dropped. Runs of the variants are
interleaved (repeat 1 of each, then repeat 2, ...) so load drift on a shared machine
hits them alike; the reported figure is the ratio of medians. The one-off step-0
measurement is reported apart (time from fit start to the first epoch start).

    python bench/bench_stats_overhead.py [--repeats 5] [--variants default full]

Variants: ``none`` (no callback), ``default`` (conf/callbacks/bias_stats.yaml),
``full`` (the whole train split: ``train_samples=null``).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from igb.module import IGBModule
from igb.nn import build_model
from igb.train import _instantiate_group, instantiate_datamodule

CONF = Path(__file__).resolve().parents[1] / "conf"
VARIANTS = {
    "none": ["callbacks.bias_stats=null"],
    "default": [],
    "full": ["callbacks.bias_stats.train_samples=null"],
}


class EpochTimer(L.Callback):
    """Laps between epoch starts; ``setup_time``: fit start -> first epoch start."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.t_fit: float | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.t_fit = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.starts.append(time.perf_counter())

    @property
    def epochs(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:], strict=False)]

    @property
    def to_first_epoch(self) -> float:
        return self.starts[0] - self.t_fit


def compose_cfg(out: Path, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.hydra.runtime.output_dir = str(out)
    HydraConfig.instance().set_config(cfg)
    return cfg


def one_run(cfg: DictConfig, dm) -> EpochTimer:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    module = IGBModule(model, OmegaConf.to_container(cfg.optimizer, resolve=True), dm.num_classes)
    timer = EpochTimer()
    callbacks = [
        c
        for c in _instantiate_group(cfg.callbacks)
        if not isinstance(c, L.pytorch.callbacks.RichProgressBar)
    ]
    csv = OmegaConf.to_container(cfg.logger.csv, resolve=True)
    loggers = _instantiate_group(OmegaConf.create({"csv": csv}))
    trainer_kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_kwargs.pop("_target_")
    trainer = L.Trainer(
        **trainer_kwargs | {"enable_progress_bar": False},
        callbacks=[timer, *callbacks],
        logger=loggers,
    )
    trainer.fit(module, datamodule=dm)
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=["default", "full"], choices=VARIANTS)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    for name in ("lightning", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("igb").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats}")
    names = ["none", *[v for v in args.variants if v != "none"]]
    epochs: dict[str, list[float]] = {n: [] for n in names}
    setup: dict[str, list[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        dm = None
        for r in range(args.repeats):
            for name in names:
                out = Path(tmp) / f"{name}-{r}"
                cfg = compose_cfg(out, [*args.overrides, *VARIANTS[name]])
                if dm is None:
                    dm = instantiate_datamodule(cfg.dataset)
                    dm.setup("fit")
                    print(
                        f"default run: {cfg.model.name} depth {cfg.model.depth} width "
                        f"{cfg.model.width}, {dm.describe()['sizes']} points, batch "
                        f"{cfg.dataset.batch_size}, {cfg.trainer.max_epochs} epochs"
                    )
                timer = one_run(cfg, dm)
                epochs[name] += timer.epochs[1:]  # drop the warm-up epoch
                setup[name].append(timer.to_first_epoch)
    base = statistics.median(epochs["none"])
    base_setup = statistics.median(setup["none"])
    print(f"{'variant':<8} {'epoch ms (median)':>18} {'ratio':>7} {'step-0 pass ms':>15}  n")
    for name in names:
        med = statistics.median(epochs[name])
        extra0 = (statistics.median(setup[name]) - base_setup) * 1000
        print(
            f"{name:<8} {med * 1000:>18.1f} {med / base:>7.3f} {extra0:>15.1f}  {len(epochs[name])}"
        )


if __name__ == "__main__":
    main()
