"""Measuring a network's predictions without training it: one code path for the step-0
callback, the per-epoch statistics and the initialization ensembles.

At initialization BatchNorm's running statistics are 0/1, so in eval mode it is the
identity; the initial bias must be measured with batch statistics (training-mode
normalisation) on batches of a stated size, without updating the running statistics
and without gradients. :func:`batch_stat_mode` does exactly that and restores the
model afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from igb.nn.norm_act import BATCH_STAT_NORMS

NORM_MODES = ("batch", "eval")


def _keeps_running_stats(module: nn.Module) -> bool:
    """BatchNorm and its relatives: every ``_BatchNorm`` (torch's, timm's BatchNormAct2d,
    SyncBatchNorm) and any other norm that normalises with batch statistics in training
    mode while keeping running ones (timm's EvoNorm-B, for instance)."""
    if isinstance(module, BATCH_STAT_NORMS):  # BatchNorm and the centring norms
        return True
    names = {name for name, _ in module.named_buffers(recurse=False)}
    return bool(names & {"running_mean", "running_var"})


def batch_norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if _keeps_running_stats(m)]


def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` normalises with batch statistics anywhere (batches of one fail)."""
    return any(_keeps_running_stats(m) for m in model.modules())


@contextmanager
def batch_stat_mode(model: nn.Module, norm_mode: str = "batch") -> Iterator[nn.Module]:
    """Eval mode everywhere, except BatchNorm layers (and the centring norms,
    ``norm.kind=center|center_init``) normalise with batch statistics.

    Running statistics and ``num_batches_tracked`` are saved and restored, so the
    measurement leaves no trace in the model. ``norm_mode="eval"`` measures the model
    in plain eval mode (running statistics) instead.
    """
    if norm_mode not in NORM_MODES:
        raise ValueError(f"norm_mode={norm_mode!r}; allowed: {', '.join(NORM_MODES)}")
    modules = list(model.modules())
    was_training = [m.training for m in modules]
    bns = batch_norms(model) if norm_mode == "batch" else []
    saved = [
        {k: v.clone() for k, v in bn.named_buffers(recurse=False) if v is not None} for bn in bns
    ]
    # the flags are set module by module: restoring with m.train(flag) would recurse
    # into every submodule of every module (quadratic in depth), once per measurement
    for m in modules:
        m.training = False
    for bn in bns:
        bn.training = True
    try:
        with torch.no_grad():
            yield model
    finally:
        for bn, buffers in zip(bns, saved, strict=True):
            for k, v in buffers.items():
                getattr(bn, k).copy_(v)
        for m, flag in zip(modules, was_training, strict=True):
            m.training = flag


def batches(n: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[slice]:
    """Consecutive batches of an evaluation set; rank r takes batches r, r+W, r+2W, ...

    Sharding by whole batches keeps every batch identical to the single-process run, so
    batch-statistics measurements reduced across ranks equal the single-process values.
    A trailing batch of one sample is merged into the one before (BatchNorm cannot
    normalise a single sample).
    """
    slices = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if len(slices) > 1 and slices[-1].stop - slices[-1].start == 1:
        slices[-2:] = [slice(slices[-2].start, n)]
    return slices[rank::world_size]


def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int,
    norm_mode: str = "batch",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in batches of ``batch_size`` (see batch_stat_mode)."""
    device = device or next(model.parameters()).device
    outs = []
    with batch_stat_mode(model, norm_mode):
        for s in batches(x.shape[0], batch_size):
            outs.append(model(x[s].to(device, non_blocking=True)))
    return torch.cat(outs)
