"""The 8x8 handwritten digits (UCI "Optical Recognition of Handwritten Digits", test set;
E. Alpaydin, C. Kaynak, 1998; CC BY 4.0): real data that needs no network and no package.

``digits.csv.gz`` beside this module is the file scikit-learn ships for ``load_digits``
(1797 rows of 64 pixel counts 0..16 and the digit), read here with numpy.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from igb.data.base import Arrays, InMemoryDataModule


class DigitsDataModule(InMemoryDataModule):
    """The digits of ``digits.csv.gz``: 1797 grey 8x8 images (pixel values 0..16, scaled
    to [0, 1]) -> ``(1, 8, 8)``, classes "0".."9". No official test split: train/val/test
    come from the one pool by ``val_fraction``/``test_fraction``."""

    INPUT_SHAPE = (1, 8, 8)
    NUM_CLASSES = 10
    CLASS_NAMES = tuple(str(c) for c in range(10))

    def _load(self) -> Arrays:
        table = load_digits_table()
        x = torch.as_tensor(table[:, :64].reshape(-1, 1, 8, 8), dtype=torch.float32) / 16.0
        y = torch.as_tensor(table[:, 64], dtype=torch.long)
        return x, y, None, None


#: the digits as scikit-learn ships them: one row per image, 64 pixels then the digit
DIGITS_FILE = Path(__file__).with_name("digits.csv.gz")


def load_digits_table() -> np.ndarray:
    """``digits.csv.gz`` as a (1797, 65) integer array."""
    with gzip.open(DIGITS_FILE, "rt") as f:
        return np.loadtxt(f, delimiter=",", dtype=np.int64)
