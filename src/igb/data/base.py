"""In-memory LightningDataModules: load once, split with a seed, standardise with train stats."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import lightning as L
import torch

from igb.data.loader import InMemoryLoader

SPLITS = ("train", "val", "test")


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not in ``dataset.data_dir`` and downloading is off."""


Arrays = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]


class InMemoryDataModule(L.LightningDataModule):
    """Base class: subclasses implement :meth:`_load`; everything else is shared.

    Splits: without an official test split the pool is split train/val/test by
    ``val_fraction``/``test_fraction``; with one, val comes out of the train pool.
    Standardisation statistics (per channel for images, per feature for flat data)
    come from the train split only.
    """

    #: input shape / class count known before loading (None: from the config)
    INPUT_SHAPE: tuple[int, ...] | None = None
    NUM_CLASSES: int | None = None

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
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.standardize = standardize
        self.data_dir = str(data_dir)
        self.download = download
        self._num_classes = num_classes
        self.subset = subset
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.class_names: list[str] = []
        self.stats: dict[str, Any] = {}

    # -- what subclasses provide -------------------------------------------------------
    @abstractmethod
    def _load(self) -> Arrays:
        """(x_train, y_train, x_test | None, y_test | None) as float / long tensors."""

    def check_available(self) -> None:
        """Raise DatasetNotFoundError (one line) if the files are missing and download is off."""

    def expected_input_shape(self) -> tuple[int, ...]:
        assert self.INPUT_SHAPE is not None
        return self.INPUT_SHAPE

    def expected_num_classes(self) -> int:
        return int(self.NUM_CLASSES or self._num_classes)

    # -- Lightning hooks -----------------------------------------------------------------
    def prepare_data(self) -> None:
        if self.download:
            self._download()

    def _download(self) -> None:
        """Fetch the dataset into data_dir (real datasets only)."""

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        self.check_available()
        x, y, x_test, y_test = self._load()
        g = torch.Generator().manual_seed(self.seed)
        perm = torch.randperm(x.shape[0], generator=g)
        if self.subset is not None:
            perm = perm[: self.subset]
        n = perm.numel()
        n_val = int(math.floor(n * self.val_fraction))
        if x_test is None:
            n_test = int(math.floor(n * self.test_fraction))
            test_idx, val_idx, train_idx = (
                perm[:n_test],
                perm[n_test : n_test + n_val],
                perm[n_test + n_val :],
            )
            x_test, y_test = x[test_idx], y[test_idx]
        else:
            val_idx, train_idx = perm[:n_val], perm[n_val:]
        splits = {"train": (x[train_idx], y[train_idx]), "val": (x[val_idx], y[val_idx])}
        splits["test"] = (x_test, y_test)
        if self.standardize:
            splits = self._standardized(splits)
        self._splits = {k: (v[0].contiguous().float(), v[1].long()) for k, v in splits.items()}
        self.input_shape = tuple(self._splits["train"][0].shape[1:])

    def _standardized(self, splits: dict[str, tuple[torch.Tensor, torch.Tensor]]):
        x_train = splits["train"][0]
        dims = (0, 2, 3) if x_train.dim() == 4 else (0,)
        mean = x_train.mean(dim=dims, keepdim=True)
        std = x_train.std(dim=dims, keepdim=True).clamp_min(1e-6)
        self.stats = {"mean": mean.flatten().tolist()[:8], "std": std.flatten().tolist()[:8]}
        return {k: ((x - mean) / std, y) for k, (x, y) in splits.items()}

    # -- access ----------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.expected_num_classes()

    def split_tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        self.setup()
        return self._splits[split]

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(self, split: str, shuffle: bool) -> InMemoryLoader:
        x, y = self.split_tensors(split)
        rank, world = self._rank_world()
        bs = self.batch_size if shuffle else self.eval_batch_size
        return InMemoryLoader(
            x, y, bs, shuffle=shuffle, seed=self.seed, rank=rank, world_size=world
        )

    def train_dataloader(self) -> InMemoryLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> InMemoryLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> InMemoryLoader:
        return self._loader("test", shuffle=False)

    def describe(self) -> dict[str, Any]:
        self.setup()
        return {
            "sizes": {k: int(v[0].shape[0]) for k, v in self._splits.items()},
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "standardization": self.stats,
        }
