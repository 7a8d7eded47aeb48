"""igb's RMSNorm2d against timm's RmsNorm2d: why igb keeps its own.

timm normalises each position over the channels (like LayerNorm2d without centring);
igb's ``norm.kind=rms`` for conv maps normalises each sample over (C, H, W), the
RMS counterpart of GroupNorm(1, C), which is what ``norm.kind=layer`` is for conv maps.
They are the same operation only on 1x1 maps; on anything larger they differ, so timm's
class cannot replace igb's without changing what ``rms`` measures.
"""

from __future__ import annotations

import torch
from timm.layers import RmsNorm2d

from igb.nn.norm_act import RMSNorm2d


def test_same_operation_on_1x1_maps() -> None:
    x = torch.randn(4, 6, 1, 1, dtype=torch.float64)
    ours, timms = RMSNorm2d(6, eps=1e-6).double(), RmsNorm2d(6, eps=1e-6).double()
    torch.testing.assert_close(ours(x), timms(x))


def test_different_operation_on_larger_maps() -> None:
    x = torch.randn(4, 6, 5, 5, dtype=torch.float64)
    ours, timms = RMSNorm2d(6, eps=1e-6).double(), RmsNorm2d(6, eps=1e-6).double()
    # igb: one RMS per sample over (C, H, W)
    expected = x / x.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(1e-6).sqrt()
    torch.testing.assert_close(ours(x), expected)
    # timm: one RMS per sample and position over C
    per_position = x / x.pow(2).mean(dim=1, keepdim=True).add(1e-6).sqrt()
    torch.testing.assert_close(timms(x), per_position)
    assert not torch.allclose(ours(x), timms(x))
