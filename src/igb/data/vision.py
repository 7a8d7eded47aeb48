"""MNIST, Fashion-MNIST, CIFAR-10/100 through torchvision, held as in-memory tensors.

Nothing downloads unless ``dataset.download=true``. With download off, a missing folder
is reported before anything runs (:meth:`check_available`), naming the files expected.
The arrays (``.data``, ``.targets``) of torchvision's datasets are taken whole into tensors:
uint8 -> float32 in [0, 1], images as ``(N, C, H, W)``. The official test set is the test
split; val comes out of the (shuffled) train set.

On-disk layout under ``dataset.data_dir`` (torchvision's):

- MNIST: ``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (IDX files, unpacked);
  Fashion-MNIST the same under ``FashionMNIST/raw``.
- CIFAR-10: ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``;
  CIFAR-100: ``cifar-100-python/{train, test, meta}`` (python pickles).

torchvision refuses CIFAR files whose md5 differs from the official release even with
``download=False``. Here the md5 check is done once, up front, when ``verify=True``
(default; a mismatch raises :class:`~igb.data.base.DatasetCorruptedError` naming the
file), and the files are then read by torchvision's own CIFAR loader with its per-file
md5 lookups switched off, so ``verify=False`` reads any files in the official format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import datasets
from torchvision.datasets.utils import check_integrity

from igb.data.base import Arrays, DatasetCorruptedError, InMemoryDataModule


def _to_images(data: Any) -> torch.Tensor:
    """uint8 ``(N, H, W)`` or ``(N, H, W, C)`` -> float32 ``(N, C, H, W)`` in [0, 1]."""
    t = torch.as_tensor(np.asarray(data))
    t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    return t.contiguous().float().div_(255.0)


class TorchvisionDataModule(InMemoryDataModule):
    """Loads a torchvision dataset's train and test parts into tensors.

    ``verify``: check the md5 sums torchvision knows for the files before loading (CIFAR;
    torchvision's MNIST loader has none to check). Off for hand-made files in the same
    format.
    """

    DATASET: type = datasets.VisionDataset

    def __init__(self, verify: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("test_fraction", 0.0)  # the official test split is used
        super().__init__(**kwargs)
        self.verify = bool(verify)

    @classmethod
    def dataset_name(cls) -> str:
        return cls.DATASET.__name__

    def _reader(self) -> type:
        """The torchvision class that reads the files (download off)."""
        return self.DATASET

    def verify_files(self) -> None:
        if self.verify:
            self._verify()

    def _verify(self) -> None:
        """Raise DatasetCorruptedError if a file fails its published checksum."""

    def _download(self) -> None:
        for train in (True, False):
            self.DATASET(self.data_dir, train=train, download=True)

    def _load(self) -> Arrays:
        reader = self._reader()
        train, test = (reader(self.data_dir, train=t, download=False) for t in (True, False))
        self.source_class_names = [str(c) for c in train.classes]
        return (
            _to_images(train.data),
            torch.as_tensor(np.asarray(train.targets), dtype=torch.long),
            _to_images(test.data),
            torch.as_tensor(np.asarray(test.targets), dtype=torch.long),
        )


class MNISTDataModule(TorchvisionDataModule):
    """MNIST: 60000 + 10000 grey 28x28 digits -> ``(1, 28, 28)``."""

    DATASET = datasets.MNIST
    INPUT_SHAPE = (1, 28, 28)
    NUM_CLASSES = 10
    CLASS_NAMES = tuple(datasets.MNIST.classes)

    def expected_files(self) -> list[Path]:
        # torchvision checks the unpacked names of its resources (".gz" stripped)
        raw = Path(self.DATASET.__name__) / "raw"
        return [
            raw / os.path.splitext(os.path.basename(url))[0] for url, _ in self.DATASET.resources
        ]

    def verify_files(self) -> None:
        """No published checksums: the files are read whole and checked (a second or less;
        a damaged file then stops the pre-flight, not the job)."""
        self._checked_load()

    def _is_present(self) -> bool:
        # torchvision also reads the legacy processed/{training,test}.pt caches
        processed = Path(self.data_dir) / self.DATASET.__name__ / "processed"
        legacy = [processed / self.DATASET.training_file, processed / self.DATASET.test_file]
        return super()._is_present() or all(p.is_file() for p in legacy)


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST: 60000 + 10000 grey 28x28 clothing images -> ``(1, 28, 28)``."""

    DATASET = datasets.FashionMNIST
    CLASS_NAMES = tuple(datasets.FashionMNIST.classes)


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10: 50000 + 10000 colour 32x32 images -> ``(3, 32, 32)``."""

    DATASET = datasets.CIFAR10
    INPUT_SHAPE = (3, 32, 32)
    NUM_CLASSES = 10

    def _files_md5(self) -> list[tuple[str, str]]:
        cls = self.DATASET
        return [
            *((f, md5) for f, md5 in cls.train_list + cls.test_list),
            (cls.meta["filename"], cls.meta["md5"]),
        ]

    def expected_files(self) -> list[Path]:
        folder = Path(self.DATASET.base_folder)
        return [folder / f for f, _ in self._files_md5()]

    def _verify(self) -> None:
        for name, md5 in self._files_md5():
            path = Path(self.data_dir) / self.DATASET.base_folder / name
            if not check_integrity(str(path), md5):
                raise DatasetCorruptedError(
                    f"dataset.data_dir={self.data_dir}: {path} does not match the md5 of the "
                    f"official {self.dataset_name()} release (corrupted or not the original); "
                    "delete it and set dataset.download=true to fetch it again, or set "
                    "dataset.verify=false to read it anyway"
                )

    def _reader(self) -> type:
        cls = self.DATASET
        # torchvision's loader and on-disk format; existence checked instead of md5 sums
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
    """CIFAR-100 (fine labels): 50000 + 10000 colour 32x32 images -> ``(3, 32, 32)``."""

    DATASET = datasets.CIFAR100
    NUM_CLASSES = 100
