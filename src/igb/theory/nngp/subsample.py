"""The theory on a subsample of the evaluation points, with its sampling error.

The walk holds N x N kernels (:mod:`.kernel`): at N = 20 000 several GB and minutes. Above
``max_points`` the prediction walks a random subsample of about that many points instead
and states the subsample's error:

- **which points.** Without a norm that couples the points of a batch (no BatchNorm in
  batch mode, no centred head) every operation maps a pair's kernel entry from that pair's
  entries alone, so the walk of any subset is the full walk restricted to it: random points.
  With batch statistics, whole batches keep that exactness: when at least :data:`PARTS`
  batches fit, random whole batches. Otherwise (batches larger than the subsample) every
  batch is represented by random members (at least ``2 * PARTS``, in proportion to its
  size) whose kernel rows estimate the batch means (:func:`.kernel.centre`).
- **the estimate.** gamma needs the means of K over the N^2 pairs: a point with itself,
  pairs within a batch, pairs across batches, each estimated from the walked pairs of its
  kind and weighted by its share of the N^2 (:func:`.kernel.kernel_means`). So the
  finite-N floor is N's, and a subsample of all N points is the full computation.
- **its error.** A delete-a-group jackknife: the walked points are cut into :data:`PARTS`
  groups (whole batches, or a share of each batch's members), gamma is computed without
  each group, and ``stderr = sqrt((G - 1) / G * sum (gamma_-g - mean)^2)``. Where the walk
  of a subset is exact the groups are deleted from the walked kernel; where batch means
  are estimated the subset is walked again, so that their noise is part of the error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from igb.metrics.measure import batches
from igb.theory.nngp.kernel import Architecture, Design

#: groups of the jackknife
PARTS = 4


@dataclass(frozen=True)
class Subsample:
    """The walked points (indices into the N, sorted), how they stand for the N, the
    jackknife group of each, and whether the walk of a subset is its restriction."""

    index: np.ndarray
    design: Design
    group: np.ndarray
    exact: bool


def couples_points(arch: Architecture) -> bool:
    """Whether a point's kernel entries depend on the other points of its batch."""
    batch_stats = arch.placement != "none" and arch.kind == "batch" and arch.norm_mode == "batch"
    return batch_stats or arch.neutralize != "none"


def choose(n_all: int, batch_size: int, points: int, coupled: bool, seed: int) -> Subsample:
    """About ``points`` of the ``n_all`` evaluation points (``points < n_all``)."""
    rng = np.random.default_rng(seed)
    if not coupled:
        index = np.sort(rng.choice(n_all, size=points, replace=False))
        design = Design((slice(0, points),), (n_all,), n_all, n_all * (n_all - 1))
        return Subsample(index, design, rng.permutation(np.arange(points) % PARTS), True)
    full = batches(n_all, batch_size)
    size = full[0].stop - full[0].start
    if points // size >= PARTS:  # whole batches: the walk is exact on them
        picked = np.sort(rng.choice(len(full), size=points // size, replace=False))
        chosen = [full[i] for i in picked]
        group_of_batch = rng.permutation(np.arange(len(chosen)) % PARTS)
        members = [np.arange(s.start, s.stop) for s in chosen]
        group = np.concatenate([np.full(len(m), g) for m, g in zip(members, group_of_batch)])
        design = _design(members, chosen, full, n_all)
        return Subsample(np.concatenate(members), design, group, True)
    chosen, members, groups = [], [], []
    for s in full:
        n = s.stop - s.start
        take = min(n, max(2 * PARTS, round(points * n / n_all)))
        members.append(np.sort(rng.choice(np.arange(s.start, s.stop), size=take, replace=False)))
        groups.append(rng.permutation(np.arange(take) % PARTS))
        chosen.append(s)
    exact = all(len(m) == s.stop - s.start for m, s in zip(members, chosen))
    design = _design(members, chosen, full, n_all)
    return Subsample(np.concatenate(members), design, np.concatenate(groups), exact)


def _design(
    members: list[np.ndarray], chosen: list[slice], full: list[slice], n_all: int
) -> Design:
    starts = np.cumsum([0, *(len(m) for m in members)])
    slices = tuple(slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:]))
    within = sum((s.stop - s.start) * (s.stop - s.start - 1) for s in full)
    return Design(slices, tuple(s.stop - s.start for s in chosen), n_all, within)


def jackknife(
    sub: Subsample,
    kernel: np.ndarray,
    gamma_of: Callable[[np.ndarray, Design], float],
    walk: Callable[[np.ndarray, Design], np.ndarray],
) -> float:
    """The jackknife standard error of ``gamma_of(kernel, sub.design)`` (module docstring).

    ``walk(mask, design)``: the kernel of the walked points where ``mask`` is true."""
    values = []
    for g in range(PARTS):
        keep = sub.group != g
        design = sub.design.keep(keep)
        k = kernel[np.ix_(keep, keep)] if sub.exact else walk(keep, design)
        values.append(gamma_of(k, design))
    v = np.asarray(values)
    return float(np.sqrt((PARTS - 1) / PARTS * np.sum((v - v.mean()) ** 2)))
