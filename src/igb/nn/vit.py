"""A small Vision Transformer: patch embedding, class token, residual blocks, linear head.

Placement acts on the residual blocks: ``pre`` = Pre-LN ``x + F(Norm(x))`` with a final
norm before the head, ``post`` = Post-LN ``Norm(x + F(x))``, ``none`` = ``x + F(x)``.

``mlp_norm`` is a second, independent switch inside each transformer MLP (the authors'
``ln_before`` / ``ln_after`` ViT): ``before`` = ``Linear -> LayerNorm -> GELU -> Linear``,
``after`` = ``Linear -> GELU -> LayerNorm -> Linear`` (LayerNorm over the MLP's hidden
width), ``none`` = plain ``Linear -> GELU -> Linear``. ``final_norm=false`` drops the
norm that closes a Pre-LN stack (the authors' ViT feeds the class token straight to the head).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn.tokens import TokenClassifier, channel_mlp, residual_stack


def residual_branch_scale(scale: float | None, depth: int, placement: str) -> float:
    """The factor on each residual branch: ``scale`` when given, else ``1/(2 depth)``
    without norm and 1 with one.

    Without norm, Kaiming-initialized branches about double the residual stream's variance
    at each of the ``2 depth`` branches (logit std about 350 at step 0 for the default ViT)
    and the first SGD step overflows, at any learning rate down to 0.002. ``1/sqrt(2 depth)``
    bounds the forward variance but still overflows at the default SGD learning rate (step
    11); ``1/(2 depth)``, the depth scaling under which a residual stack is a discretised
    ODE with forward and backward passes bounded in depth, trains on the defaults like
    Pre-LN does. With ``pre``/``post`` the norms bound the stream: branches are not scaled.
    """
    if scale is not None:
        if not scale > 0:
            raise ConfigError("model.residual_scale", f"model.residual_scale={scale} must be > 0")
        return float(scale)
    return 1.0 / (2 * depth) if placement == "none" else 1.0


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


@dataclass(frozen=True)
class TransformerBlock:
    """What each transformer block holds besides its width: ``heads`` attention heads, and
    an MLP of ``mlp_ratio`` x width hidden units with its LayerNorm at ``mlp_norm``. The
    config keeps them as the flat keys ``model.heads``, ``model.mlp_ratio``,
    ``model.mlp_norm``."""

    heads: int = 4
    mlp_ratio: float = 2.0
    mlp_norm: str = "none"

    @classmethod
    def split(cls, keys: Mapping[str, Any]) -> tuple[TransformerBlock, dict[str, Any]]:
        """The block of the flat keys among ``keys``, and the keys that are not its own."""
        own = {f.name for f in fields(cls)}
        block = cls(**{k: v for k, v in keys.items() if k in own})
        return block, {k: v for k, v in keys.items() if k not in own}


class ViT(TokenClassifier):
    def __init__(
        self,
        depth: int = 4,
        width: int = 64,
        patch_size: int = 4,
        final_norm: bool = True,
        residual_scale: float | None = None,
        **keys: Any,
    ) -> None:
        """``keys``: the block's flat keys (:class:`TransformerBlock`), and the arguments
        of every model (``input_shape``, ``num_classes``, ``norm_act``)."""
        block, common = TransformerBlock.split(keys)
        super().__init__(**common)
        norm_act = self.norm_act
        n_tokens = self.embed_patches(width, patch_size, "vit", class_token=True)
        heads = block.heads
        if width % heads:
            raise ConfigError("model.heads", f"model.heads={heads} must divide model.width={width}")
        self.pos_embed = nn.Parameter(torch.empty(1, n_tokens, width))
        hidden = int(width * block.mlp_ratio)
        scale = residual_branch_scale(residual_scale, depth, norm_act.cfg.placement)
        self.blocks = residual_stack(
            norm_act,
            width,
            depth,
            lambda: SelfAttention(width, heads),
            lambda: channel_mlp(width, hidden, norm_act.act(), block.mlp_norm),
            scale,
        )
        # Pre-LN closes the stack with a norm; the authors' ViT has none (final_norm=false)
        self.final_norm = norm_act.final_norm(width, "token") if final_norm else nn.Identity()
        self.head = nn.Linear(width, self.num_classes)

    def reset_parameters(self) -> None:
        """Class token zero, position embedding N(0, 0.02^2) (as in ViT/timm)."""
        nn.init.zeros_(self.cls_token)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokens(x) + self.pos_embed
        return self.head(self.final_norm(self.blocks(tokens))[:, 0])
