"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no network."""

from __future__ import annotations

import torch

from igb.data.base import Arrays, InMemoryDataModule


class DigitsDataModule(InMemoryDataModule):
    """``sklearn.datasets.load_digits``: 1797 grey 8x8 images (pixel values 0..16, scaled
    to [0, 1]) -> ``(1, 8, 8)``, classes "0".."9". No official test split: train/val/test
    come from the one pool by ``val_fraction``/``test_fraction``."""

    INPUT_SHAPE = (1, 8, 8)
    NUM_CLASSES = 10
    CLASS_NAMES = tuple(str(c) for c in range(10))

    def _load(self) -> Arrays:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.as_tensor(bunch.target, dtype=torch.long)
        return x, y, None, None
