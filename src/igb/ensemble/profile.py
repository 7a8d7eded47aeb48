"""Where the bias is born: gamma of a fresh Gaussian head on every layer's output.

``ensemble.profile=true`` adds forward hooks to the ensemble's own models: every module
(``named_modules()`` names, the root left out) reports its output, and the head's input
is read by a pre-hook on the head. For each initialization the hooks keep per-feature
sums over the evaluation points, so the profile costs the ensemble's one forward pass per
initialization and a few reductions, never a pass per layer. For each entry ``l``:

    gamma_l = E[mean G_l] / E[mean diag G_l - mean G_l]

over initializations (:mod:`igb.metrics.head_gamma`), with its bootstrap interval.
Feature maps: ``(N, C, H, W)`` channel means over positions (what a global-average-pool
head reads), ``(N, T, D)`` the token mean, or every position with
``ensemble.profile_features=flatten``. The head-input entry is exactly what the head
reads. Entries after the head (the head itself and the containers that end with it)
are left out; the last entry is the model's output, the logits (a head's bias shows
there, not at the head's input).

A module called several times in one forward (torchvision's ResNet reuses one ReLU)
gives one entry per call, ``name#2``, ``name#3``. Modules whose output is not one
tensor with the batch as first axis (attention's tuple) give none.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from igb.metrics import head_gamma
from igb.metrics.head_gamma import reduce_features, sums_moments
from igb.nn.external import owner_modules

HEAD_INPUT = "head input"
#: the kind (and name) of the profile's last entry: the model's output
LOGITS = "logits"


@dataclass
class _Entry:
    name: str
    kind: str
    shape: str


@dataclass
class Tap:
    """The hooks on one model replica and the sums of the current initialization."""

    reduction: str
    entries: list[_Entry] = field(default_factory=list)
    sums: list[list[Any]] = field(default_factory=list)
    calls: int = 0
    past_head: bool = False
    named: bool = False
    seen: dict[str, int] = field(default_factory=dict)
    handles: list[Any] = field(default_factory=list)
    prev: Any = None  # the tensor the previous entry recorded (this forward)

    def reset_forward(self, *_: Any) -> None:
        self.calls, self.past_head, self.prev = 0, False, None

    def start(self) -> None:
        self.sums = []

    def record(self, name: str, kind: str, out: Any, chain: bool = False) -> None:
        """``chain``: the module is an ``nn.Sequential``, whose output is its last child's
        output tensor untouched: the same tensor as the previous entry is not reduced again."""
        if (self.past_head and kind != LOGITS) or not isinstance(out, Tensor) or out.dim() < 2:
            return
        idx = self.calls
        self.calls += 1
        if chain and out is self.prev and idx > 0:
            self._name(idx, name, kind, out)
            if idx == len(self.sums):
                self.sums.append(self.sums[idx - 1])  # the same sums, counted once
            return
        self.prev = out
        h = reduce_features(out.detach(), self.reduction).double()
        self._name(idx, name, kind, out)
        if idx == len(self.sums):
            self.sums.append([torch.zeros(h.shape[1], dtype=torch.float64, device=h.device)] * 2
                             + [0])  # fmt: skip
        s = self.sums[idx]
        s[0] = s[0] + h.sum(dim=0)
        s[1] = s[1] + (h * h).sum(dim=0)
        s[2] += h.shape[0]

    def _name(self, idx: int, name: str, kind: str, out: Tensor) -> None:
        if not self.named and idx == len(self.entries):
            count = self.seen.get(name, 0) + 1
            self.seen[name] = count
            label = name if count == 1 else f"{name}#{count}"
            self.entries.append(_Entry(label, kind, "x".join(map(str, out.shape[1:]))))

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        self.named = True
        pairs = [sums_moments(s1, s2, n) for s1, s2, n in self.sums]
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class Profiler:
    """Hooks for every replica of an ensemble and the per-initialization moments."""

    def __init__(self, head: str, reduction: str = "pool") -> None:
        self.head = head
        self.reduction = reduction
        self.rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.entries: list[_Entry] | None = None
        self._lock = threading.Lock()

    def attach(self, model: nn.Module) -> Tap:
        tap = Tap(self.reduction)
        tap.handles.append(model.register_forward_pre_hook(tap.reset_forward))
        for name, module in model.named_modules():
            if not name:
                continue
            kind = type(module).__name__
            if name == self.head:
                tap.handles.append(module.register_forward_pre_hook(
                    functools.partial(self._head_input, tap, name)))  # fmt: skip
            chain = type(module) is nn.Sequential
            tap.handles.append(module.register_forward_hook(
                lambda m, a, out, name=name, kind=kind, chain=chain: tap.record(
                    name, kind, out, chain)))  # fmt: skip
        # last: the model's output, the logits the ensemble's gamma is measured on
        tap.handles.append(model.register_forward_hook(
            lambda m, a, out: tap.record(LOGITS, LOGITS, out)))  # fmt: skip
        return tap

    @staticmethod
    def _head_input(tap: Tap, name: str, module: nn.Module, args: tuple[Any, ...]) -> None:
        tap.record(f"{name}:input", HEAD_INPUT, args[0])
        tap.past_head = True

    def finish(self, seed: int, tap: Tap) -> None:
        """The moments of initialization ``seed`` (its batches all went through ``tap``)."""
        a, b = tap.moments()
        with self._lock:
            if self.entries is None:
                self.entries = list(tap.entries)
            self.rows[seed] = (a, b)

    def table(self, n_boot: int = 1000, level: float = 0.95) -> list[dict[str, Any]]:
        """One row per entry: index, module, kind, shape, gamma_l and its interval."""
        if not self.rows or self.entries is None:
            return []
        seeds = sorted(self.rows)
        a = np.stack([self.rows[s][0] for s in seeds])
        b = np.stack([self.rows[s][1] for s in seeds])
        rows = []
        for j, entry in enumerate(self.entries):
            gamma, lo, hi = head_gamma(a[:, j], b[:, j], n_boot=n_boot, level=level)
            rows.append({
                "index": j, "module": entry.name, "kind": entry.kind, "shape": entry.shape,
                "gamma": gamma, "gamma_lo": lo, "gamma_hi": hi, "n_inits": len(seeds),
            })  # fmt: skip
        return rows


def head_module(head_params: frozenset[str]) -> str:
    """The name of the module that owns the head's parameters (the one nearest the root)."""
    owners = owner_modules(head_params)
    if not owners:
        raise ValueError("the model has no head parameters")
    return min(owners, key=len)


def nonzero_biases(model: nn.Module) -> list[str]:
    """Names of the bias parameters that are not zero (igb's own init zeroes them all)."""
    return [n for n, p in model.named_parameters() if n.endswith("bias") and bool(p.any())]


@torch.no_grad()
def zero_biases(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.zero_()
