"""model=swin (timm's blocks, Pre-LN / Post-LN switch) and the ResNet101-v2 layout of
model=resnet (stage_blocks, stem=imagenet)."""

from __future__ import annotations

import pytest
import torch
from timm.models.swin_transformer import SwinTransformer
from torch import nn

from igb.errors import ConfigError
from igb.nn import build_model
from igb.nn.swin import PlacedSwinBlock

SWIN = {
    "_target_": "igb.nn.swin.Swin",
    "name": "swin",
    "width": 16,
    "stage_depths": [2, 2],
    "head_dim": 8,
    "window_size": 4,
    "patch_size": 2,
    "init": "trunc_normal",
}
SHAPE = (3, 16, 16)


def _swin(placement: str, seed: int = 0) -> nn.Module:
    return build_model(SWIN, {"placement": placement, "kind": "layer"}, SHAPE, 3, seed=seed)


def test_pre_is_timms_own_swin_with_the_same_weights() -> None:
    """Built on the meta device and initialised by igb, the network (including the
    shifted-window masks and position indices it recomputes) is timm's Swin."""
    model = _swin("pre").eval()
    ref = SwinTransformer(
        img_size=(16, 16), patch_size=2, in_chans=3, num_classes=3, embed_dim=16,
        depths=(2, 2), num_heads=(2, 4), window_size=4, drop_path_rate=0.0,
    ).eval()  # fmt: skip
    ref.load_state_dict(model.net.state_dict())
    x = torch.randn(5, *SHAPE)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-5)
    tables = [p for n, p in model.named_parameters() if n.endswith("bias_table")]
    assert tables and all(0.005 < t.std().item() < 0.04 for t in tables)  # N(0, 0.02^2)


def _post_block(module: torch.nn.Module) -> bool:
    return isinstance(module, PlacedSwinBlock) and module.placement == "post"


def test_post_blocks_are_ln_of_the_residual_sum() -> None:
    model = _swin("post").eval()
    blocks = [m for m in model.modules() if _post_block(m)]
    assert len(blocks) == 4
    block = blocks[0]
    x = torch.randn(2, 8, 8, 16)
    with torch.no_grad():
        h = block.norm1(x + block._attn(x)).reshape(2, -1, 16)
        expected = block.norm2(h + block.mlp(h)).reshape(2, 8, 8, 16)
        assert torch.allclose(block(x), expected, atol=1e-6)
        # every token of a Post-LN block output is normalised
        out = block(x)
        assert torch.allclose(out.mean(-1), torch.zeros(2, 8, 8), atol=1e-5)
    pre = _swin("pre")
    assert not any(_post_block(m) for m in pre.modules())
    assert torch.equal(
        torch.cat([p.flatten() for p in pre.parameters()]),
        torch.cat([p.flatten() for p in _swin("post").parameters()]),
    )  # same weights from the same seed: only the wiring differs


@pytest.mark.parametrize(
    ("norm", "key"),
    [({"placement": "pre", "kind": "batch"}, "norm"), ({"placement": "none"}, "norm")],
)
def test_swin_takes_layer_norm_pre_or_post_only(norm: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        build_model(SWIN, {"kind": "layer", **norm}, SHAPE, 3, seed=0)


def test_resnet101_layout_and_stem_order() -> None:
    cfg = {
        "_target_": "igb.nn.resnet.ResNet",
        "name": "resnet",
        "width": 4,
        "stage_blocks": [3, 4, 23, 3],
        "stem": "imagenet",
    }
    for placement, order in (("pre", ["layer", "norm", "act", "pool"]),
                             ("post", ["layer", "act", "pool", "norm"])):  # fmt: skip
        model = build_model(cfg, {"placement": placement, "kind": "batch"}, (3, 32, 32), 2, 0)
        assert [name for name, _ in model.stem.named_children()] == order
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == 1 + 2 * 33 + 3  # stem, two per block, three projections
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    with pytest.raises(ConfigError, match="model.stage_blocks"):
        build_model({**cfg, "stage_blocks": [2, 0]}, {"placement": "pre"}, (3, 32, 32), 2, 0)
    with pytest.raises(ConfigError, match="model.stem"):
        build_model({**cfg, "stem": "vgg"}, {"placement": "pre"}, (3, 32, 32), 2, 0)
