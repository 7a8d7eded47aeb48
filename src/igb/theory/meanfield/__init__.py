"""Mean-field signal propagation of a deep MLP: fixed points, phase and the deep-network gamma.

For a fully connected net with weights ``N(0, sigma_w^2 / fan_in)`` and biases
``N(0, sigma_b^2)`` (``model.init=normal``, ``model.weight_var``, ``model.bias_var``), at
infinite width the pre-activations of one input have variance ``q`` and those of two
inputs correlation ``c``, mapped layer to layer by

    q' = sigma_w^2 V(q) + sigma_b^2,       c' q' = sigma_w^2 Q(q, c) + sigma_b^2

(:mod:`.units`: ``V = E f^2``, ``Q = E f(u) f(v)`` of the unit ``f``, an activation or a
pool over a group of them). The readout (:func:`fixed_point`):

- ``q_star``, the stable fixed point of the length map reached from ``q = 1`` (``inf``
  where the length grows without bound; ``0`` where it dies out with zero biases);
- ``c_star``, the stable fixed point of the correlation map at ``q_star`` (1 wherever
  ``c = 1`` is stable or marginal). Where the length dies out (``q_star = 0``) for a
  smooth activation (tanh without bias, ``sigma_w^2 <= 1``) the network becomes linear,
  ``c' = c``: every correlation is kept, there is no ``c*`` (NaN) and depth keeps the
  inputs' gamma;
- ``chi1 = sigma_w^2 G(q_star)`` with ``G = E |grad f|^2``: the slope of the correlation
  map at ``c = 1``. ``chi1 < 1``: ``ordered`` (nearby inputs merge, ``c* = 1``);
  ``chi1 > 1``: ``chaotic`` (a second, stable ``c* < 1``); ``chi1 = 1``: the ``edge``
  of chaos. For a homogeneous activation (ReLU, leaky ReLU, identity and their pools)
  the length map is linear, ``q' = s q + sigma_b^2`` with ``s = sigma_w^2 V(1)``, and the
  ordered phase ends where ``q_star`` stops existing, at ``s = 1`` (the ReLU edge
  ``sigma_w^2 = 2``; ``4 pi / (3 pi + 2)`` for the max and ``4 pi / (pi + 1)`` for the
  mean over 2 ReLU units); beyond it the length diverges (``chaotic``, the paper's
  "chaotic, deep prejudice");
- the depth scales ``xi_q = -1 / log(dq'/dq)`` and ``xi_c = -1 / log(dc'/dc)`` at the
  fixed points (``inf`` where the slope is 1 or more);
- ``gamma_deep = c* / (1 - c*)``: the gamma of a deep network whose head is drawn like
  its hidden layers (the logits are the next layer's pre-activations, with correlation
  ``c*``; :func:`igb.theory.nngp.kernel.gamma_from_kernel` of a kernel ``q*`` on the
  diagonal and ``c* q*`` elsewhere, for many points). Infinite wherever ``c* = 1``
  (the ordered phase and the edge, with a bias or a ReLU-like unit), NaN without ``c*``.

A norm in the block (``norm``, ``<kind>-<placement>``) changes the maps:

- LayerNorm, RMSNorm or GroupNorm before the activation (``layer-pre``, ``rms-pre``,
  ``group-pre``) sets every point's pre-activations to unit variance over the units (their
  mean over the units is zero at infinite width): ``q_star = 1`` whatever the variances,
  and ``c' = (sigma_w^2 Q(1, c) + sigma_b^2) / (sigma_w^2 V(1) + sigma_b^2)``;
- LayerNorm or GroupNorm after it (``layer-post``, ``group-post``) removes each point's
  mean over the units and its scale, ``h = (f - M) / sqrt(V - M^2)``: the offset ``M^2``
  leaves the correlation map, ``q' = sigma_w^2 + sigma_b^2``; RMSNorm after it
  (``rms-post``) only rescales, ``h = f / sqrt(V)``;
- BatchNorm (either placement) is declined: it centres each unit over the points of a
  batch, so the map of one pair depends on every other point of the batch. The kernel walk
  (:func:`igb.theory.nngp.predict_gamma`) follows it; so does the phase diagram's gamma.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from igb.jobs.identity import norm_label
from igb.theory.meanfield.units import Unit, unit_reason
from igb.theory.nngp.kernel import INIT_SCHEMES, weight_gain

__all__ = [
    "NORMS",
    "Declined",
    "Readout",
    "config_readout",
    "edge_of_chaos",
    "fixed_point",
    "unit_of",
]

#: the norms the readout covers (kind-placement), and those it declines, with the reason
NORMS = ("none", "layer-pre", "rms-pre", "group-pre", "layer-post", "group-post", "rms-post")
_DECLINED = {
    "batch": "BatchNorm centres each unit over a batch: the map of one pair of inputs depends "
    "on every other input of the batch (the kernel walk, python -m igb.theory.nngp, follows it)",
}
#: |chi1 - 1| (or |s - 1|) below this reads as the edge
EDGE_TOL = 1e-9
_HUGE = 1e12


class Declined(ValueError):
    """The readout does not apply to this configuration; the message says why."""


@dataclass(frozen=True)
class Readout:
    """The mean-field fixed points and phase of one (activation, variances, pool, norm)."""

    activation: str
    weight_var: float
    bias_var: float
    pool: str
    pool_size: int
    norm: str
    q_star: float
    c_star: float
    chi1: float
    xi_q: float
    xi_c: float
    phase: str
    gamma_deep: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: infinities as the string ``inf``, NaN (no c*) as None."""
        return {k: (None if isinstance(v, float) and math.isnan(v)
                    else str(v) if isinstance(v, float) and math.isinf(v) else v)
                for k, v in asdict(self).items()}  # fmt: skip


def unit_of(activation: str, pool: str | tuple[str, int] | None) -> Unit:
    """The :class:`Unit` of ``activation`` and ``pool`` (None, ``"max"`` (2 units),
    ``("avg", 4)``), or :class:`Declined`."""
    kind, size = (pool, 2) if isinstance(pool, str) or pool is None else pool
    kind = kind or "none"
    reason = unit_reason(activation, kind, int(size))
    if reason:
        raise Declined(reason)
    return Unit(activation, kind, int(size) if kind != "none" else 1)


def _norm_kind(norm: str) -> tuple[str, str]:
    kind, _, placement = norm.partition("-")
    if norm == "none":
        return "none", "none"
    if kind in _DECLINED:
        raise Declined(_DECLINED[kind])
    if norm not in NORMS:
        raise Declined(f"norm {norm!r} is not covered; covered: {', '.join(NORMS)}")
    return kind, placement


@dataclass(frozen=True)
class _Maps:
    """The length and correlation maps of one block (see the module doc)."""

    unit: Unit
    w: float
    b: float
    kind: str
    placement: str

    def length(self, q: float) -> float:
        if self.placement == "pre":
            return 1.0
        if self.placement == "post":
            return self.w + self.b
        return self.w * float(self.unit.moments(q)[0]) + self.b

    def corr(self, q: float, c: np.ndarray | float) -> np.ndarray:
        """c' given the unit's input variance ``q`` and correlation ``c``."""
        u, w, b = self.unit, self.w, self.b
        v, m, _ = (float(a) for a in u.moments(q))
        pair = u.pair(q, c)
        if self.placement == "pre":
            return (w * pair + b) / (w * v + b)
        if self.placement == "post":
            scale, offset = (v - m * m, m * m) if self.kind in ("layer", "group") else (v, 0.0)
            return (w * (pair - offset) / scale + b) / (w + b)
        return (w * pair + b) / (w * v + b)

    def chi1(self, q: float) -> float:
        """Slope of the correlation map at c = 1."""
        u, w, b = self.unit, self.w, self.b
        v, m, g = (float(a) for a in u.moments(q))
        if self.placement == "post":
            scale = v - m * m if self.kind in ("layer", "group") else v
            return w * q * g / scale / (w + b)
        return w * q * g / (w * v + b)


def _maps(activation: str, weight_var: float, bias_var: float, pool: Any, norm: str) -> _Maps:
    if not (weight_var > 0 and math.isfinite(weight_var)):
        raise Declined(f"weight_var={weight_var} must be a positive number")
    if not (bias_var >= 0 and math.isfinite(bias_var)):
        raise Declined(f"bias_var={bias_var} must be a number >= 0")
    kind, placement = _norm_kind(norm)
    return _Maps(unit_of(activation, pool), float(weight_var), float(bias_var), kind, placement)


def _q_star(maps: _Maps) -> float:
    """The stable fixed point of the length map reached from q = 1."""
    if maps.placement == "pre":
        return 1.0
    if maps.placement == "post":
        return maps.w + maps.b
    unit, w, b = maps.unit, maps.w, maps.b
    if unit.homogeneous:
        s = w * float(unit.moments(1.0)[0])
        if abs(s - 1) <= EDGE_TOL:
            return 1.0 if b == 0 else math.inf  # zero bias: every q is kept
        if s > 1:
            return math.inf
        return b / (1 - s)
    if b == 0 and float(unit.moments(0.0)[1]) == 0 and float(unit.moments(0.0)[0]) == 0:
        if w * float(unit.moments(0.0)[2]) <= 1 + EDGE_TOL:
            return 0.0  # f(0) = 0 and a slope at most 1: the length dies out
    # the stable fixed point: where L(q) - q turns from positive to negative
    lo = 1e-300 if b == 0 else 0.0
    hi = 1.0
    while maps.length(hi) > hi:
        hi *= 2
        if hi > _HUGE:
            return math.inf
    from scipy.optimize import brentq  # scipy.optimize: only where a root is searched

    return brentq(lambda q: maps.length(q) - q, lo, hi, xtol=1e-15, rtol=1e-13)


def _c_star(maps: _Maps, q: float, chi1: float) -> float:
    """The stable fixed point of the correlation map at ``q`` (1 where c = 1 is stable).

    Beyond the edge c = 1 repels, ``F(c) = c' - c`` is negative just below 1 and
    ``F(0) >= 0`` (the maps only add non-negative terms at c = 0): c* is F's root between."""
    if chi1 <= 1 + EDGE_TOL:
        return 1.0

    def gap(c: float) -> float:
        return float(maps.corr(q, c)) - c

    if gap(0.0) <= 0:
        return 0.0
    from scipy.optimize import brentq  # scipy.optimize: only where a root is searched

    for delta in (1e-3, 1e-5, 1e-7, 1e-9):
        if gap(1 - delta) < 0:
            return brentq(gap, 0.0, 1 - delta, xtol=1e-14, rtol=1e-13, maxiter=300)
    return 1.0 - 1e-9


def _depth_scale(slope: float) -> float:
    """``-1 / log(slope)``: the layers over which a deviation from the fixed point shrinks
    by e (infinite at a slope of 1 or more, 0 at a slope of 0)."""
    if slope >= 1 - 1e-9:
        return math.inf
    return -1.0 / math.log(slope) if slope > 0 else 0.0


def _slopes(maps: _Maps) -> tuple[float, float, _Maps, float]:
    """``(q*, chi1, the maps the correlation is read from, their slope at c = 1)``.

    Where q* is 0 or infinite (homogeneous units; or q dying out with zero biases) the
    correlation map is read at q = 1 without the bias, which no longer counts there; where
    q dies out for a smooth unit the network is linear in the limit (c' = c, marginal)."""
    unit = maps.unit
    q = _q_star(maps)
    finite = 0 < q < math.inf
    read = maps if finite or maps.placement != "none" else _Maps(unit, maps.w, 0.0, "none", "none")
    q_read = q if finite else 1.0
    dying = q == 0 and not unit.homogeneous
    if maps.placement == "none":  # sigma_w^2 E|grad f|^2 (scale-free for a homogeneous unit)
        chi1 = maps.w * float(unit.moments(0.0 if dying else q_read)[2])
    else:
        chi1 = maps.chi1(q)
    slope_one = chi1 if finite or dying or maps.placement != "none" else read.chi1(q_read)
    return q, chi1, read, slope_one


def fixed_point(
    activation: str,
    weight_var: float,
    bias_var: float,
    pool: str | tuple[str, int] | None = None,
    norm: str = "none",
) -> Readout:
    """The mean-field readout of a deep MLP (see the module doc), or :class:`Declined`."""
    maps = _maps(activation, weight_var, bias_var, pool, norm)
    unit = maps.unit
    q, chi1, read, slope_one = _slopes(maps)
    finite = 0 < q < math.inf
    q_read = q if finite else 1.0
    dying = q == 0 and not unit.homogeneous
    # a smooth unit whose signal dies out: linear in the limit, c' = c, every c is kept
    c = math.nan if dying else _c_star(read, q_read, slope_one)
    s_len = maps.w * float(unit.moments(1.0)[0])
    homogeneous = unit.homogeneous and maps.placement == "none"
    edge_gap = s_len - 1 if homogeneous else chi1 - 1
    phase = "edge" if abs(edge_gap) <= EDGE_TOL else ("ordered" if edge_gap < 0 else "chaotic")
    if maps.placement != "none":
        slope_q = 0.0  # the norm sets q in one block
    elif finite:
        h = 1e-5 * q
        slope_q = (maps.length(q + h) - maps.length(q - h)) / (2 * h)
    else:
        slope_q = chi1 if dying else s_len
    if c >= 1 or dying:
        slope_c = slope_one if c >= 1 else 1.0
    else:
        slope_c = float(read.corr(q_read, c + 1e-6) - read.corr(q_read, c - 1e-6)) / 2e-6
    return Readout(
        activation=activation,
        weight_var=maps.w,
        bias_var=maps.b,
        pool=unit.pool,
        pool_size=unit.group,
        norm=norm,
        q_star=q,
        c_star=c,
        chi1=chi1,
        xi_q=_depth_scale(slope_q),
        xi_c=_depth_scale(slope_c),
        phase=phase,
        gamma_deep=c if dying else (math.inf if c >= 1 else max(c, 0.0) / (1 - c)),
    )


def edge_of_chaos(
    activation: str,
    bias_var: float,
    pool: str | tuple[str, int] | None = None,
    norm: str = "none",
    bounds: tuple[float, float] = (1e-3, 1e3),
) -> float | None:
    """The weight variance where the ordered phase ends (``chi1 = 1``; for a homogeneous
    unit without norm, where the length map's slope is 1), or None where no weight variance
    in ``bounds`` reaches it."""
    maps = _maps(activation, 1.0, bias_var, pool, norm)
    unit = maps.unit
    if unit.homogeneous and maps.placement == "none":
        return 1.0 / float(unit.moments(1.0)[0])

    def gap(log_w: float) -> float:
        return _slopes(_Maps(unit, math.exp(log_w), maps.b, maps.kind, maps.placement))[1] - 1

    lo, hi = (math.log(b) for b in bounds)
    if gap(lo) * gap(hi) > 0:
        return None
    from scipy.optimize import brentq  # scipy.optimize: only where a root is searched

    return math.exp(brentq(gap, lo, hi, xtol=1e-12, rtol=1e-10, maxiter=300))


def config_readout(model_cfg: Any, norm_cfg: Any) -> dict[str, Any]:
    """The ``meanfield`` block of an ensemble's summary.json: :func:`fixed_point` of the
    MLP's hidden layers (their weight gain under ``model.init``: 2 for kaiming_normal) with
    ``edge_weight_var`` (:func:`edge_of_chaos` at its bias variance), or ``{"reason": ...}``
    where the readout does not apply."""
    if model_cfg.get("_target_") != "igb.nn.mlp.MLP":
        return {"reason": f"the readout covers model=mlp only, not {model_cfg.get('name')}"}
    init = model_cfg.get("init", "kaiming_normal")
    if init not in INIT_SCHEMES:
        return {"reason": f"init {init!r} is not covered; covered: {', '.join(INIT_SCHEMES)}"}
    width = int(model_cfg.get("width", 256))
    w = weight_gain(init, width, width, model_cfg.get("weight_var"))
    b = float(model_cfg.get("bias_var") or 0.0)
    pool = (model_cfg.get("unit_pool", "none"), int(model_cfg.get("unit_pool_size", 2)))
    norm = norm_label(norm_cfg.get("placement", "none"), norm_cfg.get("kind", "batch"))
    try:
        block = fixed_point(str(model_cfg.get("activation", "relu")), w, b, pool, norm).as_dict()
        block["edge_weight_var"] = edge_of_chaos(block["activation"], b, pool, norm)
    except Declined as exc:
        return {"reason": str(exc)}
    return block
