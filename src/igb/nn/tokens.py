"""What the token models share: patches, and the stack of residual mixing blocks.

The ViT and the MLP-Mixer differ only in how tokens exchange information (attention or a
token-mixing MLP); both alternate that with a channel MLP, each a residual unit whose
norm placement :meth:`NormAct.residual` decides. One implementation of that stack.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn.classifier import Classifier
from igb.nn.cnn import require_image
from igb.nn.norm_act import NormAct


class TokenClassifier(Classifier):
    """Base of the token models (ViT, MLP-Mixer, Swin): their hidden layers see tokens."""

    layouts = frozenset({"token"})

    def embed_patches(self, width: int, patch_size: int, model: str, class_token: bool) -> int:
        """``self.patch``: the image cut into ``patch_size`` squares, each embedded to
        ``width`` channels; ``self.cls_token``: a learned token put before them (None
        without ``class_token``). Returns the number of tokens."""
        channels, patches = patch_grid(self.input_shape, patch_size, model)
        self.patch = nn.Conv2d(channels, width, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.empty(1, 1, width)) if class_token else None
        return patches + class_token

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(N, tokens, width): the embedded patches of the images ``x``, after the class
        token where there is one."""
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        if self.cls_token is None:
            return tokens
        return torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)


def patch_grid(input_shape: tuple[int, ...], patch_size: int, model: str) -> tuple[int, int]:
    """(channels, number of patches) of an image cut into ``patch_size`` squares."""
    channels, h, w = require_image(input_shape, model)
    if patch_size < 1 or h % patch_size or w % patch_size:
        raise ConfigError(
            "model.patch_size",
            f"model.patch_size={patch_size} must divide the image size {h}x{w}",
        )
    return channels, (h // patch_size) * (w // patch_size)


#: where a LayerNorm sits inside the channel MLP (the authors' ViT: ``ln_before``/``ln_after``)
MLP_NORMS = ("none", "before", "after")


def channel_mlp(width: int, hidden: int, act: nn.Module, mlp_norm: str = "none") -> nn.Sequential:
    """``width -> hidden -> width`` along the channel axis of every token:
    ``Linear -> [LN] -> act -> [LN] -> Linear`` with the LayerNorm where ``mlp_norm`` says."""
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


def residual_stack(
    norm_act: NormAct,
    width: int,
    depth: int,
    mixer: Callable[[], nn.Module],
    mlp: Callable[[], nn.Module],
    scale: float = 1.0,
) -> nn.Sequential:
    """``depth`` times: a residual token mixer, then a residual channel MLP (each branch
    times ``scale`` where the placement has no norm to bound the stream)."""
    blocks: list[nn.Module] = []
    for _ in range(depth):
        blocks.append(norm_act.residual(mixer(), width, "token", scale))
        blocks.append(norm_act.residual(mlp(), width, "token", scale))
    return nn.Sequential(*blocks)
