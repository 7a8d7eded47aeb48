"""The infinite-width kernel of the project's MLP, layer by layer, and gamma from it.

State between operations: the second-moment kernel ``K(x, x') = E[z_i(x) z_i(x')]`` of one
hidden unit over the N evaluation points (all units are iid at infinite width) and its
mean ``m(x) = E[z_i(x)]``. Each operation of a block (:data:`igb.nn.norm_act.PLACEMENT_ORDER`)
maps ``(K, m)`` to ``(K, m)``:

- ``Linear(fan_in, fan_out)``, weights iid with variance ``v``, biases iid ``N(0, s_b^2)``
  (``model.bias_var``; one draw per unit, the same for every input): the output is a
  zero-mean Gaussian process with ``K' = v * fan_in * K + s_b^2`` (:func:`weight_gain`
  gives ``v * fan_in`` for each ``model.init``; ``model.init=normal``: ``model.weight_var``);
- a pool over groups of ``g`` units (``model.unit_pool``): ``avg`` of ``g`` iid units has
  ``Q' = Q / g + (1 - 1/g) m m^T`` and the same mean; ``max`` is declined (its pair map
  is a ``2g``-dimensional integral per pair of points: :mod:`igb.theory.meanfield` has it
  for one pair);
- activation: :func:`igb.theory.nngp.activations.activation_kernel`;
- norms, with weight 1 and bias 0 as at initialization (``eps`` kept):

  - ``batch`` (per unit over each batch of the measurement, :func:`igb.metrics.measure.batches`):
    ``y(x) = (z(x) - mean_b z) / sqrt(var_b z + eps)``. The centring is linear, so it is
    exact: ``K_c = P K P`` with ``P`` the per-batch centring (points in different
    batches are centred by different batch means). The batch variance of a unit is
    replaced by its expectation ``mean_{x in b} K_c(x, x)`` (large batch: its relative
    fluctuation is ``O(1/sqrt(effective rank of the batch's kernel))``).
    ``norm_mode="eval"``: running statistics 0/1 at initialization, ``y = z / sqrt(1 + eps)``;
  - ``layer`` (and ``group``, whose every group is infinitely wide too), per sample over
    the units: the feature mean of a sample tends to ``m(x)`` and its feature variance to
    ``K(x, x) - m(x)^2``, so ``K' = (K - m m^T) / sqrt(s s')`` with
    ``s = K(x, x) - m(x)^2 + eps`` and ``m' = 0``. After a ReLU this removes the offset
    ``m m^T``; before the activation (``m = 0``) it only rescales each point;
  - ``rms``: only divides, ``K' = K / sqrt(r r')``, ``r = K(x, x) + eps``,
    ``m' = m / sqrt(r)``: the offset stays.

gamma (:func:`gamma_from_kernel`) follows from the kernel ``K`` of the units the head reads,
and only from its means: :func:`gamma_kernel` walks no more entries than they need.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from igb.metrics.measure import batches
from igb.nn.norm_act import PLACEMENT_ORDER
from igb.theory.nngp.activations import activation_kernel

#: norm kinds covered on dense layers (group: each group is infinitely wide, like layer)
NORM_KINDS = ("batch", "layer", "rms", "group")
INIT_SCHEMES = ("kaiming_normal", "xavier", "torch_default", "normal")
#: unit pools the walk follows (the max over units is declined, with the reason)
UNIT_POOLS = ("none", "avg")
#: rows of the N x N kernel centred at a time (a strip of them stays in cache)
_STRIP_ROWS = 64


@dataclass
class Units:
    """Second-moment kernel ``k`` (N x N) and mean ``m`` (N,) of one unit of a layer."""

    k: np.ndarray
    m: np.ndarray


def weight_gain(init: str, fan_in: int, fan_out: int, weight_var: float | None = None) -> float:
    """``Var(W_ij) * fan_in`` of a Linear layer under ``model.init``.

    normal: ``weight_var``; kaiming_normal (ReLU gain): ``2 / fan_in``; xavier normal:
    ``2 / (fan_in + fan_out)``;
    torch_default (``kaiming_uniform_(a=sqrt 5)``): uniform on ``+-1/sqrt(fan_in)``, i.e.
    variance ``1 / (3 fan_in)`` (the sum over ``fan_in`` units is Gaussian at infinite width).
    """
    if init == "normal" and weight_var is not None:
        return float(weight_var)
    if init == "kaiming_normal":
        return 2.0
    if init == "xavier":
        return 2.0 * fan_in / (fan_in + fan_out)
    if init == "torch_default":
        return 1.0 / 3.0
    raise ValueError(f"unknown init {init!r}; allowed: {', '.join(INIT_SCHEMES)}")


@dataclass(frozen=True)
class Design:
    """How walked points stand for the N evaluation points (:mod:`.subsample`).

    The walked points come in consecutive ``slices``, each the walked members of one batch
    of the measurement, whose size (points of the evaluation set) is ``sizes[i]``. A batch
    walked whole gives the exact kernel; one walked in part has its batch means estimated
    from its members (:func:`_row_means`). ``n_points``: N; ``pairs_within``: the
    ordered pairs of distinct points in one batch, over all batches of the N.
    """

    slices: tuple[slice, ...]
    sizes: tuple[int, ...]
    n_points: int
    pairs_within: int

    def keep(self, mask: np.ndarray) -> Design:
        """The design of the walked points where ``mask`` is true (batches left empty dropped)."""
        slices, sizes, start = [], [], 0
        for s, size in zip(self.slices, self.sizes, strict=True):
            n = int(mask[s].sum())
            if n:
                slices.append(slice(start, start + n))
                sizes.append(size)
                start += n
        return Design(tuple(slices), tuple(sizes), self.n_points, self.pairs_within)


def _batch_means(a: np.ndarray, slices: Sequence[slice]) -> np.ndarray:
    """``a`` (N,) with each entry replaced by the mean over its batch."""
    out = np.empty_like(a)
    for s in slices:
        out[s] = a[s].mean()
    return out


def _row_means(k: np.ndarray, slices: Sequence[slice], sizes: Sequence[int] | None) -> np.ndarray:
    """``r`` (N, B): ``r[x, j]`` the mean of ``K(x, .)`` over batch ``j``.

    ``sizes``: the batches' sizes when only some of their points are walked. The mean over
    a batch of a kernel's row ``K(x, .)`` holds ``K(x, x)`` with weight ``1/size`` when
    ``x`` is in that batch: the walked members estimate the rest."""
    r = np.empty((k.shape[0], len(slices)))
    for j, s in enumerate(slices):
        r[:, j] = k[:, s].mean(axis=1)
        n = s.stop - s.start
        size = n if sizes is None else sizes[j]
        if size != n:
            block = k[s, s]
            diag = np.diag(block)
            others = (block.sum(axis=1) - diag) / max(n - 1, 1)
            r[s, j] = (diag + (size - 1) * others) / size
    return r


def centre(
    k: np.ndarray,
    slices: Sequence[slice],
    sizes: Sequence[int] | None = None,
    eps: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``P K P``: ``K`` centred over the batch of each point of a pair (points in different
    batches by different batch means), as a new array; with ``eps``, BatchNorm's division
    too: times ``s s^T``, ``s = 1 / sqrt(batch mean of diag(P K P) + eps)``. Returns the
    kernel and ``s`` (ones without ``eps``).

    With ``r`` the batch means of each row (:func:`_row_means`) and ``M`` the batch means
    of ``r``, entry ``(x, x')`` is ``K(x, x') - r(x, b') - r(x', b) + M(b, b')``: written
    in strips of rows that stay in cache, instead of materialising the N x N matrices of
    the means (each one a pass over memory)."""
    r = _row_means(k, slices, sizes)
    batch_of = np.repeat(np.arange(len(slices)), [s.stop - s.start for s in slices])
    means = np.stack([r[s].mean(axis=0) for s in slices])  # (B, B): M(b, b')
    inv = np.ones(k.shape[0])
    if eps is not None:
        diag = np.diag(k) - 2 * r[np.arange(k.shape[0]), batch_of] + means[batch_of, batch_of]
        inv = 1.0 / np.sqrt(_batch_means(diag, slices) + eps)
    out = np.empty_like(k)
    for i, s in enumerate(slices):
        for start in range(s.start, s.stop, _STRIP_ROWS):
            rows = slice(start, min(start + _STRIP_ROWS, s.stop))
            strip = out[rows]
            np.subtract(k[rows], (r[rows] - means[i])[:, batch_of], out=strip)
            strip -= r[:, i]
            if eps is not None:
                strip *= inv[rows, None]
                strip *= inv
    return out, inv


def batch_norm(
    u: Units, slices: Sequence[slice], eps: float, sizes: Sequence[int] | None = None
) -> Units:
    """BatchNorm with batch statistics: exact per-batch centring, expected batch variance
    (``sizes``: of batches walked in part, :class:`Design`)."""
    k, inv = centre(u.k, slices, sizes, eps)
    return Units(k=k, m=(u.m - _batch_means(u.m, slices)) * inv)


def layer_norm(u: Units, eps: float) -> Units:
    inv = 1.0 / np.sqrt(np.clip(np.diag(u.k) - u.m**2, 0.0, None) + eps)
    return Units(k=(u.k - np.outer(u.m, u.m)) * np.outer(inv, inv), m=np.zeros_like(u.m))


def rms_norm(u: Units, eps: float) -> Units:
    inv = 1.0 / np.sqrt(np.diag(u.k) + eps)
    return Units(k=u.k * np.outer(inv, inv), m=u.m * inv)


@dataclass(frozen=True)
class Architecture:
    """What the kernel walk needs to know about one MLP configuration."""

    depth: int
    width: int
    activation: str
    init: str
    placement: str
    kind: str
    eps: float
    norm_mode: str = "batch"
    groups: int = 8  # GroupNorm's groups (the finite-width walk reads it)
    #: ``model.neutralize``: ``head``/``head_frozen`` centre the head's input per batch (a
    #: measurement at initialization sees the batch means in both)
    neutralize: str = "none"
    #: ``model.init=normal``'s variances (None: the scheme's) and the biases' variance
    weight_var: float | None = None
    bias_var: float = 0.0
    head_weight_var: float | None = None
    head_bias_var: float | None = None
    #: ``model.unit_pool`` (``none`` or ``avg``) over groups of ``unit_pool_size`` units
    unit_pool: str = "none"
    unit_pool_size: int = 2
    #: the number of classes (the head's fan_out: xavier's head gain reads it)
    num_classes: int = 10

    @property
    def units_out(self) -> int:
        """Units a block hands on (the pool reduces groups of units to one)."""
        return self.width if self.unit_pool == "none" else self.width // self.unit_pool_size

    def gain(self, fan_in: int) -> float:
        """``Var(W) * fan_in`` of a hidden Linear layer."""
        return weight_gain(self.init, fan_in, self.width, self.weight_var)

    def head_offset(self, fan_in: int) -> float:
        """The head bias's variance over the head's weight gain: the constant its bias adds
        to the logits' kernel, in units of the kernel of the units it reads."""
        bias = self.bias_var if self.head_bias_var is None else self.head_bias_var
        if bias == 0:
            return 0.0
        wvar = self.weight_var if self.head_weight_var is None else self.head_weight_var
        return bias / weight_gain(self.init, fan_in, self.num_classes, wvar)


def apply_norm(
    u: Units, arch: Architecture, slices: Sequence[slice], sizes: Sequence[int] | None = None
) -> Units:
    if arch.kind == "batch":
        if arch.norm_mode == "eval":
            return Units(k=u.k / (1 + arch.eps), m=u.m / np.sqrt(1 + arch.eps))
        return batch_norm(u, slices, arch.eps, sizes)
    if arch.kind in ("layer", "group"):
        return layer_norm(u, arch.eps)
    if arch.kind == "rms":
        return rms_norm(u, arch.eps)
    raise ValueError(f"norm kind {arch.kind!r} not covered; covered: {', '.join(NORM_KINDS)}")


@dataclass(frozen=True)
class InputKernel:
    """``x x^T / fan_in`` of the (flattened) evaluation inputs, what the first Linear
    reads: computed once per set of points and read by the infinite-width walk and the
    finite-width correction alike (at thousands of input dimensions, the largest product
    of the walk)."""

    k: np.ndarray
    fan_in: int

    @classmethod
    def of(cls, x: np.ndarray | InputKernel) -> InputKernel:
        """The input kernel of the inputs ``x`` (N, ...), or ``x`` itself if it is one."""
        if isinstance(x, InputKernel):
            return x
        x = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
        return cls(x @ x.T / x.shape[1], x.shape[1])

    def __len__(self) -> int:
        return self.k.shape[0]

    def take(self, index: np.ndarray | slice) -> InputKernel:
        """The input kernel of the points ``index`` (an index array, a mask or a slice)."""
        if isinstance(index, slice):
            return InputKernel(self.k[index, index], self.fan_in)
        return InputKernel(self.k[np.ix_(index, index)], self.fan_in)


def final_kernel(
    x: np.ndarray | InputKernel, arch: Architecture, batch_size: int, design: Design | None = None
) -> np.ndarray:
    """Second-moment kernel of the units the head reads, on inputs ``x`` (N, ...)."""
    # only the last (name, K): one layer's kernels held at once
    return deque(layer_kernels(x, arch, batch_size, design), maxlen=1)[0][1]


def ends_centred(arch: Architecture) -> bool:
    """Whether the walk ends in a centring over each batch (BatchNorm with batch statistics
    last in the block, or a centred head input): then every unit the head reads sums to
    zero over each batch, at any width."""
    order = PLACEMENT_ORDER[arch.placement]
    batch_stats = arch.kind == "batch" and arch.norm_mode == "batch"
    return arch.neutralize != "none" or (order[-1] == "norm" and batch_stats and arch.depth > 0)


def gamma_kernel(
    x: np.ndarray | InputKernel, arch: Architecture, batch_size: int, design: Design | None = None
) -> np.ndarray:
    """A kernel with the means of :func:`final_kernel`'s, which is all gamma reads
    (:func:`kernel_means`), walking only what they need.

    Where the walk ends centred over each batch (:func:`ends_centred`), each block of
    pairs across two batches sums to zero, and so does each batch's own block: only the
    diagonal entries count. A batch's own block depends on no other batch (the centring
    and every other part read the pair, its points' diagonals and that batch), so each
    batch is walked alone, B walks of (N / B)^2 entries instead of one of N^2, and the
    blocks across batches are left at zero, their exact sum."""
    x = InputKernel.of(x)
    slices = list(design.slices) if design else batches(len(x), batch_size)
    if not ends_centred(arch) or len(slices) == 1:
        return final_kernel(x, arch, batch_size, design)
    out = np.zeros((len(x), len(x)))
    for i, s in enumerate(slices):
        n = s.stop - s.start
        alone = Design((slice(0, n),), (design.sizes[i],), n, 0) if design else None
        out[s, s] = final_kernel(x.take(s), arch, n, alone)
    return out


def layer_kernels(
    x: np.ndarray | InputKernel,
    arch: Architecture,
    batch_size: int,
    design: Design | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, K)`` after every part of every block, named as :class:`igb.nn.mlp.MLP`
    names its modules (``blocks.<i>.<part>``); the last is the kernel the head reads.
    ``x``: the inputs (N, ...) or their :class:`InputKernel`; ``design``: ``x`` are some
    of the evaluation points (:class:`Design`), not all. Yielded one at a time: a deep
    walk holding every layer's N x N kernel would need depth times the memory; each
    yielded kernel is a new array (a caller may keep it)."""
    inputs = InputKernel.of(x)
    n, fan_in = len(inputs), inputs.fan_in
    slices = list(design.slices) if design else batches(n, batch_size)
    sizes = design.sizes if design else None
    u = Units(k=inputs.k, m=np.zeros(n))  # only read by the first Linear
    for i in range(arch.depth):
        for part in PLACEMENT_ORDER[arch.placement]:
            if part == "layer":
                k = u.k * arch.gain(fan_in)
                if arch.bias_var:
                    k += arch.bias_var
                u = Units(k=k, m=np.zeros(n))
                fan_in = arch.units_out
            elif part == "act":
                a = activation_kernel(arch.activation, u.k)
                u = Units(k=a.q, m=a.m)
            elif part == "norm":
                u = apply_norm(u, arch, slices, sizes)
            elif arch.unit_pool == "avg":
                g = arch.unit_pool_size
                u = Units(k=u.k / g + (1 - 1 / g) * np.outer(u.m, u.m), m=u.m)
            elif arch.unit_pool != "none":
                raise ValueError(f"model.unit_pool={arch.unit_pool} is not covered by the walk")
            else:
                continue
            yield f"blocks.{i}.{part}", u.k
    if arch.neutralize != "none":  # the exact per-batch centring of batch_norm, no scaling
        yield "head:input", centre(u.k, slices, sizes)[0]


def kernel_means(k: np.ndarray, design: Design | None = None) -> tuple[float, float]:
    """``(mean(diag K), mean(K))`` over the N evaluation points, from the kernel of all of
    them or of the walked ones of ``design``. The N^2 pairs are a point with itself, pairs
    within one batch and pairs across batches (BatchNorm treats the two differently); each
    kind's mean is estimated from the walked pairs of that kind, weighted by its share of
    the N^2 pairs, so that the finite-N floor is N's, not the subsample's."""
    diag = float(np.diag(k).mean())
    if design is None:
        return diag, float(k.mean())
    n_all = design.n_points
    within_sum = within_pairs = weighted = weights = 0.0
    for s, size in zip(design.slices, design.sizes, strict=True):
        block = k[s, s]
        n = s.stop - s.start
        inside = float(block.sum()) - float(np.trace(block))
        if n > 1:  # the batch's mean within, weighted by its pairs among the N
            weighted += size * (size - 1) * inside / (n * (n - 1))
            weights += size * (size - 1)
        within_sum += inside
        within_pairs += n * (n - 1)
    n = k.shape[0]
    cross_walked = n * (n - 1) - within_pairs
    cross_all = n_all * (n_all - 1) - design.pairs_within
    total = n_all * diag + (design.pairs_within * weighted / weights if weights else 0.0)
    if cross_all > 0 and cross_walked > 0:
        off = float(k.sum()) - float(np.trace(k)) - within_sum
        total += cross_all * off / cross_walked
    return diag, total / n_all**2


def gamma_from_kernel(k: np.ndarray, design: Design | None = None, offset: float = 0.0) -> float:
    """gamma of the logits ``o = W h + b`` (W iid) of units with kernel ``k``.

    ``offset``: the head bias's variance over its weight gain
    (:meth:`Architecture.head_offset`): the bias adds the same constant to every entry of
    the logits' kernel, so it adds ``offset`` to ``mean(K)`` and nothing to the spread.

    The C logits are iid Gaussian processes with kernel ``s^2 K`` (s^2 the head's gain);
    the centred ``d_c = o_c - mean_k o_k`` have kernel ``(1 - 1/C) s^2 K``. The measured
    estimator (:func:`igb.metrics.gamma_from_moments`) is ``E[mean_c mu_c^2] /
    E[mean_c s2_c]`` with ``mu_c = mean_x d_c`` and ``s2_c`` the population variance over
    the same N points, so ``E[mu_c^2] = (1 - 1/C) s^2 mean(K)`` and ``E[s2_c] = (1 - 1/C)
    s^2 (mean(diag K) - mean(K))``: the factor ``(1 - 1/C) s^2`` cancels and

        gamma = mean(K) / (mean(diag K) - mean(K)).

    Being the same plug-in estimator on the same points, it carries the same finite-N
    floor (about 1/N for a neutral network) as the measurement; with ``design``, ``k`` is
    the kernel of some of the points and the means are those of all N (:func:`kernel_means`).
    """
    diag, mean_all = kernel_means(k, design)
    spread = diag - mean_all
    if not spread > 0:
        raise ValueError("the units give every evaluation point the same logits: gamma undefined")
    return max(mean_all + offset, 0.0) / spread
