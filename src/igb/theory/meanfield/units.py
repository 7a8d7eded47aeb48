"""What one hidden unit does to a Gaussian input, for the mean-field maps.

A unit is the activation ``phi`` of one pre-activation, or of a group of ``g`` iid ones
reduced by ``max`` or ``avg`` (``model.unit_pool``): ``f(z_1..z_g)``. With the
pre-activations of one input ``~ N(0, q)`` and those of two inputs correlated ``c``
(the same ``c`` for every unit of the group), the maps need

- ``V(q) = E f^2``, ``M(q) = E f`` and ``G(q) = E |grad f|^2`` (the derivative of the
  pair map at ``c = 1`` is ``q G``: Price's theorem, one term per unit of the group);
- ``Q(q, c) = E f(u) f(v)``, through its chaos spectrum: ``Q = sum_n e_n c^n`` (Mehler's
  formula; for a group, ``e_n`` is the weight of the total-degree-``n`` Hermite
  polynomials of ``f``), the tail ``V - sum e_n`` closing the series at ``c^(M+1)``.

``avg`` over ``g`` iid units: ``V = V_1 / g + (1 - 1/g) M_1^2``, ``G = G_1 / g``,
``e_0 = M_1^2``, ``e_n = e_n^(1) / g``. ``max`` needs a monotone activation
(``max phi(z_j) = phi(max z_j)``): ``V``, ``M``, ``G`` are 1-D integrals over the law of the
maximum, ``g phi(x) Phi(x)^(g - 1)``; its spectrum, for ``g = 2``, a 2-D quadrature in
``S = (z_1 + z_2) / sqrt 2`` and ``D = (z_1 - z_2) / sqrt 2`` (the kink of the max at
``D = 0`` falls between the nodes of a rule split at 0).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from igb.nn.norm_act import ACTIVATIONS
from igb.theory.nngp.activations import hermite, hermite_coefficients, normal_rule

POOLS = ("none", "max", "avg")
#: ``phi(a z) = a phi(z)`` for a > 0: the length map is linear in q
HOMOGENEOUS = ("relu", "leaky_relu", "identity")
#: non-decreasing activations: the max over units commutes with them
MONOTONE = ("relu", "leaky_relu", "identity", "tanh", "sigmoid", "elu")
#: the most units a max-pool's pair map covers (its spectrum is a 2-D quadrature)
MAX_POOL_SIZE = 2
#: orders of the spectrum of a max over two units
_MAX_ORDER_2D = 40
_NODES_2D = 96  # Gauss-Legendre nodes per half-line of the 2-D rule


def unit_reason(activation: str, pool: str, size: int) -> str | None:
    """Why the readout does not cover this unit, or None."""
    if activation not in ACTIVATIONS:
        return f"activation {activation!r} is not one of {', '.join(ACTIVATIONS)}"
    if pool not in POOLS:
        return f"model.unit_pool={pool} is not one of {', '.join(POOLS)}"
    if pool == "max" and activation not in MONOTONE:
        return (
            f"model.unit_pool=max with model.activation={activation}: the max over units "
            f"commutes only with a monotone activation ({', '.join(MONOTONE)})"
        )
    if pool == "max" and size > MAX_POOL_SIZE:
        return (
            f"model.unit_pool=max over model.unit_pool_size={size} units: the pair map is "
            f"covered for groups of {MAX_POOL_SIZE}"
        )
    return None


@dataclass(frozen=True)
class Unit:
    """One unit: ``activation``, reduced over groups of ``size`` by ``pool``."""

    activation: str
    pool: str = "none"
    size: int = 1

    @property
    def group(self) -> int:
        return 1 if self.pool == "none" else self.size

    @property
    def homogeneous(self) -> bool:
        return self.activation in HOMOGENEOUS

    def _module(self) -> torch.nn.Module:
        return ACTIVATIONS[self.activation]().double()

    def _phi(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """phi and phi' at ``x`` (autograd: the module the network uses)."""
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).requires_grad_(True)
        y = self._module()(t)
        (grad,) = torch.autograd.grad(y.sum(), t)
        return y.detach().numpy(), grad.numpy()

    def moments(self, q: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(V, M, G)`` at pre-activation variance ``q`` (any shape)."""
        z, w = normal_rule()
        if self.pool == "max":
            from scipy.special import ndtr  # scipy: only for max-pooled units

            w = w * self.size * ndtr(z) ** (self.size - 1)  # the law of the max of the group
        q = np.asarray(q, dtype=np.float64)
        phi, dphi = self._phi(np.sqrt(q)[..., None] * z)
        v, m, g = phi**2 @ w, phi @ w, dphi**2 @ w
        if self.pool == "avg":
            k = self.size
            return v / k + (1 - 1 / k) * m**2, m, g / k
        return v, m, g

    def spectrum(self, q: float) -> tuple[np.ndarray, float]:
        """``(e_0..e_M, tail)`` of ``Q(q, .)``: ``Q(c) = sum e_n c^n + tail c^(M+1)``."""
        return _spectrum(self, float(q))

    def pair(self, q: float, c: np.ndarray | float) -> np.ndarray:
        """``Q(q, c) = E f(u) f(v)``, by Horner's rule on the spectrum."""
        e, tail = self.spectrum(q)
        c = np.clip(np.asarray(c, dtype=np.float64), -1.0, 1.0)
        out = np.full_like(c, tail)
        for coef in e[::-1]:
            out = out * c + coef
        return out


@functools.lru_cache(maxsize=4096)
def _spectrum(unit: Unit, q: float) -> tuple[np.ndarray, float]:
    v = float(unit.moments(q)[0])
    if unit.pool == "max":
        e = _max_spectrum(unit, q)
    else:
        coef, _ = hermite_coefficients(unit._module(), np.array([np.sqrt(q)]))
        e = coef[0] ** 2
        if unit.pool == "avg":
            e = np.concatenate([[e[0]], e[1:] / unit.size])
    return e, max(v - float(e.sum()), 0.0)


def _max_spectrum(unit: Unit, q: float) -> np.ndarray:
    """Weights of the total-degree chaos of ``phi(sqrt(q) max(z_1, z_2))``."""
    x, w = np.polynomial.legendre.leggauss(_NODES_2D)
    half = (x + 1) * 6.0
    weights = w * 6.0 * np.exp(-half * half / 2) / np.sqrt(2 * np.pi)
    nodes = np.concatenate([-half[::-1], half])
    wts = np.concatenate([weights[::-1], weights])
    s, d = (a.ravel() for a in np.meshgrid(nodes, nodes, indexing="ij"))
    w2 = np.outer(wts, wts).ravel()
    f, _ = unit._phi(np.sqrt(q) * (s + np.abs(d)) / np.sqrt(2))
    h1 = hermite((s + d) / np.sqrt(2), _MAX_ORDER_2D)
    h2 = hermite((s - d) / np.sqrt(2), _MAX_ORDER_2D)
    a = (h1 * (f * w2)) @ h2.T  # a_ij = E f He_i(z_1) He_j(z_2) / sqrt(i! j!)
    n = np.add.outer(np.arange(_MAX_ORDER_2D + 1), np.arange(_MAX_ORDER_2D + 1))
    return np.bincount(n.ravel(), weights=(a * a).ravel())[: _MAX_ORDER_2D + 1]
