"""Datasets held as in-memory tensors (no per-sample Python loading).

The real-image datasets (torchvision: MNIST, Fashion-MNIST, CIFAR) and digits (a file of its own)
are loaded on first use: importing torchvision costs seconds that the default Gaussian
data and the theory never need. ``igb.data.<Name>`` works as before (Hydra ``_target_``).

May import only ``igb.errors`` and ``igb.plain``: datasets are plain objects, Lightning meets
them in :mod:`igb.training.datamodule`.
"""

from typing import Any

from igb.data.base import (
    DatasetCorruptedError,
    DatasetNotFoundError,
    DataSpec,
    InMemoryDataModule,
)
from igb.data.blobs import GaussianBlobsDataModule
from igb.data.loader import InMemoryLoader, LoaderSpec

#: class name -> module that defines it, imported on first access
_LAZY = {
    "CIFAR10DataModule": "igb.data.vision",
    "CIFAR100DataModule": "igb.data.vision",
    "FashionMNISTDataModule": "igb.data.vision",
    "MNISTDataModule": "igb.data.vision",
    "DigitsDataModule": "igb.data.digits",
    "TinyImageNetDataModule": "igb.data.tiny_imagenet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'igb.data' has no attribute {name!r}")


__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DatasetCorruptedError",
    "DatasetNotFoundError",
    "DataSpec",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "GaussianBlobsDataModule",
    "InMemoryDataModule",
    "InMemoryLoader",
    "LoaderSpec",
    "MNISTDataModule",
    "TinyImageNetDataModule",
]
