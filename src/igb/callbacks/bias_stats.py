"""The statistics callback: initial bias at step 0, per-epoch and log-spaced statistics.

It is the one source of ``{split}/acc`` and ``{split}/loss`` for the train and val
evaluation sets (the module logs only running training values and ``test/*``), so
step 0, log-spaced steps and epoch ends are all measured the same way:

- through :func:`igb.metrics.measure.batch_stat_mode` (``norm_mode="batch"``: BatchNorm with
  batch statistics, no running-stat updates, no gradients; ``"eval"``: plain eval mode),
- on consecutive batches of ``batch_size`` points of a fixed evaluation set (the train
  split, or a fixed seeded subset of ``train_samples`` of it, and the val split),
- sharded across DDP ranks by whole batches (:func:`igb.metrics.measure.batches`), the
  torchmetrics states reduced on ``compute()``, so the result equals one process's.

Rows go straight to every logger (``logger.log_metrics(row, step=global_step)``, global
rank 0 only), each with ``epoch``; the keys are listed in ``docs/metrics_schema.md``.
The class ranking is fixed at step 0 (rank 1 = largest step-0 train ``f_c``) and kept
in the callback's state, so a run resumed from a checkpoint keeps it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch

from igb import SPLITS
from igb.callbacks import wandb_panels
from igb.callbacks.overlap import overlaps, parameter_vector
from igb.callbacks.progress import measurement_progress
from igb.callbacks.schedule import log_spaced_steps
from igb.metrics import BiasStatistics, ranked_fractions
from igb.metrics.measure import NORM_MODES, batch_norms, batch_stat_mode, batches

log = logging.getLogger(__name__)

#: the test split's keys the module logs itself (eval mode), not the callback
MODULE_KEYS = ("test/acc", "test/loss")
#: columns of the end-of-training per-class table (W&B)
TABLE_COLUMNS = ("class", "name", "rank0", "f0_train", "train_acc", "val_acc", "test_acc")


def flatten_stats(split: str, stats: dict[str, Any], order: Sequence[int]) -> dict[str, float]:
    """One split's ``BiasStatistics.compute()`` as logged scalars (the key schema).

    ``order[k-1]`` is the class of step-0 rank ``k``; ``f_rank/{k}`` and ``acc_rank/{k}``
    follow that fixed ranking, ``f/{c}``, ``acc_class/{c}``, ``loss_class/{c}`` the class
    index ``c``. ``{split}/acc``, ``{split}/loss`` and the per-class keys need targets.
    """
    f = stats["f"].tolist()
    row = {
        f"igb/{split}/f_max": float(stats["f_max"]),
        f"igb/{split}/entropy": float(stats["entropy"]),
        f"igb/{split}/bias_degree": float(stats["bias_degree"]),
    }
    row.update({f"igb/{split}/f/{c}": float(v) for c, v in enumerate(f)})
    row.update({f"igb/{split}/f_rank/{k}": float(f[c]) for k, c in enumerate(order, start=1)})
    if "acc" in stats:
        acc_class = stats["acc_class"].tolist()
        row[f"{split}/acc"] = float(stats["acc"])
        row[f"{split}/loss"] = float(stats["loss"])
        row.update({f"{split}/acc_class/{c}": float(v) for c, v in enumerate(acc_class)})
        row.update({f"{split}/loss_class/{c}": float(v) for c, v in enumerate(stats["loss_class"])})
        row.update(
            {f"{split}/acc_rank/{k}": float(acc_class[c]) for k, c in enumerate(order, start=1)}
        )
    return row


class BiasStatsCallback(L.Callback):
    """Measure f, bias degree, accuracy and loss (overall and per class) over training.

    Every argument is required: their values live in ``conf/callbacks/bias_stats.yaml``
    alone, so a default here could only disagree with it.

    Args:
        splits: evaluation sets measured at step 0, after every epoch and at the
            log-spaced steps (``train``, ``val``).
        test_at_end: also measure the test split once after training (per-class
            ``test/acc_class``; ``test/acc``/``test/loss`` stay the module's).
        batch_size: points per measurement batch (the batch of the batch statistics).
        norm_mode: ``batch`` (BatchNorm uses batch statistics) or ``eval``.
        train_samples: measure a fixed seeded subset of this many train points
            (``None``: the whole train split). ``val``/``test`` are always whole.
        subset_seed: seed of that subset.
        log_steps: number of extra measurement points log-spaced over optimizer steps
            ``[1, estimated_stepping_batches]`` (0: epoch ends only).
        charts: W&B step-0 bar chart/histogram and end-of-training class table.
        progress_min_batches: passes of at least this many batches get a progress line
            (a task of a live RichProgressBar, else a display of their own).
        weight_overlap: also log ``train/weight_overlap`` = ``w0 . wt`` of the unit-norm
            vector of all trainable parameters with its step-0 value (the authors'
            ``w0_wt_dot``), and ``train/weight_overlap/<group>`` per top-level submodule
            (:mod:`igb.callbacks.overlap`). No forward pass; the step-0 vector is kept in
            the callback state (checkpoints).
    """

    def __init__(
        self,
        *,
        splits: Sequence[str],
        test_at_end: bool,
        batch_size: int,
        norm_mode: str,
        train_samples: int | None,
        subset_seed: int,
        log_steps: int,
        charts: bool,
        progress_min_batches: int,
        weight_overlap: bool,
    ) -> None:
        super().__init__()
        splits = tuple(splits)
        unknown = [s for s in splits if s not in SPLITS]
        if unknown or not splits or len(set(splits)) != len(splits):
            raise ValueError(f"splits={list(splits)}: a non-empty subset of {list(SPLITS)}")
        if norm_mode not in NORM_MODES:
            raise ValueError(f"norm_mode={norm_mode!r}; allowed: {', '.join(NORM_MODES)}")
        if batch_size < 1 or (norm_mode == "batch" and batch_size < 2):
            raise ValueError(f"batch_size={batch_size}: need >= 2 for batch statistics")
        if train_samples is not None and train_samples < 2:
            raise ValueError(f"train_samples={train_samples} must be >= 2 or null")
        if log_steps < 0:
            raise ValueError(f"log_steps={log_steps} must be >= 0")
        self.splits = splits
        self.test_at_end = bool(test_at_end)
        self.batch_size = int(batch_size)
        self.norm_mode = norm_mode
        self.train_samples = None if train_samples is None else int(train_samples)
        self.subset_seed = int(subset_seed)
        self.log_steps = int(log_steps)
        self.charts = bool(charts)
        self.progress_min_batches = int(progress_min_batches)
        self.weight_overlap = bool(weight_overlap)
        #: step-0 parameter vector (CPU), kept in state_dict
        self.w0: torch.Tensor | None = None
        # filled in on_train_start
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._metrics: dict[str, BiasStatistics] = {}
        self._schedule: set[int] = set()
        self.class_names: list[str] = []
        self.num_classes = 0
        # kept in state_dict (a resumed run keeps its step-0 ranking)
        self.rank_order: list[int] | None = None
        self.f0_train: list[float] | None = None
        self.last_step = -1
        #: the step-0 row (igb/*, acc, loss), for the end-of-run summary
        self.initial: dict[str, float] = {}
        #: latest computed statistics per split (for the final table and for tests)
        self.latest: dict[str, dict[str, Any]] = {}

    # -- state ----------------------------------------------------------------------------
    @property
    def state_key(self) -> str:
        # Lightning formats it for every hook call of every batch: build it once
        key = self.__dict__.get("_state_key")
        if key is None:
            key = self._generate_state_key(splits=self.splits, norm_mode=self.norm_mode)
            self.__dict__["_state_key"] = key
        return key

    def state_dict(self) -> dict[str, Any]:
        return {
            "rank_order": self.rank_order,
            "f0_train": self.f0_train,
            "last_step": self.last_step,
            "initial": self.initial,
            "w0": self.w0,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rank_order = state_dict.get("rank_order")
        self.f0_train = state_dict.get("f0_train")
        self.last_step = int(state_dict.get("last_step", -1))
        self.initial = dict(state_dict.get("initial") or {})
        self.w0 = state_dict.get("w0")

    # -- what the measurement is, for the logged config ----------------------------------------
    def measurement_config(self) -> dict[str, Any]:
        return {
            "norm_mode": self.norm_mode,
            "batch_size": self.batch_size,
            "splits": list(self.splits),
            "eval_sizes": {s: int(x.shape[0]) for s, (x, _) in self._data.items()},
            "train_samples": self.train_samples,
            "subset_seed": self.subset_seed,
            "log_steps": self.log_steps,
            "schedule": sorted(self._schedule),
            "class_names": list(self.class_names),
        }

    # -- setup ------------------------------------------------------------------------------
    def _prepare(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "split_tensors"):
            raise TypeError(
                "BiasStatsCallback needs a datamodule with split_tensors(split) "
                "(igb.data.InMemoryDataModule); got "
                f"{type(dm).__name__ if dm is not None else 'no datamodule'}"
            )
        self.num_classes = int(dm.num_classes)
        names = list(getattr(dm, "class_names", None) or [])
        self.class_names = (
            names if len(names) == self.num_classes else [str(c) for c in range(self.num_classes)]
        )
        wanted = set(self.splits) | ({"test"} if self.test_at_end else set())
        self._data = {}
        for split in SPLITS:
            if split not in wanted:
                continue
            x, y = dm.split_tensors(split)
            if x.shape[0] == 0:
                log.warning("bias_stats: the %s split is empty; not measured", split)
                continue
            if split == "train" and self.train_samples and self.train_samples < x.shape[0]:
                g = torch.Generator().manual_seed(self.subset_seed)
                idx = torch.randperm(x.shape[0], generator=g)[: self.train_samples].sort().values
                x, y = x[idx], y[idx]
            self._data[split] = (x, y)
        self._metrics = {
            s: BiasStatistics(self.num_classes).to(pl_module.device) for s in self._data
        }
        total = trainer.estimated_stepping_batches if self.log_steps else 0
        if self.log_steps and not math.isfinite(total):
            log.warning("bias_stats: log_steps needs a finite number of steps; ignored")
            total = 0
        self._schedule = set(log_spaced_steps(self.log_steps, int(total or 0)))

    # -- measuring --------------------------------------------------------------------------
    def measure(self, trainer: L.Trainer, pl_module: L.LightningModule, split: str) -> dict:
        """``BiasStatistics.compute()`` of the model on one evaluation set, as configured."""
        return self.measure_splits(trainer, pl_module, [split])[split]

    def measure_splits(
        self, trainer: L.Trainer, pl_module: L.LightningModule, splits: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """:meth:`measure` of several evaluation sets, in one ``batch_stat_mode`` (entering
        it saves and restores every BatchNorm buffer: once per measurement, not per set)."""
        device = pl_module.device
        out: dict[str, dict[str, Any]] = {}
        with (
            batch_stat_mode(pl_module, self.norm_mode),
            trainer.precision_plugin.val_step_context(),
        ):
            for split in splits:
                x, y = self._data[split]
                metric = self._metrics[split]
                metric.reset()
                slices = batches(
                    x.shape[0], self.batch_size, trainer.global_rank, trainer.world_size
                )
                what = f"bias stats {split} @ step {trainer.global_step}"
                with measurement_progress(
                    trainer, what, len(slices), self.progress_min_batches
                ) as advance:
                    for s in slices:
                        logits = pl_module(x[s].to(device, non_blocking=True))
                        metric.update(logits.float(), y[s].to(device, non_blocking=True))
                        advance()
                out[split] = self.latest[split] = metric.compute()
        return out

    def _measure_and_log(
        self, trainer: L.Trainer, pl_module: L.LightningModule, splits: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        step = self.logged_step(trainer)
        measured = self.measure_splits(trainer, pl_module, [s for s in splits if s in self._data])
        if self.rank_order is None:  # step 0 (or a resumed run from before this callback)
            ref = "train" if "train" in measured else next(iter(measured))
            _, order = ranked_fractions(measured[ref]["f"])
            self.rank_order = [int(c) for c in order.tolist()]
            self.f0_train = [float(v) for v in measured[ref]["f"].tolist()]
        row: dict[str, float] = {}
        for split, stats in measured.items():
            row.update(flatten_stats(split, stats, self.rank_order))
        if self.weight_overlap:
            if self.w0 is None:
                self.w0 = parameter_vector(pl_module).cpu()
            row.update(overlaps(pl_module, self.w0))
        # the sweeper objective and checkpoint monitors read these
        trainer.callback_metrics.update(
            {
                k: torch.tensor(v)
                for k, v in row.items()
                if k.count("/") == 1 and k.split("/")[0] in self.splits
            }
        )
        self.last_step = step
        if step == 0:
            self.initial = dict(row)
        self._log_row(trainer, row)
        return measured

    def logged_step(self, trainer: L.Trainer) -> int:
        """The step a measurement is logged at: the trainer's optimizer step."""
        return trainer.global_step

    def logged_epoch(self, trainer: L.Trainer) -> int:
        """The epoch a measurement's row carries."""
        return trainer.current_epoch

    def _log_row(self, trainer: L.Trainer, row: dict[str, float]) -> None:
        if trainer.is_global_zero and row:
            row["epoch"] = self.logged_epoch(trainer)
            for lg in trainer.loggers:
                lg.log_metrics(row, step=self.logged_step(trainer))

    def log_test(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Measure the test split once, per class (``test/acc``, ``test/loss``: the module's)."""
        if "test" not in self._data:
            return
        stats = self.measure(trainer, pl_module, "test")
        row = flatten_stats("test", stats, self.rank_order or list(range(self.num_classes)))
        self._log_row(trainer, {k: v for k, v in row.items() if k not in MODULE_KEYS})

    def log_class_table(self, trainer: L.Trainer) -> None:
        """W&B: the per-class table of the latest measurements (``charts``)."""
        runs = wandb_panels.wandb_runs(trainer) if self.charts else []
        if runs:
            rows = self.class_table(self.latest)
            for run in runs:
                wandb_panels.log_class_table(run, TABLE_COLUMNS, rows, self.logged_step(trainer))

    # -- hooks --------------------------------------------------------------------------------
    def start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Choose the evaluation sets and tell the loggers how they are measured."""
        self._prepare(trainer, pl_module)
        config = self.measurement_config()
        if trainer.is_global_zero:
            for lg in trainer.loggers:
                lg.log_hyperparams({"measurement": config})
            for run in wandb_panels.wandb_runs(trainer):
                wandb_panels.define_step_axis(run, SPLITS)
        return config

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        config = self.start(trainer, pl_module)
        log.info(
            "bias_stats: %s batch_size=%d eval sizes %s, %d log-spaced steps",
            # norm_mode only means something for a model with BatchNorm
            f"norm_mode={self.norm_mode}" if batch_norms(pl_module) else "no BatchNorm,",
            self.batch_size,
            config["eval_sizes"],
            len(self._schedule),
        )
        if trainer.global_step > 0:  # resumed: step 0 was measured by the first attempt
            if self.rank_order is None:
                log.warning("bias_stats: resumed without a step-0 ranking; ranking by now")
            return
        measured = self._measure_and_log(trainer, pl_module, self.splits)
        if self.charts:
            for run in wandb_panels.wandb_runs(trainer):
                for split, stats in measured.items():
                    n = int(self._data[split][0].shape[0])
                    wandb_panels.log_initial_charts(
                        run, split, stats["f"].tolist(), n, self.class_names, step=0
                    )

    def on_train_batch_end(
        self, trainer: L.Trainer, model: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step not in self._schedule or step == self.last_step:
            return
        if batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch-end measurement takes this step
        self._measure_and_log(trainer, model, self.splits)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if getattr(pl_module, "diverged", None) is not None:
            return  # see on_train_end
        if trainer.global_step != self.last_step:
            self._measure_and_log(trainer, pl_module, self.splits)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a diverged run stopped at the step whose loss was not finite: nothing is measured
        # (or logged) past that step
        diverged = getattr(pl_module, "diverged", None) is not None
        if self.test_at_end and not diverged:
            self.log_test(trainer, pl_module)
        self.log_class_table(trainer)

    def class_table(self, final: dict[str, dict[str, Any]]) -> list[list[Any]]:
        """Rows of (class, name, step-0 rank, step-0 train f, final train/val/test acc)."""
        order = self.rank_order or list(range(self.num_classes))
        rank = {c: k for k, c in enumerate(order, start=1)}
        f0 = self.f0_train or [math.nan] * self.num_classes

        def acc(split: str, c: int) -> float:
            stats = final.get(split)
            return float(stats["acc_class"][c]) if stats and "acc_class" in stats else math.nan

        return [
            [c, self.class_names[c], rank[c], f0[c], *(acc(s, c) for s in ("train", "val", "test"))]
            for c in range(self.num_classes)
        ]
