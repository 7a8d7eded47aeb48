"""Tiny dataset files in the real on-disk formats (MNIST IDX, CIFAR-10/100 pickles).

Sample k carries its id in its first pixel, so tests can follow samples through splits.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import torch

N_TRAIN, N_TEST = 30, 10


def _image_pixels(n: int, offset: int, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images, sample k carries its id ``offset + k`` in the first pixel."""
    rng = np.random.default_rng(offset)
    img = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    img.reshape(n, -1)[:, 0] = np.arange(offset, offset + n, dtype=np.uint8)
    return img


def mnist_label(i: np.ndarray | int) -> np.ndarray | int:
    return (i * 7) % 10


def write_mnist(root: Path, folder: str) -> dict[str, np.ndarray]:
    """IDX files (big-endian magic 2051 images / 2049 labels) as torchvision expects them."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    arrays = {}
    for prefix, n, offset in (("train", N_TRAIN, 0), ("t10k", N_TEST, 100)):
        img = _image_pixels(n, offset, (28, 28))
        lab = np.asarray(mnist_label(np.arange(offset, offset + n)), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + img.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + lab.tobytes()
        )
        arrays[prefix] = img
    return arrays


def cifar_rows(n: int, offset: int) -> np.ndarray:
    """(n, 3072) rows: R plane, G plane, B plane, each 32x32 row-major; channel c is
    shifted by 60*c so the channels have different means; id in R(0, 0), 200 + id % 50
    in G(1, 2)."""
    rng = np.random.default_rng(offset)
    planes = rng.integers(0, 80, size=(n, 3, 32, 32)) + 60 * np.arange(3)[None, :, None, None]
    planes[:, 0, 0, 0] = np.arange(offset, offset + n)
    planes[:, 1, 1, 2] = 200 + np.arange(offset, offset + n) % 50
    return planes.astype(np.uint8).reshape(n, 3072)


class _Py2Pickler(pickle._Pickler):
    """Protocol-2 pickles whose ``str``/``bytes`` are Python 2 strings, as in the official
    CIFAR files (made by Python 2: loaded with ``encoding="bytes"`` the keys are
    ``b"data"``, ``b"labels"``; with torchvision's ``encoding="latin1"`` they are str)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = _save_py2_str  # Python 2 had one str type


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def write_cifar10(root: Path) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    per = N_TRAIN // 5
    for b in range(5):
        ids = np.arange(b * per, (b + 1) * per)
        _dump(
            folder / f"data_batch_{b + 1}",
            {
                "batch_label": "training batch",
                "data": cifar_rows(per, b * per),
                "labels": [int(i) % 10 for i in ids],
            },
        )
    _dump(
        folder / "test_batch",
        {"data": cifar_rows(N_TEST, 100), "labels": [i % 10 for i in range(100, 100 + N_TEST)]},
    )
    names = [f"c10_{i}" for i in range(10)]
    _dump(folder / "batches.meta", {"label_names": names, "num_vis": 3072})


def write_cifar100(root: Path) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n, offset in (("train", N_TRAIN, 0), ("test", N_TEST, 100)):
        ids = np.arange(offset, offset + n)
        _dump(
            folder / name,
            {
                "data": cifar_rows(n, offset),
                "fine_labels": [int(i) * 3 % 100 for i in ids],
                "coarse_labels": [int(i) % 20 for i in ids],
            },
        )
    _dump(
        folder / "meta",
        {
            "fine_label_names": [f"fine{i}" for i in range(100)],
            "coarse_label_names": [f"coarse{i}" for i in range(20)],
        },
    )


def sample_ids(x: torch.Tensor) -> list[int]:
    """Sample ids stored in the first pixel (unstandardised data)."""
    return torch.round(x.flatten(1)[:, 0] * 255).long().tolist()
