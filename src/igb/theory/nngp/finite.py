"""Leading finite-width corrections to the kernel walk: the mean and the fluctuations of
each layer's empirical kernel, pair by pair (docs/theory.md, "At finite width").

At width n the units a block hands on are n iid draws given the block's input, so its
empirical kernel ``G(x, x') = mean_i h_i(x) h_i(x')`` fluctuates around its expectation
by O(1/sqrt n), and the next layer's kernel map, being nonlinear, turns that spread into
an O(1/n) shift of the mean. gamma reads only ``E[G]`` of the last layer, so the walk
tracks, for a pair of points, the mean and covariance of the pair's state
``theta = (log G(x, x), log G(x', x'), rho(x, x'))``:

- given theta, the block's pre-activations of one unit are exactly Gaussian (the Linear
  layer), so the next state is a smooth function ``R`` of the unit averages
  ``S = mean_i (phi_a^2, phi_b^2, phi_a phi_b, phi_a, phi_b)``, whose mean is the
  infinite-width map and whose covariance is ``Cov(f) / n`` (2-D Gauss-Hermite);
  ``R`` is the identity, or LayerNorm's / RMSNorm's formula, then the log / correlation
  transform. Conditional mean: ``R(E S) + tr(R'' Cov S) / 2``; conditional covariance:
  ``R' Cov S R'^T``;
- over the spread of theta the conditional mean is averaged with the unscented transform
  (2 d sigma points at ``+-sqrt(3)`` standard deviations: exact for quadratics, and for
  the log-normal spread of the point norms to fourth order), and so is the last block's
  ``E[G]``, on and off the diagonal alike, so that their errors cancel in gamma.

BatchNorm couples the points of a batch; its batch mean and variance are taken at their
expectation (large batch) from the representative pairs, while each point keeps its own
fluctuating scale. The pairs: the diagonal and :data:`PAIRS` quantiles of the input
correlations, at the mean input norm. The correction is the finite-width chain minus the
same chain at n = infinity, added to the exact infinite-width kernel of every point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from igb.nn.norm_act import ACTIVATIONS, has_norm, norm_before_act
from igb.theory.nngp.activations import pair_moments
from igb.theory.nngp.kernel import Architecture, Design, InputKernel, kernel_means

#: representative off-diagonal pairs (quantiles of the input correlations)
PAIRS = 12
#: beyond these accumulated variances (log of a point's squared norm, correlation of a pair)
#: the second-order walk is no longer an expansion: no finite-width value, with the reason
MAX_VAR_LOG = 12.0
MAX_VAR_RHO = 0.25
#: Gauss-Hermite nodes per dimension of the fourth-moment quadrature
_GH_NODES = 48
_Z, _W = np.polynomial.hermite_e.hermegauss(_GH_NODES)
_W = _W / np.sqrt(2 * np.pi)


@dataclass(frozen=True)
class Correction:
    """Shift of ``E[G]`` of the units the head reads, on the diagonal and off it."""

    diag: float
    off: float


def _theta(g11: np.ndarray, g22: np.ndarray, g12: np.ndarray) -> np.ndarray:
    return np.stack([np.log(g11), np.log(g22), g12 / np.sqrt(g11 * g22)], axis=-1)


def _kernel(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g11, g22 = np.exp(theta[..., 0]), np.exp(theta[..., 1])
    return g11, g22, np.clip(theta[..., 2], -1.0, 1.0) * np.sqrt(g11 * g22)


def sigma_points(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unscented points (P, 2d + 1, d) and weights (2d + 1,) of N(mean, cov), d + kappa = 3:
    their weighted mean and covariance are ``mean`` and ``cov`` exactly, which is what lets
    the walk average a block's nonlinear map over the spread of its input state."""
    d = mean.shape[-1]
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None) * 3.0)[:, None, :]  # columns: directions
    steps = np.concatenate([np.zeros((mean.shape[0], 1, d)), root.transpose(0, 2, 1)], axis=1)
    steps = np.concatenate([steps, -root.transpose(0, 2, 1)], axis=1)
    weights = np.full(2 * d + 1, 1.0 / 6.0)
    weights[0] = 1.0 - 2 * d / 6.0
    return mean[:, None, :] + steps, weights


def fourth_moments(act: str, k11, k22, k12) -> np.ndarray:
    """``Cov f`` (P, 5, 5) of one unit, ``f = (phi_a^2, phi_b^2, phi_a phi_b, phi_a, phi_b)``
    for pre-activations with kernel ``(k11, k22, k12)``, by 2-D Gauss-Hermite quadrature:
    divided by the width, the spread of the unit averages a block hands on."""
    s1, s2 = np.sqrt(k11), np.sqrt(k22)
    rho = np.clip(k12 / np.maximum(s1 * s2, 1e-300), -1.0, 1.0)
    z1, z2 = (z.ravel() for z in np.meshgrid(_Z, _Z, indexing="ij"))
    w = np.outer(_W, _W).ravel()
    ua = s1[:, None] * z1
    ub = (s2 * rho)[:, None] * z1 + (s2 * np.sqrt(1 - rho * rho))[:, None] * z2
    module = ACTIVATIONS[act]().double()
    with torch.no_grad():
        pa = module(torch.from_numpy(ua)).numpy()
        pb = module(torch.from_numpy(ub)).numpy()
    f = np.stack([pa * pa, pb * pb, pa * pb, pa, pb], axis=1)  # (P, 5, nodes)
    centred = f - (f @ w)[..., None]
    return np.einsum("pin,pjn,n->pij", centred, centred, w)


def _block_output(arch: Architecture, s: np.ndarray) -> np.ndarray:
    """R: unit averages S (..., 5) -> next state theta (..., 3)."""
    q11, q22, q12, m1, m2 = np.moveaxis(s, -1, 0)
    eps = arch.eps
    if not _norm_after_act(arch):
        return _theta(q11, q22, q12)
    if arch.kind in ("layer", "group"):
        v1, v2 = q11 - m1 * m1, q22 - m2 * m2
        c = (q12 - m1 * m2) / np.sqrt((v1 + eps) * (v2 + eps))
        return _theta(v1 / (v1 + eps), v2 / (v2 + eps), c)
    if arch.kind == "rms":
        return _theta(
            q11 / (q11 + eps), q22 / (q22 + eps), q12 / np.sqrt((q11 + eps) * (q22 + eps))
        )
    # batch (the walk of batch statistics after the activation has no correction: correction)
    return _theta(q11 / (1 + eps), q22 / (1 + eps), q12 / (1 + eps))  # eval mode: a constant


def _norm_after_act(arch: Architecture) -> bool:
    """Whether the block's norm reads the activations (the placement table says where)."""
    return has_norm(arch.placement) and not norm_before_act(arch.placement)


def _derivatives(arch: Architecture, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (P, 3, 5) and Hessian (P, 3, 5, 5) of R at S, by central differences."""
    h = 1e-4 * (np.abs(s) + np.sqrt(0.5 * (s[:, :1] + s[:, 1:2])))
    e = np.eye(5)
    grad = np.empty((s.shape[0], 3, 5))
    hess = np.empty((s.shape[0], 3, 5, 5))
    r0 = _block_output(arch, s)
    for j in range(5):
        dj = h[:, j : j + 1] * e[j]
        rp, rm = _block_output(arch, s + dj), _block_output(arch, s - dj)
        grad[:, :, j] = (rp - rm) / (2 * h[:, j : j + 1])
        hess[:, :, j, j] = (rp - 2 * r0 + rm) / h[:, j : j + 1] ** 2
        for k in range(j):
            dk = h[:, k : k + 1] * e[k]
            cross = (
                _block_output(arch, s + dj + dk) - _block_output(arch, s + dj - dk)
                - _block_output(arch, s - dj + dk) + _block_output(arch, s - dj - dk)
            )  # fmt: skip
            hess[:, :, j, k] = hess[:, :, k, j] = cross / (4 * h[:, j : j + 1] * h[:, k : k + 1])
    return grad, hess


@dataclass
class PairWalk:
    """The chain of the representative pairs through one architecture at one width
    (``width=np.inf``: no fluctuations, the exact kernel walk on a pair of points)."""

    arch: Architecture
    batch_size: int
    width: float  # np.inf: the infinite-width chain

    def preactivation(self, pts: np.ndarray, mean: np.ndarray, cov: np.ndarray, gain: float):
        """Kernel (k11, k22, k12) of what the activation reads, at each sigma point."""
        g11, g22, g12 = _kernel(pts)
        bias = self.arch.bias_var
        k11, k22, k12 = gain * g11 + bias, gain * g22 + bias, gain * g12 + bias
        arch = self.arch
        if not norm_before_act(arch.placement):
            return k11, k22, k12
        if arch.kind == "batch" and arch.norm_mode == "eval":
            return k11 / (1 + arch.eps), k22 / (1 + arch.eps), k12 / (1 + arch.eps)
        if arch.kind == "batch":
            return self.batch_centred(pts, mean, cov, gain)
        # layer / rms / group before the activation: each point scaled to unit variance
        inv = 1.0 / np.sqrt((k11 + arch.eps) * (k22 + arch.eps))
        return k11 / (k11 + arch.eps), k22 / (k22 + arch.eps), k12 * inv

    def batch_centred(self, pts: np.ndarray, mean: np.ndarray, cov: np.ndarray, gain: float):
        """BatchNorm before the activation, at each sigma point.

        A point's log-scale deviation splits into a part common to the whole batch (the
        mean over pairs of Cov(log G_aa, log G_bb)) and a specific part. The batch mean
        and variance remove the common part exactly; the specific factors t_a (mean 1)
        stay: ``K_c = t_a t_b K~ - b (t_a + t_b - 1)``, divided by the expected batch
        variance ``kd E[t^2] - b``, with ``K~`` the kernel at the mean state and ``b``
        its batch mean.
        """
        dev = pts - mean[:, None, :]
        var_pair = 0.5 * (cov[:, 0, 0] + cov[:, 1, 1])
        common = float(np.clip(cov[1:, 0, 1].mean(), 0.0, None)) if len(mean) > 1 else 0.0
        share = np.where(var_pair > 0, common / np.maximum(var_pair + common, 1e-300), 0.0)
        shared = share[:, None] * (dev[..., 0] + dev[..., 1])
        spec_var = max(float(cov[0, 0, 0]) - common, 0.0)  # pair 0: the diagonal
        ta = np.exp((dev[..., 0] - shared) / 2 - spec_var / 8)
        tb = np.exp((dev[..., 1] - shared) / 2 - spec_var / 8)
        # every point at the typical scale of the diagonal pair: BatchNorm does not pull a
        # point's own scale back, so the pairs must not drift apart in it
        kd = gain * float(np.exp(mean[0, 0]))
        k12 = kd * np.clip(mean[:, 2], -1.0, 1.0)[:, None]
        batch = min(self.batch_size, 10**9)
        b = (1 - 1 / batch) * float(np.mean(k12[1:])) + kd / batch
        var = kd * np.exp(spec_var / 4) - b + self.arch.eps
        return ((ta * ta * kd - b * (2 * ta - 1)) / var, (tb * tb * kd - b * (2 * tb - 1)) / var,
                (ta * tb * k12 - b * (ta + tb - 1)) / var)  # fmt: skip

    def step(self, mean: np.ndarray, cov: np.ndarray, gain: float):
        """One block: (mean, cov) of theta at its input -> at its output."""
        pts, w = sigma_points(mean, cov)
        k = self.preactivation(pts, mean, cov, gain)
        s = pair_moments(self.arch.activation, *k)
        out = _block_output(self.arch, s)  # (P, 2d + 1, 3)
        new_mean = np.einsum("k,pkd->pd", w, out)
        dev = out - new_mean[:, None, :]
        new_cov = np.einsum("k,pki,pkj->pij", w, dev, dev)
        if np.isfinite(self.width):
            k0 = tuple(a[:, 0] for a in k)
            cov_f = fourth_moments(self.arch.activation, *k0)
            grad, hess = _derivatives(self.arch, s[:, 0])
            n_bias = self.width / (self.arch.groups if self.arch.kind == "group" else 1)
            new_mean += 0.5 * np.einsum("pdjk,pjk->pd", hess, cov_f) / n_bias
            new_cov += np.einsum("pdj,pjk,pek->pde", grad, cov_f, grad) / self.width
        return new_mean, new_cov

    def run(self, q0: float, rhos: np.ndarray, fan_in: int) -> tuple[float, np.ndarray]:
        """E[G(x, x)] and E[G(x, x')] (per representative pair) of the last block."""
        arch = self.arch
        rho = np.concatenate([[1.0], rhos])
        mean = _theta(np.full(rho.size, q0), np.full(rho.size, q0), rho * q0)
        cov = np.zeros((rho.size, 3, 3))
        for layer in range(arch.depth):
            mean, cov = self.step(mean, cov, arch.gain(fan_in))
            fan_in = arch.width
            spread = (float(cov[:, :2, :2].max()), float(cov[:, 2, 2].max()))
            if not (spread[0] <= MAX_VAR_LOG and spread[1] <= MAX_VAR_RHO):
                raise ValueError(
                    f"beyond the leading order in depth / width at block {layer + 1}: "
                    f"variance of a point's log-norm {spread[0]:.2g} (at most {MAX_VAR_LOG:g}), "
                    f"of a correlation {spread[1]:.2g} (at most {MAX_VAR_RHO:g})"
                )
        pts, w = sigma_points(mean, cov)
        g11, _, g12 = _kernel(pts)
        return float(g11[0] @ w), g12[1:] @ w


def correction(x: np.ndarray | InputKernel, arch: Architecture, batch_size: int) -> Correction:
    """Finite-width shift of ``E[G]`` of the last block, from the input kernel of ``x``
    (the inputs, or their :class:`~igb.theory.nngp.kernel.InputKernel` that the
    infinite-width walk computed)."""
    if _norm_after_act(arch) and arch.kind == "batch" and arch.norm_mode == "batch":
        return Correction(0.0, 0.0)  # every unit's batch means are removed at any width
    inputs = InputKernel.of(x)
    q0, rhos = float(np.diag(inputs.k).mean()), pair_quantiles(inputs.k)
    finite = PairWalk(arch, batch_size, float(arch.width)).run(q0, rhos, inputs.fan_in)
    infinite = PairWalk(arch, batch_size, np.inf).run(q0, rhos, inputs.fan_in)
    return Correction(finite[0] - infinite[0], float(np.mean(finite[1] - infinite[1])))


def pair_quantiles(k0: np.ndarray) -> np.ndarray:
    """The :data:`PAIRS` quantiles of the input correlations over the pairs of distinct
    points, each pair once: one N x N array, worked in place, whose upper triangle is read
    through a mask (an index array of the pairs would be eight times its memory)."""
    n, diag = k0.shape[0], np.diag(k0)
    rho = diag[:, None] * diag
    np.sqrt(rho, out=rho)
    np.divide(k0, rho, out=rho)
    upper = rho[np.triu(np.ones((n, n), dtype=bool), 1)]
    return np.quantile(upper, (np.arange(PAIRS) + 0.5) / PAIRS)


def gamma_with_correction(
    k: np.ndarray, corr: Correction, design: Design | None = None, offset: float = 0.0
) -> float:
    """gamma (:func:`igb.theory.nngp.kernel.gamma_from_kernel`) of ``k`` shifted by ``corr``:
    every diagonal entry by ``corr.diag``, every other entry by ``corr.off`` (``design``:
    ``k`` is the kernel of some of the N points, :func:`~igb.theory.nngp.kernel.kernel_means`;
    ``offset``: the head bias's, :meth:`~igb.theory.nngp.kernel.Architecture.head_offset`)."""
    n = design.n_points if design else k.shape[0]
    diag, mean_k = kernel_means(k, design)
    mean_all = mean_k + (1 - 1 / n) * corr.off + corr.diag / n
    spread = diag + corr.diag - mean_all
    if not spread > 0:
        raise ValueError("the finite-width kernel gives every point the same logits")
    return max(mean_all + offset, 0.0) / spread
