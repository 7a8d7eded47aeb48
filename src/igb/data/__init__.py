"""Datamodules holding data as in-memory tensors (no per-sample Python loading)."""

from igb.data.base import DatasetCorruptedError, DatasetNotFoundError, InMemoryDataModule
from igb.data.blobs import GaussianBlobsDataModule
from igb.data.digits import DigitsDataModule
from igb.data.loader import InMemoryLoader
from igb.data.tiny_imagenet import TinyImageNetDataModule
from igb.data.vision import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DatasetCorruptedError",
    "DatasetNotFoundError",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "GaussianBlobsDataModule",
    "InMemoryDataModule",
    "InMemoryLoader",
    "MNISTDataModule",
    "TinyImageNetDataModule",
]
