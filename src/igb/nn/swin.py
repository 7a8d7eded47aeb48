"""Swin Transformer (timm's) with the residual placement switch of the authors' Swin runs.

timm's blocks are Pre-LN, ``x + F(LN(x))``; with ``norm=post`` every block becomes
Post-LN, ``LN(x + F(x))`` for the window attention and the MLP alike (the authors'
``ln_after`` Swin; timm's Swin V2 "res-post-norm" is ``x + LN(F(x))``, a different
network). Both keep timm's final LayerNorm and mean-pool head, as the authors' Swin does.
Only ``norm.kind=layer`` applies. The stages have ``width * 2**i`` channels and heads of
``head_dim`` channels (the authors': 32); ``stage_depths`` ``[2, 2, 6, 2]`` with width 96
is Swin-T, ``[2, 2, 18, 2]`` with 96 / 128 / 192 Swin-S / B / L.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from timm.models.swin_transformer import SwinTransformer, SwinTransformerBlock
from torch import nn

from igb.errors import ConfigError
from igb.nn.cnn import require_image
from igb.nn.norm_act import RESIDUAL_SUM
from igb.nn.tokens import TokenClassifier, patch_grid


class PlacedSwinBlock(SwinTransformerBlock):
    """timm's block whose two residuals (window attention, MLP) are joined as
    :data:`igb.nn.norm_act.RESIDUAL_SUM` says for ``placement``: ``pre`` is timm's own
    forward, ``post`` is ``LN(x + Attn(x))``, then ``LN(x + MLP(x))``."""

    placement = "pre"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        join = RESIDUAL_SUM[self.placement]
        x = join(x, lambda y: self.drop_path1(self._attn(y)), self.norm1, 1.0)
        x = x.reshape(b, -1, c)
        x = join(x, lambda y: self.drop_path2(self.mlp(y)), self.norm2, 1.0)
        return x.reshape(b, h, w, c)


class Swin(TokenClassifier):
    def __init__(
        self,
        width: int = 96,
        stage_depths: Sequence[int] = (2, 2, 6, 2),
        head_dim: int = 32,
        window_size: int = 7,
        patch_size: int = 4,
        mlp_ratio: float = 4.0,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        norm_act = self.norm_act
        channels, h, w = require_image(self.input_shape, "swin")
        placement, kind = norm_act.cfg.placement, norm_act.cfg.kind
        if placement not in ("pre", "post") or kind != "layer":
            raise ConfigError(
                "norm",
                f"model=swin takes norm=pre|post with norm.kind=layer (Pre-LN / Post-LN); "
                f"got norm={placement}, norm.kind={kind}",
            )
        depths = tuple(int(d) for d in stage_depths)
        widths = [width * 2**i for i in range(len(depths))]
        if any(d < 1 for d in depths) or any(c % head_dim for c in widths):
            raise ConfigError(
                "model.head_dim",
                f"model.head_dim={head_dim} must divide every stage width {widths} "
                f"(model.stage_depths={list(depths)} must be positive)",
            )
        patch_grid(self.input_shape, patch_size, "swin")  # the patch size ViT / Mixer accept
        self.net = SwinTransformer(
            img_size=(h, w), patch_size=patch_size, in_chans=channels,
            num_classes=self.num_classes, embed_dim=width, depths=depths,
            num_heads=tuple(c // head_dim for c in widths), window_size=window_size,
            mlp_ratio=mlp_ratio, drop_path_rate=0.0,
        )  # fmt: skip
        self.placement = placement
        for block in self.net.modules():  # timm builds its own blocks: give each the placement
            if type(block) is SwinTransformerBlock:
                block.__class__ = PlacedSwinBlock
                block.placement = placement

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """What igb's initializer does not reach: relative-position tables N(0, 0.02^2)
        truncated (timm's and the authors'), and the buffers computed from the geometry
        (relative-position index, shifted-window masks)."""
        for name, p in self.net.named_parameters():
            if name.endswith("relative_position_bias_table"):
                nn.init.trunc_normal_(p, std=0.02)
        for module in self.net.modules():
            if hasattr(module, "init_non_persistent_buffers"):
                module.init_non_persistent_buffers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
