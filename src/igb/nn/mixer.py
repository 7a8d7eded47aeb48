"""MLP-Mixer: patch embedding, then blocks of token-mixing and channel-mixing MLPs.

Each mixing MLP is a residual unit from :meth:`NormAct.residual`: ``pre`` = Pre-LN
``x + F(Norm(x))`` with a final norm before the head (the authors' ``MLPMixer_v2``),
``post`` = Post-LN ``Norm(x + F(x))``, ``none`` = ``x + F(x)``; the norm kind is any that
applies to tokens (layer, batch over N*T, rms, center, center_init). The token-mixing
MLP acts along the token axis (``tokens -> token_hidden -> tokens``) for each channel,
the channel-mixing MLP along the channel axis (``width -> channel_hidden -> width``).
A class token (``pool=cls``, as in the authors' runs) or the mean over tokens
(``pool=mean``) feeds the linear head.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn.tokens import TokenClassifier, channel_mlp, residual_stack

POOLS = ("cls", "mean")


class TokenMixing(nn.Module):
    """An MLP along the token axis of (N, T, D) tokens, the same for every channel."""

    def __init__(self, tokens: int, hidden: int, act: nn.Module) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(tokens, hidden), act, nn.Linear(hidden, tokens))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x.transpose(1, 2)).transpose(1, 2)


class MLPMixer(TokenClassifier):
    def __init__(
        self,
        depth: int = 8,
        width: int = 128,
        patch_size: int = 4,
        token_hidden: int = 512,
        channel_hidden: int = 64,
        pool: str = "cls",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        norm_act = self.norm_act
        tokens = self.embed_patches(width, patch_size, "mlp_mixer", class_token=pool == "cls")
        if pool not in POOLS:
            raise ConfigError("model.pool", f"model.pool={pool!r}; allowed: {', '.join(POOLS)}")
        for key, value in (("token_hidden", token_hidden), ("channel_hidden", channel_hidden)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"model.{key}", f"model.{key}={value} must be a positive integer")
        self.pool = pool
        self.blocks = residual_stack(
            norm_act,
            width,
            depth,
            lambda: TokenMixing(tokens, token_hidden, norm_act.act()),
            lambda: channel_mlp(width, channel_hidden, norm_act.act()),
        )
        self.final_norm = norm_act.final_norm(width, "token")
        self.head = nn.Linear(width, self.num_classes)

    def reset_parameters(self) -> None:
        """Class token N(0, 1), as the authors' ``torch.randn`` draws it."""
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.final_norm(self.blocks(self.tokens(x)))
        return self.head(out[:, 0] if self.pool == "cls" else out.mean(dim=1))
