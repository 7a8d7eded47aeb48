"""model.neutralize: a centring of the head's input on built-in and external models, the
same initialization otherwise, gamma at the finite-N floor, the infinite-width prediction,
job names, and one line where it cannot apply."""

from __future__ import annotations

import pytest
import torch
from helpers.entry_points import run_entry
from omegaconf import OmegaConf

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.errors import ConfigError
from igb.jobs.identity import config_differences, run_identity
from igb.nn import build_model
from igb.nn.centering import CenterInitNorm, CenterNorm
from igb.theory.nngp import WalkSettings, predict_gamma

NATIVE = {"placement": "native", "kind": "native"}
CNN = {"_target_": "igb.nn.cnn.CNN", "name": "cnn", "depth": 2, "width": 4}
CUSTOM = {"_target_": "igb.nn.libraries.Custom", "name": "custom",
          "cls": "helpers.custom_models.NoHeadBias"}  # fmt: skip


def test_same_parameters_plus_a_centring() -> None:
    plain = build_model(CNN, {"placement": "none"}, (3, 8, 8), 3, seed=5)
    centred = build_model({**CNN, "neutralize": "head"}, {"placement": "none"}, (3, 8, 8), 3, 5)
    a, b = plain.state_dict(), centred.state_dict()
    assert set(b) - set(a) == {"head.center.running_mean"}
    assert set(a) - set(b) == {"head.bias"} and centred.head.bias is None  # removed
    assert all(torch.equal(a[k], b[k]) for k in b if k in a)
    assert isinstance(centred.head.center, CenterNorm)
    frozen = build_model({**CNN, "neutralize": "head_frozen"}, {"placement": "none"}, (3, 8, 8),
                         3, 5)  # fmt: skip
    assert isinstance(frozen.head.center, CenterInitNorm)


@pytest.mark.parametrize(("model_cfg", "norm_cfg", "shape"), [
    (CNN, {"placement": "none"}, (3, 8, 8)),
    (CUSTOM, NATIVE, (12,)),
    ({**CUSTOM, "cls": "helpers.custom_models.DefaultBiases"}, NATIVE, (12,)),  # a head bias
])  # fmt: skip
def test_centred_head_input_is_neutral(model_cfg, norm_cfg, shape) -> None:
    x = torch.rand(40, *shape, generator=torch.Generator().manual_seed(0))
    kw = {"batch_size": 40, "method": "loop"}
    before = evaluate_ensemble(EvaluationPlan(model_cfg, norm_cfg, 3, **kw), x, range(30))
    centred = {**model_cfg, "neutralize": "head"}
    after = evaluate_ensemble(EvaluationPlan(centred, norm_cfg, 3, **kw), x, range(30))
    assert before.gamma > 0.2
    assert after.gamma < 1e-6  # every class's logits sum to zero over the one batch


def test_head_frozen_freezes_on_the_first_training_step() -> None:
    model = build_model({**CNN, "neutralize": "head_frozen"}, {"placement": "none"}, (3, 8, 8),
                        3, 0)  # fmt: skip
    model.train()
    x = torch.rand(16, 3, 8, 8)
    model(x).sum().backward()
    assert model.head.center.frozen
    feats = model.blocks(x).mean(dim=(2, 3))
    torch.testing.assert_close(model.head.center.init_mean, feats.mean(dim=0).detach())


def test_infinite_width_prediction_of_a_centred_mlp() -> None:
    mlp = {"_target_": "igb.nn.mlp.MLP", "depth": 3, "width": 64}
    x = torch.randn(50, 12, generator=torch.Generator().manual_seed(1))
    plain = predict_gamma(WalkSettings.from_groups(mlp, {"placement": "none"}, 25), x).gamma
    centred = predict_gamma(
        WalkSettings.from_groups({**mlp, "neutralize": "head"}, {"placement": "none"}, 25), x
    ).gamma
    assert plain > 0.5 and centred == pytest.approx(0.0, abs=1e-9)


def test_cannot_apply_is_one_line() -> None:
    squeeze = {"_target_": "igb.nn.libraries.Torchvision", "name": "torchvision-squeezenet1_0",
               "arch": "squeezenet1_0", "neutralize": "head"}  # fmt: skip
    with pytest.raises(
        ConfigError,
        match=r"^model.neutralize=head cannot apply to model="
        r"torchvision-squeezenet1_0: its head net.classifier.1 is a Conv2d",
    ):
        build_model(squeeze, NATIVE, (3, 32, 32), 3, seed=0, device="meta")
    with pytest.raises(ConfigError, match=r"^model.neutralize=yes; allowed: none, head, "):
        build_model({**CNN, "neutralize": "yes"}, {"placement": "none"}, (3, 8, 8), 3, 0)


def test_identity_and_old_folders() -> None:
    cfg = OmegaConf.create({"model": {**CNN, "neutralize": "head"}, "norm": {"placement": "none",
                           "kind": "batch"}, "dataset": {"name": "digits"}})  # fmt: skip
    ident = run_identity(cfg)
    assert ident["job_type"] == "cnn-none-neutralize_head"
    assert "neutralize:head" in ident["tags"]
    saved = {"model": dict(CNN), "norm": {"placement": "none"}}  # written before the key existed
    launched = {"model": {**CNN, "neutralize": "none"}, "norm": {"placement": "none"}}
    assert config_differences(saved, launched) == []
    assert config_differences(saved, {**launched, "model": {**CNN, "neutralize": "head"}}) == [
        "model.neutralize"
    ]


def test_ensemble_py_bad_value(tmp_path) -> None:
    proc = run_entry("ensemble.py", "model=cnn", "model.neutralize=center", cwd=tmp_path,
                     timeout=240)  # fmt: skip
    assert proc.returncode == 2
    assert "model.neutralize=center; allowed: none, head, head_frozen" in proc.stderr
