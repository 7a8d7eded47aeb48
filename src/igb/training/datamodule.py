"""Lightning's view of an igb dataset: the one place data meets ``L.LightningDataModule``.

igb's datasets (:mod:`igb.data`) are plain objects so that ensembles and the theory never
import Lightning. Lightning's ``Trainer`` needs a ``LightningDataModule`` subclass: this
wrapper is one, delegating the loaders and every other attribute (``split_tensors``,
``num_classes``, ...) to the dataset, and telling it the trainer for rank sharding.
"""

from __future__ import annotations

from typing import Any

import lightning as L


class LightningData(L.LightningDataModule):
    """Wrap an :class:`igb.data.InMemoryDataModule` for ``Trainer.fit`` / ``test``."""

    def __init__(self, data: Any) -> None:
        super().__init__()
        self.data = data

    def __getattr__(self, name: str) -> Any:
        # only reached for names Lightning's base class does not define
        if name == "data":
            raise AttributeError(name)
        return getattr(self.data, name)

    def _attached(self) -> Any:
        self.data.trainer = self.trainer
        return self.data

    def prepare_data(self) -> None:
        self.data.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        self.data.setup(stage)

    def train_dataloader(self) -> Any:
        return self._attached().train_dataloader()

    def val_dataloader(self) -> Any:
        return self._attached().val_dataloader()

    def test_dataloader(self) -> Any:
        return self._attached().test_dataloader()


def as_lightning(data: Any) -> LightningData:
    """``data`` as a LightningDataModule (idempotent)."""
    return data if isinstance(data, LightningData) else LightningData(data)
