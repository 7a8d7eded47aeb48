"""Every model x placement x kind: builds, runs forward/backward, and has the norm where
the placement says; invalid combinations are rejected with a message naming the key."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from igb.errors import ConfigError
from igb.nn import NORM_LAYERS, PLACEMENTS, build_model
from igb.nn.norm_act import ACTIVATIONS, NormConfig, Residual

MODELS = {
    "mlp": {"_target_": "igb.nn.mlp.MLP", "name": "mlp", "depth": 2, "width": 16},
    "cnn": {"_target_": "igb.nn.cnn.CNN", "name": "cnn", "depth": 3, "width": 8},
    "resnet": {"_target_": "igb.nn.resnet.ResNet", "name": "resnet", "depth": 1, "width": 8},
    "vit": {
        "_target_": "igb.nn.vit.ViT",
        "name": "vit",
        "depth": 2,
        "width": 16,
        "patch_size": 4,
        "heads": 2,
    },
    "resnet9": {"_target_": "igb.nn.resnet9.ResNet9", "name": "resnet9", "width": 4},
    "mlp_mixer": {
        "_target_": "igb.nn.mixer.MLPMixer",
        "name": "mlp_mixer",
        "depth": 2,
        "width": 16,
        "patch_size": 4,
        "token_hidden": 8,
        "channel_hidden": 8,
    },
}
LAYOUT = {
    "mlp": "dense",
    "cnn": "conv",
    "resnet": "conv",
    "vit": "token",
    "resnet9": "conv",
    "mlp_mixer": "token",
}
SHAPE = (3, 16, 16)


def _valid(model: str, kind: str) -> bool:
    return LAYOUT[model] in NORM_LAYERS[kind]


COMBOS = [
    (m, p, k)
    for m, p, k in itertools.product(MODELS, PLACEMENTS, NORM_LAYERS)
    if p != "none" or k == "batch"
]


def _norm_types(kind: str) -> tuple[type, ...]:
    cfg = NormConfig(placement="pre", kind=kind)
    return tuple(type(make(8, cfg)) for make in NORM_LAYERS[kind].values())


ALL_NORM_TYPES = tuple({t for k in NORM_LAYERS for t in _norm_types(k)})


@pytest.mark.parametrize(("model", "placement", "kind"), COMBOS)
def test_every_valid_combination_builds_and_trains(model: str, placement: str, kind: str) -> None:
    norm = {"placement": placement, "kind": kind, "groups": 4}
    if placement != "none" and not _valid(model, kind):
        with pytest.raises(ConfigError) as err:
            build_model(MODELS[model], norm, SHAPE, 5, seed=0)
        assert err.value.key == "norm.kind"
        assert "allowed" in str(err.value) and model in str(err.value)
        return
    net = build_model(MODELS[model], norm, SHAPE, 5, seed=0)
    x = torch.randn(6, *SHAPE)
    out = net(x)
    assert out.shape == (6, 5)
    out.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    norms = [m for m in net.modules() if isinstance(m, ALL_NORM_TYPES)]
    if placement == "none":
        assert norms == []
    else:
        assert norms and all(isinstance(m, _norm_types(kind)) for m in norms)


def _sequential_blocks(net: nn.Module) -> list[nn.Sequential]:
    return [
        m
        for m in net.modules()
        if isinstance(m, nn.Sequential) and "act" in dict(m.named_children())
    ]


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet", "resnet9"])
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_block_order_follows_placement(model: str, placement: str) -> None:
    net = build_model(MODELS[model], {"placement": placement, "kind": "batch"}, SHAPE, 5, seed=0)
    blocks = _sequential_blocks(net)
    assert blocks
    for block in blocks:
        names = [n for n, _ in block.named_children()]
        if placement == "none":
            assert "norm" not in names
        elif placement == "pre":
            assert names.index("norm") < names.index("act")
        else:  # post: norm is the last operation, after act and after any pooling
            assert names[-1] == "norm" and names.index("act") < names.index("norm")
            if "pool" in names:
                assert names.index("pool") < names.index("norm")


def test_cnn_post_pools_before_norm() -> None:
    net = build_model(MODELS["cnn"], {"placement": "post", "kind": "batch"}, SHAPE, 5, seed=0)
    first = net.blocks[0]
    assert [type(m) for m in first] == [nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.BatchNorm2d]


@pytest.mark.parametrize("model", ["vit", "mlp_mixer"])
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_transformer_residual_placement(model: str, placement: str) -> None:
    """ViT and MLP-Mixer: Pre-LN ``x + F(Norm(x))``, Post-LN ``Norm(x + F(x))``."""
    net = build_model(MODELS[model], {"placement": placement, "kind": "layer"}, SHAPE, 5, seed=0)
    residuals = [m for m in net.modules() if isinstance(m, Residual)]
    assert len(residuals) == 2 * MODELS[model]["depth"]
    x = torch.randn(2, 17, 16)  # 16 patches of 4x4 + the class token, width 16
    for res in residuals:
        assert res.placement == placement
        if placement == "none":
            assert not hasattr(res, "norm")
            continue
        expected = (
            x + res.branch(res.norm(x)) if placement == "pre" else res.norm(x + res.branch(x))
        )
        torch.testing.assert_close(res(x), expected)
    assert isinstance(net.final_norm, nn.LayerNorm) == (placement == "pre")


def test_same_seed_same_parameters_and_logits_different_seed_differs() -> None:
    cfg, norm = MODELS["cnn"], {"placement": "post", "kind": "batch"}
    x = torch.randn(8, *SHAPE)
    a, b = (build_model(cfg, norm, SHAPE, 5, seed=3) for _ in range(2))
    c = build_model(cfg, norm, SHAPE, 5, seed=4)
    for (n, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), n
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
    assert not torch.allclose(a(x), c(x))


def test_build_does_not_consume_global_rng() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build_model(MODELS["mlp"], {"placement": "pre", "kind": "batch"}, SHAPE, 5, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_biases_zero_and_kaiming_scale() -> None:
    cfg = {**MODELS["mlp"], "width": 512}
    net = build_model(cfg, {"placement": "none"}, (256,), 5, seed=0)
    linear = net.blocks[0].layer
    assert torch.count_nonzero(linear.bias) == 0
    # kaiming normal (fan_in, ReLU gain): std = sqrt(2 / fan_in)
    assert abs(linear.weight.std().item() - (2 / 256) ** 0.5) < 0.02 * (2 / 256) ** 0.5 * 10


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"width": 0}, "model.width"),
        ({"depth": -1}, "model.depth"),
        ({"init": "orthogonal"}, "model.init"),
        ({"activation": "swishy"}, "model.activation"),
    ],
)
def test_bad_model_values_name_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_model({**MODELS["mlp"], **overrides}, {"placement": "pre"}, SHAPE, 5, seed=0)
    assert err.value.key == key and key in str(err.value)


def test_group_norm_width_must_divide() -> None:
    with pytest.raises(ConfigError, match="norm.groups=8"):
        build_model(
            {**MODELS["mlp"], "width": 30}, {"placement": "post", "kind": "group"}, SHAPE, 5, 0
        )


def test_conv_models_reject_flat_inputs() -> None:
    with pytest.raises(ConfigError, match="dataset.shape"):
        build_model(MODELS["cnn"], {"placement": "pre"}, (100,), 5, seed=0)


def test_activation_table_complete() -> None:
    assert {"relu", "gelu", "tanh", "leaky_relu", "identity"} <= set(ACTIVATIONS)


@pytest.mark.parametrize("model", ["cnn", "resnet"])
def test_conv_models_measure_channels_last_on_cpu_with_the_same_logits(model, monkeypatch) -> None:
    """On CPU the conv models' no-grad forward passes run on NHWC activations (faster with
    oneDNN), with the logits of the NCHW computation up to float32 summation order;
    training (autograd on) stays NCHW."""
    from igb.nn import cnn, resnet

    net = build_model(MODELS[model], {"placement": "pre", "kind": "batch"}, SHAPE, 5, seed=1)
    first_conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    seen: list[bool] = []
    first_conv.register_forward_pre_hook(
        lambda _, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    x = torch.randn(16, *SHAPE, generator=torch.Generator().manual_seed(0))
    assert x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        nhwc = net(x)
    trained = net(x)
    for module in (cnn, resnet):
        monkeypatch.setattr(module, "channels_last", lambda t: t)
    with torch.no_grad():
        nchw = net(x)
    assert seen == [True, False, False]
    torch.testing.assert_close(nhwc, nchw, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(trained.detach(), nchw, rtol=0, atol=0)


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_resnet9_is_the_authors_layout(placement: str) -> None:
    """conv w, conv 2w + pool, res(2w, 2w), conv 4w + pool, conv 8w + pool, res(8w, 8w),
    global max-pool, linear; pre = conv-norm-act[-pool], post = conv-act[-pool]-norm."""
    net = build_model(
        {**MODELS["resnet9"], "width": 64}, {"placement": placement, "kind": "batch"},
        (3, 32, 32), 2, seed=0, device="meta",
    )  # fmt: skip
    units = [net.conv1, net.conv2, *net.res1, net.conv3, net.conv4, *net.res2]
    assert [(u.layer.in_channels, u.layer.out_channels) for u in units] == [
        (3, 64), (64, 128), (128, 128), (128, 128), (128, 256), (256, 512), (512, 512), (512, 512)
    ]  # fmt: skip
    pooled = [u is net.conv2 or u is net.conv3 or u is net.conv4 for u in units]
    for unit, has_pool in zip(units, pooled, strict=True):
        names = [n for n, _ in unit.named_children()]
        expected = ["layer", "norm", "act"] if placement == "pre" else ["layer", "act"]
        expected += ["pool"] if has_pool else []
        expected += [] if placement == "pre" else ["norm"]
        assert names == expected
        assert isinstance(unit.norm, nn.BatchNorm2d)
    assert net.head.in_features == 512 and net.global_pool == "max"


def test_resnet9_residual_sums_and_global_max_pool() -> None:
    net = build_model(MODELS["resnet9"], {"placement": "post", "kind": "batch"}, SHAPE, 3, seed=1)
    net.eval()
    x = torch.randn(4, *SHAPE)
    with torch.no_grad():
        out = net.conv2(net.conv1(x))
        out = net.res1(out) + out
        out = net.conv4(net.conv3(out))
        maps = net.res2(out) + out
        torch.testing.assert_close(net(x), net.head(maps.amax(dim=(2, 3))))
    avg = build_model(
        {**MODELS["resnet9"], "global_pool": "avg"}, {"placement": "none"}, SHAPE, 3, 1
    )
    with torch.no_grad():
        torch.testing.assert_close(avg(x), avg.head(avg.features(x).mean(dim=(2, 3))))


def test_mlp_mixer_mixes_tokens_then_channels_and_pools_the_class_token() -> None:
    net = build_model(MODELS["mlp_mixer"], {"placement": "pre", "kind": "layer"}, SHAPE, 3, seed=0)
    token_mix, channel_mix = net.blocks[0].branch, net.blocks[1].branch
    assert token_mix.mlp[0].in_features == 17 and token_mix.mlp[0].out_features == 8
    assert channel_mix[0].in_features == 16 and channel_mix[0].out_features == 8
    x = torch.randn(3, *SHAPE)
    with torch.no_grad():
        tokens = net.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([net.cls_token.expand(3, -1, -1), tokens], dim=1)
        expected = net.head(net.final_norm(net.blocks(tokens))[:, 0])
        torch.testing.assert_close(net(x), expected)
    mean = build_model({**MODELS["mlp_mixer"], "pool": "mean"}, {"placement": "none"}, SHAPE, 3, 0)
    assert mean.cls_token is None and mean.blocks[0].branch.mlp[0].in_features == 16


@pytest.mark.parametrize(
    ("model", "overrides", "key"),
    [
        ("resnet9", {"global_pool": "median"}, "model.global_pool"),
        ("mlp_mixer", {"patch_size": 5}, "model.patch_size"),
        ("mlp_mixer", {"pool": "max"}, "model.pool"),
        ("mlp_mixer", {"token_hidden": 0}, "model.token_hidden"),
    ],
)
def test_new_models_reject_bad_sizes_naming_the_key(model: str, overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_model({**MODELS[model], **overrides}, {"placement": "none"}, SHAPE, 3, 0, "meta")
    assert err.value.key == key
