"""Epoch time of the default MLP and CNN runs: Lightning + callbacks vs a hand-written loop.

Same model (same seed), same data tensors, same batch size, same optimizer. Prints the
median epoch time of each and the ratio. Target: Lightning + callbacks within 1.3x.

    python bench/bench_train.py [--epochs 6] [--models mlp cnn]
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
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from igb.data.loader import InMemoryLoader
from igb.module import IGBModule
from igb.nn import build_model
from igb.train import _instantiate_group, instantiate_datamodule

CONF = Path(__file__).resolve().parents[1] / "conf"


class EpochTimer(L.Callback):
    """Wall time from one epoch start to the next: includes every epoch-end callback."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t: float | None = None

    def _lap(self) -> None:
        now = time.perf_counter()
        if self._t is not None:
            self.times.append(now - self._t)
        self._t = now

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._lap()

    def on_train_end(self, trainer, pl_module) -> None:
        self._lap()


def compose_cfg(model: str, out: Path) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}"], return_hydra_config=True)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.runtime.cwd = str(out)
    HydraConfig.instance().set_config(cfg)
    return cfg


def hand_written(cfg: DictConfig, dm, epochs: int) -> list[float]:
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    opt_cfg = OmegaConf.to_container(cfg.optimizer, resolve=True)
    kwargs = {
        k: v for k, v in opt_cfg.items() if k in ("lr", "momentum", "nesterov", "weight_decay")
    }
    opt = get_class(opt_cfg["_target_"])(model.parameters(), **kwargs)
    x, y = dm.split_tensors("train")
    loader = InMemoryLoader(x, y, batch_size=cfg.dataset.batch_size, shuffle=True, seed=0)
    times = []
    model.train()
    for _ in range(epochs):
        t = time.perf_counter()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t)
    return times


def lightning_run(cfg: DictConfig, dm, epochs: int) -> list[float]:
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    module = IGBModule(model, OmegaConf.to_container(cfg.optimizer, resolve=True), dm.num_classes)
    timer = EpochTimer()
    callbacks = [
        c
        for c in _instantiate_group(cfg.callbacks)
        if not isinstance(c, L.pytorch.callbacks.RichProgressBar)
    ]
    loggers = [instantiate(cfg.logger.csv)]
    trainer = L.Trainer(
        **{
            k: v
            for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items()
            if k != "_target_"
        }
        | {"max_epochs": epochs, "enable_progress_bar": False},
        callbacks=[*callbacks, timer],
        logger=loggers,
    )
    trainer.fit(module, datamodule=dm)
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved A/B repeats")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = compose_cfg(name, Path(tmp))
            dm = instantiate_datamodule(cfg.dataset)
            dm.setup("fit")
            hand: list[float] = []
            light: list[float] = []
            for _ in range(args.repeats):  # interleaved, so load from elsewhere hits both
                hand += hand_written(cfg, dm, args.epochs)[1:]
                light += lightning_run(cfg, dm, args.epochs)[1:]
        h, lt = statistics.median(hand), statistics.median(light)
        print(
            f"{name}: hand-written {h * 1000:.1f} ms/epoch, Lightning+callbacks "
            f"{lt * 1000:.1f} ms/epoch, ratio {lt / h:.2f}x "
            f"(median of {len(hand)} epochs, {args.repeats} interleaved repeats)"
        )


if __name__ == "__main__":
    main()
