"""The infinite-width kernel of the project's MLP, layer by layer, and gamma from it.

State between operations: the second-moment kernel ``K(x, x') = E[z_i(x) z_i(x')]`` of one
hidden unit over the N evaluation points (all units are iid at infinite width) and its
mean ``m(x) = E[z_i(x)]``. Each operation of a block (:data:`igb.nn.norm_act.PLACEMENT_ORDER`)
maps ``(K, m)`` to ``(K, m)``:

- ``Linear(fan_in, fan_out)``, weights iid with variance ``v``, zero bias: the output is a
  zero-mean Gaussian process with ``K' = v * fan_in * K`` (:func:`weight_gain` gives
  ``v * fan_in`` for each ``model.init``);
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

gamma (:func:`gamma_from_kernel`) follows from the kernel ``K`` of the units the head reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from igb.metrics.measure import batches
from igb.nn.norm_act import PLACEMENT_ORDER
from igb.theory.nngp.activations import activation_kernel

#: norm kinds covered on dense layers (group: each group is infinitely wide, like layer)
NORM_KINDS = ("batch", "layer", "rms", "group")
INIT_SCHEMES = ("kaiming_normal", "xavier", "torch_default")


@dataclass
class Units:
    """Second-moment kernel ``k`` (N x N) and mean ``m`` (N,) of one unit of a layer."""

    k: np.ndarray
    m: np.ndarray


def weight_gain(init: str, fan_in: int, fan_out: int) -> float:
    """``Var(W_ij) * fan_in`` of a Linear layer under ``model.init`` (biases are zero).

    kaiming_normal (ReLU gain): ``2 / fan_in``; xavier normal: ``2 / (fan_in + fan_out)``;
    torch_default (``kaiming_uniform_(a=sqrt 5)``): uniform on ``+-1/sqrt(fan_in)``, i.e.
    variance ``1 / (3 fan_in)`` (the sum over ``fan_in`` units is Gaussian at infinite width).
    """
    if init == "kaiming_normal":
        return 2.0
    if init == "xavier":
        return 2.0 * fan_in / (fan_in + fan_out)
    if init == "torch_default":
        return 1.0 / 3.0
    raise ValueError(f"unknown init {init!r}; allowed: {', '.join(INIT_SCHEMES)}")


def _batch_means(a: np.ndarray, slices: Sequence[slice], axis: int) -> np.ndarray:
    """``a`` with each entry replaced by the mean over its batch along ``axis``."""
    out = np.empty_like(a)
    for s in slices:
        idx = (slice(None), s) if axis == 1 else (s, slice(None))
        if a.ndim == 1:
            out[s] = a[s].mean()
        else:
            out[idx] = a[idx].mean(axis=axis, keepdims=True)
    return out


def batch_norm(u: Units, slices: Sequence[slice], eps: float) -> Units:
    """BatchNorm with batch statistics: exact per-batch centring, expected batch variance."""
    col = _batch_means(u.k, slices, axis=1)  # mean over the batch of x'
    k = u.k - col - col.T + _batch_means(col, slices, axis=0)
    var = _batch_means(np.diag(k).copy(), slices, axis=0) + eps
    inv = 1.0 / np.sqrt(var)
    m = (u.m - _batch_means(u.m, slices, axis=0)) * inv
    return Units(k=k * np.outer(inv, inv), m=m)


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


def apply_norm(u: Units, arch: Architecture, slices: Sequence[slice]) -> Units:
    if arch.kind == "batch":
        if arch.norm_mode == "eval":
            return Units(k=u.k / (1 + arch.eps), m=u.m / np.sqrt(1 + arch.eps))
        return batch_norm(u, slices, arch.eps)
    if arch.kind in ("layer", "group"):
        return layer_norm(u, arch.eps)
    if arch.kind == "rms":
        return rms_norm(u, arch.eps)
    raise ValueError(f"norm kind {arch.kind!r} not covered; covered: {', '.join(NORM_KINDS)}")


def final_kernel(x: np.ndarray, arch: Architecture, batch_size: int) -> np.ndarray:
    """Second-moment kernel of the units the head reads, on inputs ``x`` (N, ...)."""
    return layer_kernels(x, arch, batch_size)[-1][1]


def layer_kernels(
    x: np.ndarray, arch: Architecture, batch_size: int
) -> list[tuple[str, np.ndarray]]:
    """``(name, K)`` after every part of every block, named as :class:`igb.nn.mlp.MLP`
    names its modules (``blocks.<i>.<part>``); the last is the kernel the head reads."""
    x = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
    n, fan_in = x.shape
    slices = batches(n, batch_size)
    u = Units(k=x @ x.T / fan_in, m=np.zeros(n))  # only read by the first Linear
    out: list[tuple[str, np.ndarray]] = []
    for i in range(arch.depth):
        for part in PLACEMENT_ORDER[arch.placement]:
            if part == "layer":
                gain = weight_gain(arch.init, fan_in, arch.width)
                u = Units(k=gain * u.k, m=np.zeros(n))
                fan_in = arch.width
            elif part == "act":
                a = activation_kernel(arch.activation, u.k)
                u = Units(k=a.q, m=a.m)
            elif part == "norm":
                u = apply_norm(u, arch, slices)
            else:
                continue  # no pooling in an MLP
            out.append((f"blocks.{i}.{part}", u.k))
    if arch.neutralize != "none":  # the exact per-batch centring of batch_norm, no scaling
        col = _batch_means(u.k, slices, axis=1)
        out.append(("head:input", u.k - col - col.T + _batch_means(col, slices, axis=0)))
    return out


def gamma_from_kernel(k: np.ndarray) -> float:
    """gamma of the logits ``o = W h`` (W iid, zero bias) of units with kernel ``k``.

    The C logits are iid Gaussian processes with kernel ``s^2 K`` (s^2 the head's gain);
    the centred ``d_c = o_c - mean_k o_k`` have kernel ``(1 - 1/C) s^2 K``. The measured
    estimator (:func:`igb.metrics.gamma_from_moments`) is ``E[mean_c mu_c^2] /
    E[mean_c s2_c]`` with ``mu_c = mean_x d_c`` and ``s2_c`` the population variance over
    the same N points, so ``E[mu_c^2] = (1 - 1/C) s^2 mean(K)`` and ``E[s2_c] = (1 - 1/C)
    s^2 (mean(diag K) - mean(K))``: the factor ``(1 - 1/C) s^2`` cancels and

        gamma = mean(K) / (mean(diag K) - mean(K)).

    Being the same plug-in estimator on the same points, it carries the same finite-N
    floor (about 1/N for a neutral network) as the measurement.
    """
    mean_all = float(k.mean())
    spread = float(np.diag(k).mean()) - mean_all
    if not spread > 0:
        raise ValueError("the units give every evaluation point the same logits: gamma undefined")
    return max(mean_all, 0.0) / spread
