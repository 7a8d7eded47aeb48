"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no network."""

from __future__ import annotations

import torch

from igb.data.base import Arrays, InMemoryDataModule


class DigitsDataModule(InMemoryDataModule):
    INPUT_SHAPE = (1, 8, 8)
    NUM_CLASSES = 10

    def _load(self) -> Arrays:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        self.class_names = [str(c) for c in bunch.target_names]
        x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
        return x, torch.tensor(bunch.target, dtype=torch.long), None, None
