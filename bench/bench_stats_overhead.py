"""Epoch time of the default run with and without the statistics callback.

The default run (``python train.py``: MLP on 2000 Gaussian-blob samples 3x32x32,
5 epochs) is built exactly as ``igb.training.run.fit`` builds it, with the CSV logger and the
checkpoint callback; the variants differ only in the ``bias_stats`` callback. An epoch
is the wall time from one epoch start to the next, so it includes every epoch-end
callback (the statistics pass, the checkpoint); the first epoch (warm-up) and the last
(it ends in the one-off test-split measurement) are dropped. Runs of the variants are
interleaved (repeat 1 of each, then repeat 2, ...) so load drift on a shared machine
hits them alike. Reported per variant: median epoch wall time and process CPU time
and their ratios to ``none`` (A/B), and the in-run overhead: within each epoch of a
run with the callback, the time of its epoch-end pass over the rest of that epoch
(paired in time, so load from other processes on a shared machine cannot skew it the
way it skews an A/B of separate runs). The one-off step-0 measurement is reported
apart (extra time from fit start to the first epoch start).

    python bench/bench_stats_overhead.py [--repeats 5] [--variants default full train_samples=500]

Variants: ``none`` (no callback), ``default`` (conf/callbacks/bias_stats.yaml),
``full`` (the whole train split: ``train_samples=null``), or ``KEY=VALUE`` for one
``callbacks.bias_stats`` option (``train_samples=500``).
"""

from __future__ import annotations

import logging
import math
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from common import Opt, compose_cfg, parse_args  # bench/: on sys.path
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from igb.callbacks import BiasStatsCallback
from igb.data.instantiate import instantiate_datamodule
from igb.launch.train_job import factories
from igb.nn import build_model
from igb.training.datamodule import as_lightning
from igb.training.module import IGBModule
from igb.training.run import make_loggers

VARIANTS = {
    "none": ["callbacks.bias_stats=null"],
    "default": [],
    "full": ["callbacks.bias_stats.train_samples=null"],
}


class EpochTimer(L.Callback):
    """Laps between epoch starts (wall and process CPU time); fit start -> first epoch.

    ``wrap(cb)`` also times ``cb.on_train_epoch_end`` (the statistics pass) inside each
    epoch, which gives a paired, in-run overhead that load drift cannot skew.
    """

    def __init__(self) -> None:
        self.starts: list[tuple[float, float]] = []
        self.stats: list[float] = []
        self.t_fit = 0.0

    @staticmethod
    def _now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def wrap(self, cb: L.Callback) -> None:
        inner = cb.on_train_epoch_end

        def timed(trainer, pl_module) -> None:
            t = time.perf_counter()
            inner(trainer, pl_module)
            self.stats.append(time.perf_counter() - t)

        cb.on_train_epoch_end = timed

    def on_fit_start(self, trainer, pl_module) -> None:
        self.t_fit = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.starts.append(self._now())

    @property
    def epochs(self) -> list[float]:
        return [b[0] - a[0] for a, b in zip(self.starts, self.starts[1:], strict=False)]

    @property
    def epochs_cpu(self) -> list[float]:
        return [b[1] - a[1] for a, b in zip(self.starts, self.starts[1:], strict=False)]

    @property
    def in_run_overhead(self) -> list[float]:
        """Per epoch: statistics time / (epoch time without it)."""
        return [s / (e - s) for e, s in zip(self.epochs, self.stats, strict=False)]

    @property
    def to_first_epoch(self) -> float:
        return self.starts[0][0] - self.t_fit


def variant_overrides(name: str) -> list[str]:
    if name in VARIANTS:
        return VARIANTS[name]
    if "=" in name:
        return [f"callbacks.bias_stats.{name}"]
    raise SystemExit(f"unknown variant {name!r}: none | default | full | KEY=VALUE")


def one_run(cfg: DictConfig, dm) -> EpochTimer:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=cfg.seed)
    module = IGBModule(model, instantiate(cfg.optimizer), dm.num_classes)
    timer = EpochTimer()
    callbacks = [
        c
        for c in (factory() for _, factory in factories(cfg.callbacks))
        if not isinstance(c, L.pytorch.callbacks.RichProgressBar)
    ]
    for cb in callbacks:
        if isinstance(cb, BiasStatsCallback):
            timer.wrap(cb)
    csv = OmegaConf.to_container(cfg.logger.csv, resolve=True)
    loggers = make_loggers(factories(OmegaConf.create({"csv": csv})))
    trainer_kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_kwargs.pop("_target_")
    trainer = L.Trainer(
        **trainer_kwargs | {"enable_progress_bar": False},
        callbacks=[timer, *callbacks],
        logger=loggers,
    )
    trainer.fit(module, datamodule=as_lightning(dm))
    return timer


def main() -> None:
    variants_help = ("none | default | full | KEY=VALUE (a callbacks.bias_stats option, e.g. "
                     "train_samples=500)")  # fmt: skip
    args = parse_args(__doc__, repeats=5, variants=Opt(["default", "full"], variants_help),
                      overrides=Opt(None, "extra Hydra overrides for every run", {"nargs": "*"},
                                    positional=True))  # fmt: skip
    for name in ("lightning", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("igb").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats}")
    names = ["none", *[v for v in args.variants if v != "none"]]
    res: dict[str, dict[str, list[float]]] = {
        n: {"wall": [], "cpu": [], "setup": [], "in_run": []} for n in names
    }
    with tempfile.TemporaryDirectory() as tmp:
        dm = None
        for r in range(args.repeats):
            for name in names:
                out = Path(tmp) / f"{name}-{r}"
                cfg = compose_cfg("train", [*args.overrides, *variant_overrides(name)], out)
                if dm is None:
                    dm = instantiate_datamodule(cfg.dataset)
                    dm.setup("fit")
                    print(
                        f"run: {cfg.model.name} depth {cfg.model.depth} width "
                        f"{cfg.model.width}, {dm.describe()['sizes']} points, batch "
                        f"{cfg.dataset.batch_size}, {cfg.trainer.max_epochs} epochs"
                    )
                timer = one_run(cfg, dm)
                # drop the warm-up epoch; the last epoch has no following start: not timed
                res[name]["wall"] += timer.epochs[1:]
                res[name]["cpu"] += timer.epochs_cpu[1:]
                res[name]["in_run"] += timer.in_run_overhead[1:]
                res[name]["setup"].append(timer.to_first_epoch)
    med = {
        n: {k: statistics.median(v) if v else math.nan for k, v in d.items()}
        for n, d in res.items()
    }
    base = med["none"]
    w = max(len(n) for n in names)
    print(
        f"{'variant':<{w}} {'epoch wall ms':>14} {'A/B wall':>9} {'epoch cpu ms':>13} "
        f"{'A/B cpu':>8} {'in-run +%':>10} {'step-0 pass ms':>15}  epochs"
    )
    for name in names:
        m = med[name]
        print(
            f"{name:<{w}} {m['wall'] * 1000:>14.1f} {m['wall'] / base['wall']:>9.3f} "
            f"{m['cpu'] * 1000:>13.1f} {m['cpu'] / base['cpu']:>8.3f} "
            f"{m['in_run'] * 100:>10.1f} {(m['setup'] - base['setup']) * 1000:>15.1f}  "
            f"{len(res[name]['wall'])}"
        )


if __name__ == "__main__":
    main()
