"""Epoch time of the default MLP and CNN runs: Lightning + callbacks vs a hand-written loop.

Same model (same seed), same data tensors, same batch size, same optimizer. Three runs
per model, interleaved (repeat 1 of each, then repeat 2, ...) so load drift hits all:

- ``hand-written``: the bare training loop (forward, loss, backward, step); it measures
  nothing, so it is the floor;
- ``hand-written + eval``: the same loop plus, after each epoch, the evaluation a study
  needs for the same metrics.csv columns: a forward over the same evaluation points
  (the fixed train subset and the val split, BatchNorm with batch statistics in
  batches of ``callbacks.bias_stats.batch_size``) giving f, accuracy and loss per class;
- ``Lightning+callbacks``: the default run itself, built by ``igb.training.run.build`` as
  ``python train.py`` builds it: every default callback (statistics, progress bar,
  checkpoint policy), the CSV and W&B (offline) loggers.

An epoch is the wall time from one epoch start to the next (every epoch-end pass
included); the first epoch of each run is warm-up and dropped. Printed: the median
epoch of each and the ratios. Target: Lightning + callbacks within 1.3x.

    python bench/bench_train.py [--epochs 6] [--repeats 5] [--models mlp cnn]
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from common import Opt, parse_args  # bench/: on sys.path
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict

from igb.data.instantiate import instantiate_datamodule
from igb.data.loader import InMemoryLoader, LoaderSpec
from igb.jobs.status import JobFolder
from igb.launch.train_job import train_spec
from igb.logging.loggers import finish_loggers
from igb.nn import build_model
from igb.training.datamodule import as_lightning
from igb.training.run import build

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


#: the setting these figures were measured in (the default run until the default blobs
#: became 3x8x8 and log-spaced steps came on): 3x32x32 inputs, epoch-end statistics only
MEASURED_SETTING = [
    "dataset.shape=[3,32,32]",
    "dataset.separation=1.0",
    "callbacks.bias_stats.log_steps=0",
]


def compose_cfg(model: str, out: Path) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        overrides = [f"model={model}", *MEASURED_SETTING]
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.runtime.cwd = str(out)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):  # the task function gets the config without the hydra node
        del cfg["hydra"]
    return cfg


def eval_sets(cfg: DictConfig, dm) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The evaluation points of the default statistics callback: its fixed train subset
    (same seed, same draw) and the whole val split."""
    x, y = dm.split_tensors("train")
    n = cfg.callbacks.bias_stats.train_samples
    if n and n < x.shape[0]:
        g = torch.Generator().manual_seed(cfg.callbacks.bias_stats.subset_seed)
        idx = torch.randperm(x.shape[0], generator=g)[:n].sort().values
        x, y = x[idx], y[idx]
    return [(x, y), dm.split_tensors("val")]


@torch.no_grad()
def hand_evaluate(model: torch.nn.Module, sets, batch_size: int, num_classes: int) -> list:
    """What a hand-written study loop computes per epoch: f, acc and loss per class."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [[b.clone() for b in bn.buffers()] for bn in bns]
    model.train()  # batch statistics (the models have no dropout)
    out = []
    for x, y in sets:
        f = torch.zeros(num_classes)
        correct = torch.zeros(num_classes)
        loss = torch.zeros(num_classes)
        for i in range(0, x.shape[0], batch_size):
            logits, t = model(x[i : i + batch_size]), y[i : i + batch_size]
            pred = logits.argmax(dim=1)
            f += torch.bincount(pred, minlength=num_classes)
            correct += torch.bincount(t, weights=(pred == t).float(), minlength=num_classes)
            loss += torch.bincount(
                t, weights=F.cross_entropy(logits, t, reduction="none"), minlength=num_classes
            )
        count = torch.bincount(y, minlength=num_classes)
        out.append((f / x.shape[0], correct / count, loss / count))
    for bn, buffers in zip(bns, saved, strict=True):
        for b, v in zip(bn.buffers(), buffers, strict=True):
            b.copy_(v)
    return out


def hand_written(cfg: DictConfig, dm, epochs: int, evaluate: bool = False) -> list[float]:
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    opt_cfg = OmegaConf.to_container(cfg.optimizer, resolve=True)
    kwargs = {
        k: v for k, v in opt_cfg.items() if k in ("lr", "momentum", "nesterov", "weight_decay")
    }
    opt = get_class(opt_cfg["_target_"])(model.parameters(), **kwargs)
    x, y = dm.split_tensors("train")
    spec = LoaderSpec(batch_size=cfg.dataset.batch_size, shuffle=True, seed=0)
    loader = InMemoryLoader(x, y, spec)
    sets = eval_sets(cfg, dm)
    times = []
    model.train()
    for _ in range(epochs):
        t = time.perf_counter()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if evaluate:
            hand_evaluate(model, sets, cfg.callbacks.bias_stats.batch_size, dm.num_classes)
            model.train()
        times.append(time.perf_counter() - t)
    return times


def lightning_run(cfg: DictConfig, epochs: int, out: Path) -> list[float]:
    """The default run as ``python train.py`` runs it (``igb.training.run.build``: every default
    callback, CSV + W&B offline loggers, the last.ckpt policy), timed per epoch."""
    out.mkdir(parents=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.trainer.max_epochs = epochs
    timer = EpochTimer()
    spec = train_spec(cfg)  # as the launch builds it (igb.launch.train_job)
    trainer, module, dm, loggers = build(spec, JobFolder(out), extra_callbacks=[timer])
    try:
        trainer.fit(module, datamodule=as_lightning(dm))
    finally:
        finish_loggers(loggers)
    return timer.times


def main() -> None:
    args = parse_args(__doc__, whole_doc=True, epochs=6, models=["mlp", "cnn"],
                      repeats=Opt(5, "interleaved repeats"))  # fmt: skip
    os.environ.setdefault("WANDB_MODE", "offline")  # never an online run from a benchmark
    os.environ.setdefault("WANDB_SILENT", "true")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = compose_cfg(name, Path(tmp))
            runs = iter(range(10**6))
            dm = instantiate_datamodule(cfg.dataset)
            dm.setup("fit")
            hand: list[float] = []
            hand_eval: list[float] = []
            light: list[float] = []
            for _ in range(args.repeats):  # interleaved, so load from elsewhere hits all
                hand += hand_written(cfg, dm, args.epochs)[1:]
                hand_eval += hand_written(cfg, dm, args.epochs, evaluate=True)[1:]
                light += lightning_run(cfg, args.epochs, Path(tmp) / f"run{next(runs)}")[1:]
        h, he, lt = (statistics.median(v) for v in (hand, hand_eval, light))
        print(
            f"{name}: median of {len(hand)} epochs ({args.repeats} interleaved repeats)\n"
            f"  hand-written         {h * 1000:7.1f} ms/epoch\n"
            f"  hand-written + eval  {he * 1000:7.1f} ms/epoch  (the evaluation: "
            f"{(he - h) / h:+.0%})\n"
            f"  Lightning+callbacks  {lt * 1000:7.1f} ms/epoch\n"
            f"  ratio Lightning+callbacks / hand-written: {lt / h:.2f}x; "
            f"/ hand-written + eval: {lt / he:.2f}x"
        )


if __name__ == "__main__":
    main()
