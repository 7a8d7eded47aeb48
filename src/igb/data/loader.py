"""A loader over in-memory tensors: batches are tensor slices, never per-sample Python.

For the small datasets this framework lives on (blobs, digits, MNIST, CIFAR) a
``DataLoader`` with per-index collate costs more than the model; slicing a tensor (or
indexing it with a slice of a permutation tensor) does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed mixed from ``(seed, epoch)`` (no collisions between pairs
    such as ``seed * K + epoch`` would give)."""
    state = np.random.SeedSequence([int(seed) % 2**64, int(epoch) % 2**64]).generate_state(
        2, np.uint32
    )
    return (int(state[0]) << 31) ^ int(state[1])


@dataclass(frozen=True)
class LoaderSpec:
    """How an :class:`InMemoryLoader` batches its tensors (see its Args), checked once."""

    batch_size: int
    shuffle: bool = False
    seed: int = 0
    drop_last: bool = False
    rank: int = 0
    world_size: int = 1
    drop_last_single: bool | None = None

    def __post_init__(self) -> None:
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(
                f"need 0 <= rank < world_size, got rank={self.rank} world_size={self.world_size}"
            )


class InMemoryLoader:
    """Iterable of ``(x_batch, y_batch)`` over in-memory tensors; deterministic, rank-sharded.

    Args:
        x, y: tensors with the same first dimension (kept where they are, never copied whole).
        spec: a :class:`LoaderSpec` of the following.
        batch_size: samples per batch (the last batch may be smaller, see below).
        shuffle: draw a fresh permutation each epoch; off: batches are plain slices (views).
        seed: with the epoch number, seeds the permutation.
        drop_last: drop a trailing incomplete batch.
        rank, world_size: this process's shard (see *Sharding*).
        drop_last_single: drop a trailing batch of exactly one sample (BatchNorm cannot
            normalise one sample in training mode). ``None`` (default): on iff ``shuffle``,
            i.e. for training loaders; evaluation loaders keep every sample.

    Epochs: the permutation of epoch ``k`` comes from a ``torch.Generator`` seeded with
    :func:`epoch_seed` ``(seed, k)``. ``k`` starts at 0 and counts started iterations (the
    counter moves when the first batch is requested, so ``iter(loader)`` alone, as Lightning
    does to check that a loader is iterable, does not skip an epoch). :meth:`set_epoch`
    sets the epoch of the next iteration; later ones continue from there. Lightning calls
    ``dataloader.sampler.set_epoch(current_epoch)`` at every epoch start, and
    :attr:`sampler` is the loader itself, so under a Trainer the order follows the
    trainer's epoch (also after resuming from a checkpoint).

    Sharding (``world_size > 1``, as ``DistributedSampler`` with ``drop_last=False``): the
    epoch's index order (permutation, or ``0..n-1`` without shuffling) is padded by
    wrapping around to ``world_size * ceil(n / world_size)`` entries and cut into
    ``world_size`` contiguous blocks; rank ``r`` takes block ``r``. Every rank gets the same
    number of samples and batches, the shards are disjoint except for the at most
    ``world_size - 1`` padded repeats, and every sample is seen at least once per epoch.
    """

    #: Lightning inspects ``dataloader.batch_sampler``; there is none
    batch_sampler = None

    def __init__(self, x: torch.Tensor, y: torch.Tensor, spec: LoaderSpec) -> None:
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
        self.x, self.y = x, y
        self.spec = spec
        self.batch_size = int(spec.batch_size)
        self.shuffle = bool(spec.shuffle)
        self.seed = int(spec.seed)
        self.drop_last = bool(spec.drop_last)
        self.rank, self.world_size = int(spec.rank), int(spec.world_size)
        self.drop_last_single = (
            self.shuffle if spec.drop_last_single is None else spec.drop_last_single
        )
        #: epoch of the next iteration
        self.epoch = 0

    @property
    def sampler(self) -> InMemoryLoader:
        """The loader itself, so that Lightning's per-epoch ``sampler.set_epoch`` reaches it."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (the following ones ``epoch + 1``, ...)."""
        self.epoch = int(epoch)

    @property
    def num_samples(self) -> int:
        """Samples this rank iterates per epoch (before dropping a trailing batch)."""
        n = self.x.shape[0]
        return math.ceil(n / self.world_size) if self.world_size > 1 else n

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        if rest and not self.drop_last and not (self.drop_last_single and rest == 1):
            full += 1
        return full

    def indices(self, epoch: int | None = None) -> torch.Tensor | slice:
        """This rank's sample order for ``epoch`` (default: the next one): an index tensor,
        or a ``slice`` when no reordering is needed."""
        n = self.x.shape[0]
        epoch = self.epoch if epoch is None else epoch
        m = self.num_samples
        start = self.rank * m
        if not self.shuffle and start + m <= n:
            return slice(start, start + m)
        if self.shuffle:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        total = m * self.world_size
        if total > n:  # pad by wrapping around
            order = order.repeat(math.ceil(total / n))[:total] if n else order
        return order[start : start + m]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # a generator: the epoch is taken and advanced when the first batch is requested
        idx = self.indices()
        self.epoch += 1
        bs = self.batch_size
        for b in range(len(self)):
            if isinstance(idx, slice):
                s = slice(idx.start + b * bs, min(idx.start + (b + 1) * bs, idx.stop))
                yield self.x[s], self.y[s]
            else:
                i = idx[b * bs : (b + 1) * bs]
                yield self.x[i], self.y[i]

    def __repr__(self) -> str:
        return (
            f"InMemoryLoader(n={self.x.shape[0]}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, batches={len(self)}, rank={self.rank}/{self.world_size})"
        )
