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

from typing import Any

import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn.classifier import Classifier
from igb.nn.cnn import require_image
from igb.nn.norm_act import NormAct


def patch_grid(input_shape: tuple[int, ...], patch_size: int, model: str) -> tuple[int, int]:
    """(channels, number of patches) of an image cut into ``patch_size`` squares."""
    channels, h, w = require_image(input_shape, model)
    if patch_size < 1 or h % patch_size or w % patch_size:
        raise ConfigError(
            "model.patch_size",
            f"model.patch_size={patch_size} must divide the image size {h}x{w}",
        )
    return channels, (h // patch_size) * (w // patch_size)


MLP_NORMS = ("none", "before", "after")


def transformer_mlp(width: int, hidden: int, act: nn.Module, mlp_norm: str) -> nn.Sequential:
    """``Linear -> [LN] -> act -> [LN] -> Linear`` with the LayerNorm where ``mlp_norm`` says."""
    if mlp_norm not in MLP_NORMS:
        raise ConfigError(
            "model.mlp_norm", f"model.mlp_norm={mlp_norm!r} is not one of {', '.join(MLP_NORMS)}"
        )
    inner = [act]
    if mlp_norm == "before":
        inner = [nn.LayerNorm(hidden), act]
    elif mlp_norm == "after":
        inner = [act, nn.LayerNorm(hidden)]
    return nn.Sequential(nn.Linear(width, hidden), *inner, nn.Linear(hidden, width))


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class ViT(Classifier):
    layouts = frozenset({"token"})

    def __init__(
        self,
        norm_act: NormAct,
        depth: int = 4,
        width: int = 64,
        patch_size: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        mlp_norm: str = "none",
        final_norm: bool = True,
        **io: Any,
    ) -> None:
        super().__init__(**io)
        channels, patches = patch_grid(self.input_shape, patch_size, "vit")
        if width % heads:
            raise ConfigError("model.heads", f"model.heads={heads} must divide model.width={width}")
        self.patch = nn.Conv2d(channels, width, patch_size, stride=patch_size)
        n_tokens = patches + 1
        self.cls_token = nn.Parameter(torch.empty(1, 1, width))
        self.pos_embed = nn.Parameter(torch.empty(1, n_tokens, width))
        hidden = int(width * mlp_ratio)
        blocks = []
        for _ in range(depth):
            mlp = transformer_mlp(width, hidden, norm_act.act(), mlp_norm)
            blocks.append(norm_act.residual(SelfAttention(width, heads), width, "token"))
            blocks.append(norm_act.residual(mlp, width, "token"))
        self.blocks = nn.Sequential(*blocks)
        # Pre-LN closes the stack with a norm; the authors' ViT has none (final_norm=false)
        self.final_norm = norm_act.final_norm(width, "token") if final_norm else nn.Identity()
        self.head = nn.Linear(width, self.num_classes)

    def reset_parameters(self) -> None:
        """Class token zero, position embedding N(0, 0.02^2) (as in ViT/timm)."""
        nn.init.zeros_(self.cls_token)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed
        return self.head(self.final_norm(self.blocks(tokens))[:, 0])
