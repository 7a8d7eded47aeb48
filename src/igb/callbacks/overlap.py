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


@torch.no_grad()
def overlaps(model: nn.Module, w0: torch.Tensor) -> dict[str, float]:
    """``train/weight_overlap`` and, with more than one group, ``.../<group>``. One pass
    over the parameters, each compared with its slice of ``w0`` in place: no copy of the
    whole vector, one host sync."""
    sums: dict[str, torch.Tensor] = {}  # group -> (w0 . wt, |w0|^2, |wt|^2)
    start = 0
    for name, p in _named(model):
        wt = p.detach().reshape(-1).float()
        a = w0[start : start + wt.numel()].to(wt.device)
        start += wt.numel()
        part = torch.stack([torch.dot(a, wt), torch.dot(a, a), torch.dot(wt, wt)])
        group = name.split(".")[0]
        sums[group] = sums[group] + part if group in sums else part
    names = ["train/weight_overlap"]
    parts = [torch.stack(list(sums.values())).sum(dim=0)]
    if len(sums) > 1:
        names += [f"train/weight_overlap/{group}" for group in sums]
        parts += list(sums.values())
    values = torch.stack(parts).double().tolist()
    return {name: _cosine(*v) for name, v in zip(names, values, strict=True)}


def _cosine(dot: float, norm2_a: float, norm2_b: float) -> float:
    den = (norm2_a * norm2_b) ** 0.5
    return dot / den if den > 0 else float("nan")
