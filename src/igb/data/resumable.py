"""A train loader that a checkpoint can resume mid-epoch.

:class:`ResumableLoader` makes an epoch-seeded train loader stateful for Lightning, so a
run resumed mid-epoch trains the remaining batches of that epoch in the original order
(Lightning alone would restart the epoch's iterator and replay its first batches).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)


class ResumableLoader:
    """A sized train loader with an epoch-seeded order, made stateful for Lightning.

    Lightning stores ``state_dict()`` in every checkpoint and, when resuming, calls
    ``load_state_dict`` before the epoch's iterator starts; the resumed epoch then skips the
    batches the checkpoint had already trained. The wrapped loader must produce the same
    order for the same epoch (``set_epoch``, as ``igb.data.InMemoryLoader`` does).
    """

    batch_sampler = None

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self._epoch: int | None = None
        self._served = 0
        self._skip = 0
        self._skip_epoch: int | None = None

    @property
    def sampler(self) -> Any:
        """The wrapped loader's sampler, so that Lightning's ``set_epoch`` reaches it."""
        return getattr(self.loader, "sampler", None)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        # a generator: runs at the first batch, after Lightning's set_epoch
        epoch = getattr(self.loader, "epoch", None)
        skip, self._skip = self._skip, 0
        expected = self._skip_epoch
        if skip and expected is not None and epoch is not None and epoch != expected:
            log.warning(
                "resume: checkpoint is %d batches into epoch %s but epoch %s starts; "
                "not skipping", skip, expected, epoch,
            )  # fmt: skip
            skip = 0
        self._epoch, self._served = epoch, 0
        for i, batch in enumerate(self.loader):
            if i < skip:
                self._served = i + 1
                continue
            self._served = i + 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "batches": self._served, "length": len(self)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        batches = int(state.get("batches", 0))
        if 0 < batches < len(self):
            self._skip, self._skip_epoch = batches, state.get("epoch")
            log.info("resume: epoch %s continues after batch %d", state.get("epoch"), batches)

    def __repr__(self) -> str:
        return f"ResumableLoader({self.loader!r})"


def _has_epoch_order(loader: Any) -> bool:
    return hasattr(loader, "__len__") and (
        callable(getattr(loader, "set_epoch", None))
        or callable(getattr(getattr(loader, "sampler", None), "set_epoch", None))
    )


def make_resumable(datamodule: Any) -> None:
    """Wrap the datamodule's train loader in :class:`ResumableLoader` (idempotent).

    Loaders without a per-epoch order (``set_epoch``) are left alone: skipping batches of
    a fresh random order would not continue the interrupted epoch anyway.
    """
    original: Callable[[], Any] = datamodule.train_dataloader
    if getattr(original, "_igb_resumable", False):
        return

    def train_dataloader() -> Any:
        loader = original()
        if isinstance(loader, ResumableLoader) or not _has_epoch_order(loader):
            return loader
        return ResumableLoader(loader)

    train_dataloader._igb_resumable = True  # type: ignore[attr-defined]
    datamodule.train_dataloader = train_dataloader  # type: ignore[method-assign]
