"""In-memory datasets: load once, split with a seed, standardise with train stats.

Plain objects with the LightningDataModule hooks (``setup``, ``*_dataloader``), without
importing Lightning: ensembles and the theory use them and start as fast as torch. Training
hands them to Lightning through :class:`igb.training.datamodule.LightningData`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from igb import SPLITS
from igb.data.classes import ClassSelection
from igb.data.loader import InMemoryLoader
from igb.data.shares import class_counts
from igb.errors import ConfigError, JobError, one_line

#: ``_load`` returns (x_train, y_train, x_test | None, y_test | None)
Arrays = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not in ``dataset.data_dir`` and downloading is off.

    The message is one line: the key ``dataset.data_dir``, the path, the files expected
    there, and ``set dataset.download=true to fetch it``.
    """


class DatasetCorruptedError(JobError):
    """The dataset's files are there but fail the published checksums, cannot be read, or
    hold inputs or labels of the wrong shape or range (one-line message naming the key)."""


def require_config(ok: bool, key: str, message: str) -> None:
    """Raise a one-line :class:`ConfigError` naming ``key`` unless ``ok``."""
    if not ok:
        raise ConfigError(key, message)


class InMemoryDataModule:
    """Base class: subclasses implement :meth:`_load`; splitting, standardisation and
    loaders are shared.

    Splits (seeded by ``seed`` through a ``torch.Generator``): without an official test
    split the pool is shuffled and cut into test (``test_fraction``), val
    (``val_fraction``) and train (the rest); with one, val comes out of the shuffled train
    pool and ``test_fraction`` is unused. ``subset`` keeps only the first ``subset`` samples
    of the shuffled pool before it is cut (the official test split stays whole).

    Standardisation (``standardize=True``): mean and std per channel (dimension 1 of
    image-like ``(N, C, ...)`` data) or per feature (flat ``(N, D)`` data), computed on the
    train split only and applied to all three; a (near-)constant channel is only centred.

    Classes (:class:`~igb.data.classes.ClassSelection`): ``classes`` keeps (a list of
    ids) or merges (a list of lists) the source classes, relabelled ``0..k-1`` in the
    order given, before anything is split; ``class_proportions`` then keeps that fraction
    of each class of the train split only (val and test stay as drawn). ``num_classes``
    is the source dataset's count; :attr:`num_classes` the resulting one.

    Shift: ``shift`` is added to every input of every split after standardisation (the
    authors' data shift: a non-zero input mean is itself a source of initial bias).

    Loaders: :class:`~igb.data.loader.InMemoryLoader` over the split tensors, sharded by
    the attached trainer's ``global_rank``/``world_size``. The train loader shuffles
    (seed ``seed``, reshuffled each epoch) and drops a trailing batch of exactly one
    sample, because BatchNorm cannot normalise a single sample in training mode; val and
    test loaders keep order and every sample, with ``eval_batch_size``.
    """

    #: input shape / class count / class names known before loading (None: from config)
    INPUT_SHAPE: tuple[int, ...] | None = None
    NUM_CLASSES: int | None = None
    CLASS_NAMES: tuple[str, ...] | None = None

    def __init__(
        self,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        standardize: bool = True,
        data_dir: str = "data",
        download: bool = False,
        num_classes: int | None = None,
        subset: int | None = None,
        classes: list[Any] | None = None,
        class_proportions: list[float] | None = None,
        shift: float = 0.0,
    ) -> None:
        #: set by Lightning (through LightningData) to shard the loaders by rank
        self.trainer: Any = None
        require_config(
            int(batch_size) >= 1,
            "dataset.batch_size",
            f"dataset.batch_size={batch_size} must be >= 1",
        )
        require_config(
            eval_batch_size is None or int(eval_batch_size) >= 1,
            "dataset.eval_batch_size",
            f"dataset.eval_batch_size={eval_batch_size} must be >= 1 (or null: batch_size)",
        )
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            require_config(
                0.0 <= float(value) < 1.0,
                f"dataset.{key}",
                f"dataset.{key}={value} must be in [0, 1)",
            )
        require_config(
            float(val_fraction) + float(test_fraction) < 1.0,
            "dataset.val_fraction",
            f"dataset.val_fraction + dataset.test_fraction = {val_fraction} + {test_fraction} "
            "must be < 1 (something must be left to train on)",
        )
        require_config(
            subset is None or int(subset) >= 1,
            "dataset.subset",
            f"dataset.subset={subset} must be a positive number of samples (or null: all)",
        )
        if self.NUM_CLASSES is not None and num_classes is not None:
            require_config(
                int(num_classes) == self.NUM_CLASSES,
                "dataset.num_classes",
                f"dataset.num_classes={num_classes} but {type(self).__name__} has "
                f"{self.NUM_CLASSES} classes",
            )
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size) if eval_batch_size else self.batch_size
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.seed = int(seed)
        self.standardize = bool(standardize)
        self.data_dir = str(data_dir)
        self.download = bool(download)
        self._num_classes = None if num_classes is None else int(num_classes)
        self.subset = None if subset is None else int(subset)
        finite = isinstance(shift, int | float) and not isinstance(shift, bool)
        require_config(
            finite and math.isfinite(shift),
            "dataset.shift",
            f"dataset.shift={shift!r} must be a finite number",
        )
        self.shift = float(shift)
        self.selection = ClassSelection.from_config(
            classes, class_proportions, self.source_num_classes()
        )
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        #: names of the source dataset's classes (:attr:`class_names`: the resulting ones)
        self.source_class_names: list[str] = list(self.CLASS_NAMES or [])
        #: standardisation statistics (broadcastable against a batch), None when off
        self.x_mean: torch.Tensor | None = None
        self.x_std: torch.Tensor | None = None

    # -- what subclasses provide -------------------------------------------------------
    def _load(self) -> Arrays:
        """(x_train, y_train, x_test | None, y_test | None): float inputs, long labels."""
        raise NotImplementedError

    def expected_files(self) -> list[Path]:
        """Files (relative to ``data_dir``) that must exist to load without downloading;
        empty for generated or bundled data."""
        return []

    def _is_present(self) -> bool:
        root = Path(self.data_dir)
        return all((root / f).is_file() for f in self.expected_files())

    def _download(self) -> None:
        """Fetch the dataset into ``data_dir`` (real datasets only)."""

    def verify_files(self) -> None:
        """Raise :class:`DatasetCorruptedError` for files that fail their published
        checksums (the pre-flight calls it; a no-op where there are none)."""

    def _damaged(self, why: str) -> DatasetCorruptedError:
        where = f"dataset.data_dir={self.data_dir}: " if self.expected_files() else ""
        fix = (
            "; delete the files and set dataset.download=true to fetch them again, or point "
            "dataset.data_dir at a good copy"
        )
        return DatasetCorruptedError(f"{where}{self.dataset_name()} {why}{fix if where else ''}")

    def _checked_load(self) -> Arrays:
        """:meth:`_load`, with files that cannot be read and arrays of the wrong shape or
        labels out of range turned into one line (:class:`DatasetCorruptedError`)."""
        try:
            arrays = self._load()
        except (ConfigError, JobError, FileNotFoundError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged file fails in the reader's own way
            why = f"files cannot be read ({type(exc).__name__}: {one_line(exc)})"
            raise self._damaged(why) from exc
        shape, classes = self.expected_input_shape(), self.source_num_classes()
        for part, (x, y) in zip(("train", "test"), (arrays[:2], arrays[2:])):
            if x is None or y is None:
                continue
            if tuple(x.shape[1:]) != tuple(shape) or y.dim() != 1 or len(x) != len(y):
                raise self._damaged(
                    f"{part} files hold inputs {tuple(x.shape)} and labels {tuple(y.shape)}; "
                    f"expected (N, {', '.join(map(str, shape))}) and (N,)"
                )
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= classes):
                raise self._damaged(
                    f"{part} files hold labels {int(y.min())}..{int(y.max())}; expected "
                    f"0..{classes - 1}"
                )
        return arrays

    # -- before loading ------------------------------------------------------------------
    def check_available(self) -> None:
        """Raise :class:`DatasetNotFoundError` (one line) if the files are missing and
        ``download`` is off; no-op for generated/bundled data or with ``download=True``."""
        if self.download or self._is_present():
            return
        root = Path(self.data_dir)
        shown = str(root) if root.is_absolute() else f"{root} (= {root.resolve()})"
        files = ", ".join(str(f) for f in self.expected_files())
        raise DatasetNotFoundError(
            f"dataset.data_dir={shown}: {self.dataset_name()} not found there "
            f"(expected {files}); set dataset.download=true to fetch it, or point "
            "dataset.data_dir at a folder that holds it"
        )

    @classmethod
    def dataset_name(cls) -> str:
        return cls.__name__.removesuffix("DataModule")

    def expected_input_shape(self) -> tuple[int, ...]:
        if self.INPUT_SHAPE is None:
            raise NotImplementedError(f"{type(self).__name__} must define INPUT_SHAPE")
        return tuple(self.INPUT_SHAPE)

    def source_num_classes(self) -> int:
        """Classes of the source dataset, before ``classes`` keeps or merges them."""
        n = self.NUM_CLASSES if self.NUM_CLASSES is not None else self._num_classes
        if n is None:
            raise ConfigError("dataset.num_classes", "dataset.num_classes must be set")
        return int(n)

    def expected_num_classes(self) -> int:
        return self.selection.num_classes

    @property
    def class_names(self) -> list[str]:
        return self.selection.names(self.source_class_names)

    @property
    def num_classes(self) -> int:
        return self.expected_num_classes()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample: the loaded one after :meth:`setup`, the expected one before."""
        if self._splits:
            return tuple(self._splits["train"][0].shape[1:])
        return self.expected_input_shape()

    # -- Lightning hooks -----------------------------------------------------------------
    def prepare_data(self) -> None:
        """Download into ``data_dir`` when ``download=True`` (real datasets only)."""
        if self.download and not self._is_present():
            self._download()

    def setup(self, stage: str | None = None) -> None:
        """Load, split and standardise once; later calls return at once."""
        if self._splits:
            return
        self.check_available()
        self.prepare_data()  # no-op unless download=True and files are missing
        self.verify_files()
        x, y, x_test, y_test = self._checked_load()
        x, y = self.selection.relabel(x, y)
        if x_test is not None and y_test is not None:
            x_test, y_test = self.selection.relabel(x_test, y_test)
        g = torch.Generator().manual_seed(self.seed)
        perm = torch.randperm(x.shape[0], generator=g)
        if self.subset is not None:
            perm = perm[: self.subset]
        n = perm.numel()
        n_val = math.floor(n * self.val_fraction)
        n_test = math.floor(n * self.test_fraction) if x_test is None else 0
        test_idx, val_idx, train_idx = (
            perm[:n_test],
            perm[n_test : n_test + n_val],
            perm[n_test + n_val :],
        )
        if train_idx.numel() == 0:
            raise ConfigError(
                "dataset.val_fraction", f"{type(self).__name__}: no training samples left of {n}"
            )
        if x_test is None or y_test is None:
            x_test, y_test = x[test_idx], y[test_idx]
        train_idx = train_idx[self.selection.thin(y[train_idx])]
        splits = {
            "train": (x[train_idx], y[train_idx]),
            "val": (x[val_idx], y[val_idx]),
            "test": (x_test, y_test),
        }
        del x, y
        splits = {k: (xs.float().contiguous(), ys.long()) for k, (xs, ys) in splits.items()}
        if self.standardize:
            self._standardize_(splits)
        if self.shift:
            for xs, _ in splits.values():
                xs.add_(self.shift)
        self._splits = splits

    def _standardize_(self, splits: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Standardise every split in place with the train split's statistics."""
        x_train = splits["train"][0]
        dims = (0,) if x_train.dim() <= 2 else (0, *range(2, x_train.dim()))
        mean = x_train.mean(dim=dims, keepdim=True)
        std = x_train.std(dim=dims, keepdim=True) if x_train.shape[0] > 1 else torch.ones_like(mean)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
        for xs, _ in splits.values():
            xs.sub_(mean).div_(std)
        self.x_mean, self.x_std = mean, std

    # -- access ----------------------------------------------------------------------------
    def split_tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of ``split`` (one of train, val, test); loads on first use."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        self.setup()
        return self._splits[split]

    def class_counts(self) -> dict[str, list[int]]:
        """Labels of each class in each split, as built (after class selection and
        thinning); loads on first use."""
        self.setup()
        return {k: class_counts(y, self.num_classes) for k, (_, y) in self._splits.items()}

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, split: str, train: bool) -> InMemoryLoader:
        x, y = self.split_tensors(split)
        rank, world = self._rank_world()
        return InMemoryLoader(
            x,
            y,
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            rank=rank,
            world_size=world,
            drop_last_single=train,
        )

    def train_dataloader(self) -> InMemoryLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> InMemoryLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> InMemoryLoader:
        return self._loader("test", train=False)

    def describe(self) -> dict[str, Any]:
        """Sizes, shapes and standardisation statistics, for logging (loads on first use)."""
        self.setup()
        return {
            "dataset": self.dataset_name(),
            "sizes": {k: int(v[0].shape[0]) for k, v in self._splits.items()},
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            **self.selection.describe(),
            "class_counts": self.class_counts(),
            "shift": self.shift,
            "seed": self.seed,
            "subset": self.subset,
            "standardization": _stats_summary(self.x_mean, self.x_std),
        }


def _stats_summary(mean: torch.Tensor | None, std: torch.Tensor | None) -> dict[str, Any] | None:
    """Per-channel lists when there are few channels, else min / mean / max."""
    if mean is None or std is None:
        return None
    m, s = mean.flatten(), std.flatten()
    if m.numel() <= 16:
        return {"mean": [round(v, 6) for v in m.tolist()], "std": [round(v, 6) for v in s.tolist()]}
    return {
        "features": m.numel(),
        "mean": {"min": m.min().item(), "mean": m.mean().item(), "max": m.max().item()},
        "std": {"min": s.min().item(), "mean": s.mean().item(), "max": s.max().item()},
    }
