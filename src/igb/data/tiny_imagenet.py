"""TinyImageNet (``tiny-imagenet-200``) read from its own folder layout, held in memory.

The official archive unpacks to ``<data_dir>/tiny-imagenet-200/``:

- ``wnids.txt``: the 200 class ids (WordNet ids, one a line); their order is the label
  order (label ``k`` is the ``k``-th line);
- ``words.txt`` (optional): ``wnid<TAB>names`` lines, used for the class names;
- ``train/<wnid>/images/*.JPEG``: 500 images a class (``<wnid>_boxes.txt`` is ignored);
- ``val/images/*.JPEG`` with ``val/val_annotations.txt``: ``file<TAB>wnid<TAB>box...``
  lines, 50 images a class: the labelled held-out split, used as the test split here
  (the official ``test/`` folder has no labels and is not read).

Images are 64x64 RGB JPEGs (a few of the real ones are greyscale and are converted to
RGB) -> ``(3, 64, 64)`` float32 in [0, 1]. Files are read in sorted order, so the tensors
do not depend on the file system. In memory the 100000 training images take 4.9 GB as
float32; ``dataset.subset`` and ``dataset.classes`` shrink the train split after loading.
Nothing downloads unless ``dataset.download=true`` (then the official zip is fetched and
unpacked into ``data_dir``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from igb.data.base import Arrays, DatasetCorruptedError, InMemoryDataModule

FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
SIZE = 64


def _read_images(paths: list[Path]) -> torch.Tensor:
    """JPEG files -> uint8 ``(N, 3, 64, 64)``; any other size is a corrupted file."""
    from PIL import Image

    out = np.empty((len(paths), SIZE, SIZE, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"))
        if arr.shape != (SIZE, SIZE, 3):
            raise DatasetCorruptedError(
                f"dataset.data_dir: {path} is {arr.shape[1]}x{arr.shape[0]}, TinyImageNet "
                f"images are {SIZE}x{SIZE}"
            )
        out[i] = arr
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


class TinyImageNetDataModule(InMemoryDataModule):
    """TinyImageNet: 100000 train + 10000 labelled val (the test split) 64x64 colour
    images in 200 classes -> ``(3, 64, 64)``."""

    INPUT_SHAPE = (3, SIZE, SIZE)
    NUM_CLASSES = 200

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("test_fraction", 0.0)  # the official val split is the test split
        super().__init__(**kwargs)

    @classmethod
    def dataset_name(cls) -> str:
        return "TinyImageNet"

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / FOLDER

    def expected_files(self) -> list[Path]:
        return [Path(FOLDER) / "wnids.txt", Path(FOLDER) / "val" / "val_annotations.txt"]

    def _download(self) -> None:
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(URL, download_root=self.data_dir, md5=MD5)

    def _wnids(self) -> list[str]:
        wnids = [w.strip() for w in (self.root / "wnids.txt").read_text().splitlines()]
        wnids = [w for w in wnids if w]
        if len(wnids) != self.NUM_CLASSES or len(set(wnids)) != len(wnids):
            raise DatasetCorruptedError(
                f"dataset.data_dir: {self.root / 'wnids.txt'} lists {len(set(wnids))} distinct "
                f"class ids, TinyImageNet has {self.NUM_CLASSES}"
            )
        return wnids

    def _names(self, wnids: list[str]) -> list[str]:
        words = self.root / "words.txt"
        table: dict[str, str] = {}
        if words.is_file():
            for line in words.read_text().splitlines():
                wnid, _, names = line.partition("\t")
                table[wnid.strip()] = names.split(",")[0].strip()
        return [table.get(w) or w for w in wnids]

    def _train_files(self, wnids: list[str]) -> tuple[list[Path], list[int]]:
        paths: list[Path] = []
        labels: list[int] = []
        for label, wnid in enumerate(wnids):
            files = sorted((self.root / "train" / wnid / "images").glob("*.JPEG"))
            if not files:
                raise DatasetCorruptedError(
                    f"dataset.data_dir: no images in {self.root / 'train' / wnid / 'images'} "
                    f"(class {wnid} of wnids.txt); the folder is incomplete"
                )
            paths += files
            labels += [label] * len(files)
        return paths, labels

    def _val_files(self, wnids: list[str]) -> tuple[list[Path], list[int]]:
        index = {w: k for k, w in enumerate(wnids)}
        annotations = self.root / "val" / "val_annotations.txt"
        rows = [line.split("\t") for line in annotations.read_text().splitlines() if line.strip()]
        paths, labels = [], []
        for row in sorted(rows):
            if len(row) < 2 or row[1] not in index:
                raise DatasetCorruptedError(
                    f"dataset.data_dir: {annotations} has a line {chr(9).join(row)!r} whose "
                    "class id is not in wnids.txt"
                )
            paths.append(self.root / "val" / "images" / row[0])
            labels.append(index[row[1]])
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise DatasetCorruptedError(
                f"dataset.data_dir: {len(missing)} images listed in {annotations} are missing, "
                f"e.g. {missing[0]}"
            )
        return paths, labels

    def _load(self) -> Arrays:
        wnids = self._wnids()
        self.source_class_names = self._names(wnids)
        train_paths, train_labels = self._train_files(wnids)
        val_paths, val_labels = self._val_files(wnids)
        return (
            _read_images(train_paths).float().div_(255.0),
            torch.tensor(train_labels, dtype=torch.long),
            _read_images(val_paths).float().div_(255.0),
            torch.tensor(val_labels, dtype=torch.long),
        )
