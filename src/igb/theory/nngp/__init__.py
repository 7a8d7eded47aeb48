"""Infinite-width (Gaussian-process) prediction of gamma for the project's MLP, and its
leading finite-width correction.

``predict_gamma(walk, x)`` walks the N x N kernel of the evaluation inputs ``x`` through
the network of ``walk`` (a :class:`WalkSettings`, read once from the ``model`` and ``norm``
groups) exactly as :class:`igb.nn.mlp.MLP` builds it
(:mod:`igb.theory.nngp.kernel`, :mod:`igb.theory.nngp.activations`) and returns the gamma that an
infinitely wide network, measured like :mod:`igb.ensemble` measures it, would show.
Configurations the theory does not cover come back as ``gamma=None`` with the reason:
never a number that means something else. ``Prediction.gamma_finite`` adds the leading
corrections of the network's actual ``model.width`` (:mod:`igb.theory.nngp.finite`): the
fluctuations of each layer's empirical kernel and what they do to the next layer's mean.
Above ``walk.max_points`` inputs a subsample is walked and its error stated
(:mod:`igb.theory.nngp.subsample`). The derivation is in docs/theory.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from igb.nn.norm_act import ACTIVATIONS, PLACEMENTS
from igb.plain import plain
from igb.theory import gaussian as theory
from igb.theory.nngp.finite import correction, gamma_with_correction
from igb.theory.nngp.kernel import (
    INIT_SCHEMES,
    NORM_KINDS,
    UNIT_POOLS,
    Architecture,
    Design,
    InputKernel,
    gamma_from_kernel,
    gamma_kernel,
    layer_kernels,
)
from igb.theory.nngp.subsample import Subsample, choose, couples_points, jackknife

__all__ = [
    "Prediction",
    "WalkSettings",
    "architecture",
    "infinite_gamma",
    "predict_gamma",
    "predict_layers",
    "walked_points",
]

#: the only model the theory walks (its blocks are Linear + norm + activation, nothing else)
MLP_TARGET = "igb.nn.mlp.MLP"
#: norm keys the kernel walk reads or that cannot change a dense MLP's forward at init
_NORM_KEYS = {"placement", "kind", "eps", "momentum", "groups", "_target_"}
#: what the predictions take: the model and norm configs, and the evaluation inputs
Config = Mapping[str, Any]
Inputs = torch.Tensor | np.ndarray
#: defaults of igb.nn.mlp.MLP and NormConfig
_DEFAULTS = {"depth": 3, "width": 256, "activation": "relu", "init": "kaiming_normal",
             "neutralize": "none", "weight_var": None, "bias_var": 0.0, "head_weight_var": None,
             "head_bias_var": None, "unit_pool": "none", "unit_pool_size": 2}  # fmt: skip


@dataclass(frozen=True)
class Prediction:
    """Predicted gamma and regime, or ``gamma=None`` and why the theory does not apply.

    ``gamma``: infinite width; ``gamma_finite``: at the configuration's ``model.width``
    (None where the finite-width walk failed, with ``finite_reason``).
    """

    gamma: float | None
    reason: str | None = None

    seconds: float = 0.0  # what the prediction took
    gamma_finite: float | None = None
    finite_reason: str | None = None
    #: evaluation points walked (all N, or a subsample: :mod:`.subsample`) and the
    #: subsample's standard error of ``gamma`` (0 when every point was walked)
    points: int | None = None
    stderr: float | None = None

    @property
    def regime(self) -> str | None:
        return None if self.gamma is None else theory.regime(self.gamma)

    @property
    def regime_finite(self) -> str | None:
        return None if self.gamma_finite is None else theory.regime(self.gamma_finite)

    @property
    def predicted_regime(self) -> str | None:
        """The regime to put beside a measurement: at the network's width where known."""
        return self.regime_finite or self.regime

    def summary_fields(self) -> dict[str, Any]:
        """The ``gamma_theory*`` entries of an ensemble's summary.json: ``gamma_theory`` and
        ``gamma_theory_regime`` (infinite width), ``gamma_theory_finite`` and
        ``gamma_theory_finite_regime`` (at ``model.width``), or ``gamma_theory: None`` with
        ``gamma_theory_reason``."""
        fields: dict[str, Any] = {"gamma_theory": self.gamma}
        if self.gamma is None:
            fields["gamma_theory_reason"] = self.reason
        else:
            fields["gamma_theory_regime"] = self.regime
            fields["gamma_theory_stderr"] = self.stderr
            fields["gamma_theory_points"] = self.points
            fields["gamma_theory_finite"] = self.gamma_finite
            if self.gamma_finite is None:
                fields["gamma_theory_finite_reason"] = self.finite_reason
            else:
                fields["gamma_theory_finite_regime"] = self.regime_finite
        fields["gamma_theory_time_s"] = self.seconds
        return fields


def architecture(
    model_cfg: Config, norm_cfg: Config, norm_mode: str = "batch", num_classes: int = 10
) -> Architecture | str:
    """The :class:`Architecture` of a config, or the reason it is not covered
    (``num_classes``: the head's fan_out, which xavier's head gain reads)."""
    target = model_cfg.get("_target_", MLP_TARGET)
    if target != MLP_TARGET:
        return f"the theory covers model=mlp only, not {model_cfg.get('name', target)}"
    unknown = sorted(set(model_cfg) - set(_DEFAULTS) - {"_target_", "name"})
    if unknown:
        return f"model.{unknown[0]} is not covered by the theory"
    cfg = {**_DEFAULTS, **{k: v for k, v in model_cfg.items() if k in _DEFAULTS}}
    if cfg["activation"] not in ACTIVATIONS:
        return f"activation {cfg['activation']!r} is not one of {', '.join(ACTIVATIONS)}"
    if cfg["init"] not in INIT_SCHEMES:
        return f"init {cfg['init']!r} is not covered; covered: {', '.join(INIT_SCHEMES)}"
    if cfg["unit_pool"] not in UNIT_POOLS:
        return (
            f"model.unit_pool={cfg['unit_pool']} is not covered by the kernel walk (the max over "
            f"units couples 2 x unit_pool_size Gaussians per pair of points); covered: "
            f"{', '.join(UNIT_POOLS)}; the one-pair mean-field readout covers it "
            "(python -m igb.theory.meanfield)"
        )
    placement = norm_cfg.get("placement", "none")
    kind = norm_cfg.get("kind", "batch")
    extra = sorted(set(norm_cfg) - _NORM_KEYS)
    if placement not in PLACEMENTS:
        return f"norm placement {placement!r} is not one of {', '.join(PLACEMENTS)}"
    if placement != "none":
        if extra:
            return f"norm.{extra[0]} is not covered by the theory"
        if kind not in NORM_KINDS:
            return f"norm kind {kind!r} is not covered on an MLP; covered: {', '.join(NORM_KINDS)}"
        groups = int(norm_cfg.get("groups", 8))
        if kind == "group" and (groups <= 0 or cfg["width"] % groups):
            return f"norm.groups={groups} does not divide model.width={cfg['width']}"
    return Architecture(
        depth=int(cfg["depth"]),
        width=int(cfg["width"]),
        activation=str(cfg["activation"]),
        init=str(cfg["init"]),
        placement=str(placement),
        kind=str(kind),
        eps=float(norm_cfg.get("eps", 1e-5)),
        norm_mode=norm_mode,
        groups=int(norm_cfg.get("groups", 8)),
        neutralize=str(cfg["neutralize"]),
        weight_var=_float(cfg["weight_var"]),
        bias_var=float(cfg["bias_var"] or 0.0),
        head_weight_var=_float(cfg["head_weight_var"]),
        head_bias_var=_float(cfg["head_bias_var"]),
        unit_pool=str(cfg["unit_pool"]),
        unit_pool_size=int(cfg["unit_pool_size"]),
        num_classes=int(num_classes),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class Measurement(Protocol):
    """The keys of a measurement a walk predicts (:class:`igb.ensemble.spec.EnsembleSettings`)."""

    @property
    def batch_size(self) -> int: ...
    @property
    def norm_mode(self) -> str: ...
    @property
    def theory_points(self) -> int | None: ...


class Groups(Protocol):
    """A job's resolved ``model`` and ``norm`` groups and its ``ensemble`` settings
    (:class:`igb.ensemble.spec.EnsembleSpec`)."""

    @property
    def model(self) -> Config: ...
    @property
    def norm(self) -> Config: ...
    @property
    def ensemble(self) -> Measurement: ...


@dataclass(frozen=True)
class WalkSettings:
    """One kernel walk's settings, read once from a configuration: the network it follows
    (``arch``; None where the theory does not cover it, and ``reason`` says why), how the
    measurement batches the points (``batch_size``; BatchNorm centres each batch with its
    own statistics) and how many of them are walked (above ``max_points``, None: no limit,
    a subsample drawn with ``seed``, :mod:`.subsample`). Every walk of one configuration
    (the gamma, the per-layer profile, the phase diagram) takes the same value, so they
    walk the same network on the same points."""

    arch: Architecture | None
    batch_size: int
    max_points: int | None = None
    seed: int = 0
    reason: str | None = None

    @classmethod
    def from_groups(
        cls,
        model_cfg: Config,
        norm_cfg: Config,
        batch_size: int,
        *,
        norm_mode: str = "batch",
        num_classes: int = 10,
        max_points: int | None = None,
        seed: int = 0,
    ) -> WalkSettings:
        """The walk of the ``model`` and ``norm`` groups (config nodes or plain mappings)
        measured on batches of ``batch_size`` in ``norm_mode`` (``ensemble.norm_mode``);
        ``num_classes``: the head's fan_out (only xavier's head gain, beside a head bias,
        reads it)."""
        arch = architecture(plain(model_cfg), plain(norm_cfg), norm_mode, num_classes)
        if isinstance(arch, str):
            return cls(None, int(batch_size), max_points, seed, reason=arch)
        return cls(arch, int(batch_size), max_points, seed)

    @classmethod
    def from_spec(cls, spec: Groups, num_classes: int = 10) -> WalkSettings:
        """The walk an ensemble's theory takes: its groups, its batches and norm mode, and
        ``ensemble.theory_points``."""
        ens = spec.ensemble
        return cls.from_groups(spec.model, spec.norm, ens.batch_size, norm_mode=ens.norm_mode,
                               num_classes=num_classes, max_points=ens.theory_points)  # fmt: skip

    def subsample(self, n_all: int) -> Subsample | None:
        """The points every walk of these settings takes out of ``n_all`` (above
        ``max_points``: :func:`.subsample.choose`), or None: every point."""
        if self.arch is None or self.max_points is None or n_all <= self.max_points:
            return None
        return choose(n_all, self.batch_size, self.max_points, couples_points(self.arch), self.seed)


def _float64(x: Inputs) -> np.ndarray:
    """The walked inputs as float64 numpy, as the walks read them (converted after the
    subsample is taken: a copy of the points walked only)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return x


def walked_points(walk: WalkSettings, x: Inputs) -> tuple[np.ndarray, Design | None]:
    """The points a walk takes (all of ``x``, or a subsample of about ``walk.max_points``),
    as float64 numpy, and their :class:`Design` (None: all)."""
    sub = walk.subsample(x.shape[0])
    return (_float64(x[sub.index]), sub.design) if sub else (_float64(x), None)


def infinite_gamma(
    arch: Architecture, x: np.ndarray | InputKernel, batch_size: int, design: Design | None = None
) -> float:
    """The infinite-width gamma of ``arch`` on the walked points ``x`` (or their
    :class:`InputKernel`, to walk several networks on the same points; ValueError where
    every point gets the same logits)."""
    k = gamma_kernel(x, arch, batch_size, design)
    return gamma_from_kernel(k, design, arch.head_offset(arch.units_out))


def predict_gamma(walk: WalkSettings, x: Inputs) -> Prediction:
    """Infinite- and finite-width gamma of the network of ``walk`` on the evaluation inputs
    ``x``; above ``walk.max_points`` inputs a subsample is walked and ``stderr`` states its
    error (:mod:`.subsample`)."""
    t0 = time.perf_counter()
    arch, batch_size = walk.arch, walk.batch_size
    if arch is None:
        return Prediction(gamma=None, reason=walk.reason)
    if x.shape[0] < 2:
        return Prediction(gamma=None, reason="gamma needs at least 2 evaluation points")
    sub, stderr = walk.subsample(x.shape[0]), 0.0
    design = sub.design if sub else None
    offset = arch.head_offset(arch.units_out)
    inputs = InputKernel.of(_float64(x[sub.index] if sub else x))
    try:
        k = gamma_kernel(inputs, arch, batch_size, design)
        if sub is not None:
            stderr = jackknife(
                sub,
                k,
                lambda k, d: gamma_from_kernel(k, d, offset),
                lambda keep, d: gamma_kernel(inputs.take(keep), arch, batch_size, d),
            )
        gamma = gamma_from_kernel(k, design, offset)
    except ValueError as exc:
        return Prediction(gamma=None, reason=str(exc))
    finite, why = _finite_width(arch, batch_size, inputs, k, design)
    if finite is not None and not np.isfinite(finite):
        finite, why = None, "the finite-width walk left its range (depth / width too large)"
    return Prediction(gamma, None, time.perf_counter() - t0, finite, why, len(inputs), stderr)


def _finite_width(
    arch: Architecture,
    batch_size: int,
    x: InputKernel,
    kernel: np.ndarray,
    design: Design | None = None,
) -> tuple[float | None, str | None]:
    """The finite-width gamma of :mod:`.finite`, or None and why not."""
    if arch.neutralize != "none":
        return None, "the finite-width walk does not follow model.neutralize (a centred head input)"
    if arch.unit_pool != "none":
        return None, "the finite-width walk does not follow model.unit_pool"
    offset = arch.head_offset(arch.units_out)
    with np.errstate(all="ignore"):
        try:
            corr = correction(x, arch, batch_size)
            return gamma_with_correction(kernel, corr, design, offset), None
        except (ValueError, np.linalg.LinAlgError) as exc:
            return None, str(exc)


def predict_layers(walk: WalkSettings, x: Inputs) -> dict[str, float] | str:
    """Infinite-width gamma of a Gaussian head on each layer's units, by module name
    (``blocks.<i>.<part>``, as :class:`igb.nn.mlp.MLP` names them), or why not covered.

    The units' kernel after each part is that of :func:`predict_gamma`'s walk; the gamma
    of a fresh head on them is :func:`gamma_from_kernel` (an undefined one is NaN). Above
    ``walk.max_points`` inputs it walks the same subsample as :func:`predict_gamma`, so the
    profile's theory needs no more memory than the ensemble's."""
    if walk.arch is None:
        return str(walk.reason)
    x, design = walked_points(walk, x)
    out: dict[str, float] = {}
    for name, k in layer_kernels(x, walk.arch, walk.batch_size, design):
        try:
            out[name] = gamma_from_kernel(k, design)
        except ValueError:
            out[name] = float("nan")
    return out
