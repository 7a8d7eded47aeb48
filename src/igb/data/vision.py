"""MNIST, Fashion-MNIST, CIFAR-10/100 through torchvision, held as in-memory tensors.

Nothing downloads unless ``dataset.download=true``. With download off, a missing folder
is reported before anything runs (:meth:`check_available`), naming the files expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import datasets

from igb.data.base import Arrays, DatasetNotFoundError, InMemoryDataModule


class TorchvisionDataModule(InMemoryDataModule):
    """Loads a torchvision dataset's train and test parts into tensors."""

    DATASET: type = datasets.VisionDataset

    def __init__(self, verify: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("test_fraction", 0.0)
        super().__init__(**kwargs)
        #: check the md5 sums torchvision knows (CIFAR); off for hand-made files
        self.verify = verify

    def required_files(self) -> list[Path]:
        raise NotImplementedError

    def check_available(self) -> None:
        if self.download:
            return
        missing = [p for p in self.required_files() if not p.exists()]
        if missing:
            raise DatasetNotFoundError(
                f"dataset.data_dir={self.data_dir}: {self.DATASET.__name__} not found "
                f"(missing {missing[0]}); set dataset.download=true to fetch it, or point "
                "dataset.data_dir at a folder holding it"
            )

    def _dataset_class(self) -> type:
        return self.DATASET

    def _download(self) -> None:
        for train in (True, False):
            self._dataset_class()(self.data_dir, train=train, download=True)

    def _load(self) -> Arrays:
        cls = self._dataset_class()
        parts = [cls(self.data_dir, train=train, download=False) for train in (True, False)]
        self.class_names = [str(c) for c in parts[0].classes]
        (x, y), (xt, yt) = (self._arrays(p) for p in parts)
        return x, y, xt, yt

    @staticmethod
    def _arrays(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
        data = torch.as_tensor(np.asarray(ds.data))
        data = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)
        return data.float().div_(255.0), torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)


class MNISTDataModule(TorchvisionDataModule):
    DATASET = datasets.MNIST
    INPUT_SHAPE = (1, 28, 28)
    NUM_CLASSES = 10

    def required_files(self) -> list[Path]:
        raw = Path(self.data_dir) / self.DATASET.__name__ / "raw"
        return [raw / Path(url).stem for url, _ in self.DATASET.resources]


class FashionMNISTDataModule(MNISTDataModule):
    DATASET = datasets.FashionMNIST


class CIFAR10DataModule(TorchvisionDataModule):
    DATASET = datasets.CIFAR10
    INPUT_SHAPE = (3, 32, 32)
    NUM_CLASSES = 10

    def required_files(self) -> list[Path]:
        folder = Path(self.data_dir) / self.DATASET.base_folder
        names = [f for f, _ in self.DATASET.train_list + self.DATASET.test_list]
        return [folder / f for f in [*names, self.DATASET.meta["filename"]]]

    def _dataset_class(self) -> type:
        if self.verify:
            return self.DATASET
        cls = self.DATASET
        # same loader and on-disk format, existence checked instead of the md5 sums
        return type(
            cls.__name__,
            (cls,),
            {
                "train_list": [[f, None] for f, _ in cls.train_list],
                "test_list": [[f, None] for f, _ in cls.test_list],
                "meta": {**cls.meta, "md5": None},
            },
        )


class CIFAR100DataModule(CIFAR10DataModule):
    DATASET = datasets.CIFAR100
    NUM_CLASSES = 100
