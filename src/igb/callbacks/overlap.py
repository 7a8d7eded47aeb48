"""The overlap of the parameters with their initial values (the authors' ``w0 . wt``).

All trainable parameters, flattened and concatenated, are compared with their step-0
values as unit vectors: ``overlap = w0 . wt / (|w0| |wt|)``, 1 at step 0 and falling as
training moves the weights. The same is done per group of parameters, a group being the
model's top-level submodule (``stem``, ``blocks``, ``head``, ...), which shows e.g. a
head that moves while the body stays near its initialization.
"""

from __future__ import annotations

import torch
from torch import nn


def _named(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(n.removeprefix("model."), p) for n, p in model.named_parameters() if p.requires_grad]


@torch.no_grad()
def parameter_vector(model: nn.Module) -> torch.Tensor:
    """All trainable parameters, flattened and concatenated (float32)."""
    return torch.cat([p.detach().reshape(-1).float() for _, p in _named(model)])


def parameter_groups(model: nn.Module) -> dict[str, list[tuple[int, int]]]:
    """Group name (the first name component) -> ``(start, stop)`` slices of the vector."""
    groups: dict[str, list[tuple[int, int]]] = {}
    start = 0
    for name, p in _named(model):
        groups.setdefault(name.split(".")[0], []).append((start, start + p.numel()))
        start += p.numel()
    return groups


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    den = a.norm() * b.norm()
    return float(torch.dot(a, b) / den) if den > 0 else float("nan")


@torch.no_grad()
def overlaps(model: nn.Module, w0: torch.Tensor) -> dict[str, float]:
    """``train/weight_overlap`` and, with more than one group, ``.../<group>``."""
    wt = parameter_vector(model)
    w0 = w0.to(wt.device, wt.dtype)
    row = {"train/weight_overlap": _cosine(w0, wt)}
    groups = parameter_groups(model)
    if len(groups) > 1:
        for name, slices in groups.items():
            idx = torch.cat([torch.arange(a, b, device=wt.device) for a, b in slices])
            row[f"train/weight_overlap/{name}"] = _cosine(w0[idx], wt[idx])
    return row
