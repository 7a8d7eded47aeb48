"""What an activation does to the kernel of a Gaussian process, in closed form or by quadrature.

Input: the second-moment kernel ``K`` (N x N) of zero-mean Gaussian pre-activations,
``u(x) ~ GP(0, K)``. Output: ``Q(x, x') = E[phi(u(x)) phi(u(x'))]`` (the second moment,
offset included) and the mean ``m(x) = E[phi(u(x))]``. The mean is the offset a
ReLU-like activation puts on every unit; the norms downstream decide what happens to it.

- ``relu``: the arc-cosine kernel ``sqrt(k k') (sin t + (pi - t) cos t) / (2 pi)``,
  ``t = arccos rho``, and ``m = sqrt(k / (2 pi))``.
- ``leaky_relu`` (slope ``a``): ``phi = (1 - a) relu(u) + a u``, so
  ``Q = (1 - a)^2 Q_relu + a K`` (``E[relu(u) v] = K / 2``) and ``m = (1 - a) m_relu``.
- ``identity``: ``Q = K``, ``m = 0``.
- every other activation of :data:`igb.nn.norm_act.ACTIVATIONS` (gelu, tanh, silu, elu,
  sigmoid): Mehler's formula. With ``u = a z``, ``v = b z'``, ``corr(z, z') = rho``,
  ``E[phi(a z) phi(b z')] = sum_n c_n(a) c_n(b) rho^n`` where ``c_n(a) = E[phi(a z)
  He_n(z)] / sqrt(n!)``. The coefficients come from a 1-D Gauss-Legendre rule on each
  half-line (the activation module itself is evaluated, so its defaults are the
  network's), the series is summed by Horner's rule over all pairs at once, truncated
  where the tail ``E[phi^2] - sum c_n^2`` (known exactly per point) is below
  :data:`TAIL_TOL` of ``E[phi^2]``; the diagonal is set to the exact ``E[phi^2]`` and
  the remaining tail is added as ``t(x) t(x') rho^(M+1)``, which is exact on the
  diagonal and bounds the error by the tail elsewhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from igb.nn.norm_act import ACTIVATIONS

#: relative truncation tolerance of the Hermite series (on E[phi^2], the worst point)
TAIL_TOL = 1e-6
#: most Hermite orders summed; beyond, the exact tail term closes the series
MAX_ORDER = 96
#: Gauss-Legendre nodes on each half-line [0, Z_MAX] (the kink of elu / relu-like
#: activations sits at 0, so each half is smooth and the rule converges spectrally)
_NODES_PER_HALF = 256
_Z_MAX = 12.0
#: a Hermite coefficient below this fraction of sqrt(E[phi^2]) at every point is zero
_ZERO_COEF = 1e-13
#: rows per cache-resident tile of the pairwise maps
_TILE_ROWS = 32


@dataclass(frozen=True)
class ActivationKernel:
    """``Q = E[phi(u) phi(u')]`` (N x N) and ``m = E[phi(u)]`` (N,) of one layer.

    ``error_bound``: a bound on the truncation error of any entry of ``Q`` (0 for the
    closed forms): the series' tail beyond order M and the tail term are each at most
    ``t(x) t(x')`` by Cauchy-Schwarz, so the error is at most ``2 max_x t(x)^2``.
    """

    q: np.ndarray
    m: np.ndarray
    error_bound: float = 0.0


TileFn = Callable[[np.ndarray, slice, slice], np.ndarray]


def _pairwise(k: np.ndarray, scale: np.ndarray, tile_fn: TileFn) -> np.ndarray:
    """A symmetric map of the correlations ``rho = K / (s s')``, computed tile by tile.

    ``tile_fn(rho_tile, rows, cols)`` returns the map on one tile. Tiles of
    :data:`_TILE_ROWS` rows on and above the diagonal stay in cache through every
    operation of the map (the whole N x N matrix would be streamed from memory once per
    operation) and are mirrored below it. ``rho`` is clipped into [-1, 1] and set to 0
    where a point has zero variance.
    """
    n = k.shape[0]
    inv = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
    q = np.empty_like(k)
    for start in range(0, n, _TILE_ROWS):
        rows, cols = slice(start, min(start + _TILE_ROWS, n)), slice(start, n)
        rho = k[rows, cols] * inv[rows, None]
        rho *= inv[None, cols]
        np.clip(rho, -1.0, 1.0, out=rho)
        tile = tile_fn(rho, rows, cols)
        q[rows, cols] = tile
        q[cols, rows] = tile.T
    return q


def relu_kernel(k: np.ndarray) -> ActivationKernel:
    scale = np.sqrt(np.clip(np.diag(k), 0.0, None))

    def arc_cosine(rho: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        q = np.sqrt(1.0 - rho * rho)
        q += (np.pi - np.arccos(rho)) * rho
        q *= np.outer(scale[rows], scale[cols] / (2 * np.pi))
        return q

    q = _pairwise(k, scale, arc_cosine)
    np.fill_diagonal(q, scale**2 / 2)  # exact where rho = 1
    return ActivationKernel(q=q, m=scale / np.sqrt(2 * np.pi))


def leaky_relu_kernel(k: np.ndarray, slope: float) -> ActivationKernel:
    base = relu_kernel(k)
    return ActivationKernel(q=(1 - slope) ** 2 * base.q + slope * k, m=(1 - slope) * base.m)


@functools.cache
def normal_rule() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``E[f(z)]``, ``z ~ N(0, 1)``, exact at a kink at 0: Gauss-Legendre
    on [-Z, 0] and [0, Z] (built on first use: a job whose theory is closed-form never
    pays for it)."""
    x, w = np.polynomial.legendre.leggauss(_NODES_PER_HALF)
    z = (x + 1) * _Z_MAX / 2
    w = w * _Z_MAX / 2 * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    nodes, weights = np.concatenate([-z[::-1], z]), np.concatenate([w[::-1], w])
    nodes.flags.writeable = weights.flags.writeable = False  # shared by every caller
    return nodes, weights


def hermite(z: np.ndarray, order: int) -> np.ndarray:
    """Normalised probabilists' Hermite functions ``He_n(z) / sqrt(n!)``, n = 0..order."""
    h = np.empty((order + 1, z.size))
    h[0] = 1.0
    if order:
        h[1] = z
    for n in range(1, order):
        h[n + 1] = (z * h[n] - np.sqrt(n) * h[n - 1]) / np.sqrt(n + 1)
    return h


@functools.cache
def _hermite_table() -> np.ndarray:
    """The Hermite functions on the nodes of :func:`normal_rule`, up to ``MAX_ORDER``."""
    table = hermite(normal_rule()[0], MAX_ORDER)
    table.flags.writeable = False
    return table


def hermite_coefficients(act: torch.nn.Module, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``c_n(a) = E[phi(a z) He_n(z)] / sqrt(n!)`` (len(scale), MAX_ORDER + 1) for each scale
    ``a``, and ``E[phi(a z)^2]`` (exact, not the truncated series)."""
    z, w = normal_rule()
    with torch.no_grad():
        phi = act(torch.from_numpy(np.outer(scale, z))).numpy()  # (N, nodes)
    weighted = phi * w
    return weighted @ _hermite_table().T, (weighted * phi).sum(axis=1)


def mehler_kernel(k: np.ndarray, act: torch.nn.Module) -> ActivationKernel:
    """Kernel of a smooth activation by its Hermite (Mehler) series, vectorised over pairs."""
    scale = np.sqrt(np.clip(np.diag(k), 0.0, None))
    coef, second = hermite_coefficients(act, scale)
    tail = second[:, None] - np.cumsum(coef**2, axis=1)
    rel = tail / np.where(second > 0, second, 1.0)[:, None]
    below = np.flatnonzero(rel.max(axis=0) <= TAIL_TOL)
    order = int(below[0]) if below.size else MAX_ORDER
    t = np.sqrt(np.clip(tail[:, order], 0.0, None))
    # orders whose coefficient vanishes for every point are skipped: the even orders of
    # tanh, sigmoid - 1/2 (odd functions), the odd orders > 1 of gelu and silu (x/2 plus
    # an even function): Horner's rule then steps in rho^2
    size = np.sqrt(np.where(second > 0, second, 1.0))
    active = [n for n in range(order + 1) if np.abs(coef[:, n] / size).max() > _ZERO_COEF]
    skipped = sum(float((coef[:, n] ** 2).max()) for n in range(order + 1) if n not in active)

    def horner(rho: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        """sum_n c_n c_n^T rho^n + t t^T rho^(M+1), Horner's rule from the tail term."""
        powers = {1: rho}
        q = np.outer(t[rows], t[cols])
        term = np.empty_like(q)
        prev = order + 1
        for n in reversed(active):
            gap = prev - n
            if gap not in powers:
                powers[gap] = rho**gap
            q *= powers[gap]
            q += np.multiply(coef[rows, n, None], coef[None, cols, n], out=term)
            prev = n
        if prev:
            q *= rho**prev
        return q

    q = _pairwise(k, scale, horner)
    np.fill_diagonal(q, second)
    return ActivationKernel(q=q, m=coef[:, 0], error_bound=2 * float((t * t).max()) + skipped)


#: activations with a closed form (name -> kernel map); the rest go through Mehler's series
CLOSED_FORM = ("relu", "leaky_relu", "identity")


def activation_kernel(name: str, k: np.ndarray) -> ActivationKernel:
    """``(Q, m)`` of activation ``name`` (a key of ``ACTIVATIONS``) on ``GP(0, K)``."""
    if name == "relu":
        return relu_kernel(k)
    if name == "identity":
        return ActivationKernel(q=k.copy(), m=np.zeros(k.shape[0]))
    act = ACTIVATIONS[name]()
    if name == "leaky_relu":
        return leaky_relu_kernel(k, float(act.negative_slope))
    return mehler_kernel(k, act.double())


def pair_moments(name: str, k11: np.ndarray, k22: np.ndarray, k12: np.ndarray) -> np.ndarray:
    """``(E phi_a^2, E phi_b^2, E phi_a phi_b, E phi_a, E phi_b)`` (..., 5) for pairs of
    zero-mean Gaussians with these (co)variances: each pair walked as a 2 x 2 kernel."""
    shape = np.shape(k11)
    a, b, c = (np.ravel(v).astype(np.float64) for v in (k11, k22, k12))
    m = a.size
    big = np.zeros((2 * m, 2 * m))
    idx = np.arange(m)
    big[2 * idx, 2 * idx], big[2 * idx + 1, 2 * idx + 1] = a, b
    big[2 * idx, 2 * idx + 1] = big[2 * idx + 1, 2 * idx] = c
    out = activation_kernel(name, big)
    q = out.q
    s = np.stack(
        [q[2 * idx, 2 * idx], q[2 * idx + 1, 2 * idx + 1], q[2 * idx, 2 * idx + 1],
         out.m[2 * idx], out.m[2 * idx + 1]], axis=-1,
    )  # fmt: skip
    return s.reshape(*shape, 5)
