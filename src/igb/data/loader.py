"""A loader over in-memory tensors: batches are tensor slices, never per-sample Python.

For the small datasets this framework lives on (blobs, digits, MNIST, CIFAR) a
``DataLoader`` with per-index collate costs more than the model; slicing a permuted
index tensor does not.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class InMemoryLoader:
    """Iterable of ``(x_batch, y_batch)`` over tensors, deterministic, rank-sharded.

    Shuffling: the permutation of epoch ``k`` comes from a generator seeded with
    ``seed * 1_000_003 + k``; ``k`` counts calls of ``__iter__`` unless pinned by
    :meth:`set_epoch`. Sharding (``world_size > 1``): the permuted indices are truncated
    to a multiple of ``world_size`` and rank ``r`` takes every ``world_size``-th of them,
    so every rank sees the same number of batches (as DistributedSampler with
    ``drop_last=True``). A trailing batch of exactly one sample is dropped when
    ``drop_last_single`` (BatchNorm cannot train on one sample).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        drop_last_single: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank, self.world_size = rank, world_size
        self.drop_last_single = drop_last_single
        self.epoch = 0
        self._pinned = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._pinned = True

    def _shard_size(self) -> int:
        n = self.x.shape[0]
        return n // self.world_size if self.world_size > 1 else n

    def __len__(self) -> int:
        n = self._shard_size()
        full, rest = divmod(n, self.batch_size)
        if rest and not self.drop_last and not (self.drop_last_single and rest == 1):
            full += 1
        return full

    def _indices(self) -> torch.Tensor | None:
        n = self.x.shape[0]
        idx = None
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            idx = torch.randperm(n, generator=g)
        if self.world_size > 1:
            idx = torch.arange(n) if idx is None else idx
            idx = idx[: self._shard_size() * self.world_size][self.rank :: self.world_size]
        return idx

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self._indices()
        if not self._pinned:
            self.epoch += 1
        self._pinned = False
        for b in range(len(self)):
            s = slice(b * self.batch_size, (b + 1) * self.batch_size)
            if idx is None:
                yield self.x[s], self.y[s]
            else:
                i = idx[s]
                yield self.x[i], self.y[i]
