"""External architectures (model=torchvision|timm|custom, norm=native): the architecture's
own initialization from the seed, pretrained backbones from a local file, fresh heads,
head-only ensembles, batch statistics in every BatchNorm, the refusal of none/pre/post,
and the real entry points (train.py, ensemble.py, multirun_analysis) with them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
import yaml
from helpers.sizes import TINY_IMAGES, TINY_IMAGES_ENSEMBLE, merged
from torch import nn

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.launch.preflight import check
from igb.launch.validate import validate
from igb.launch.validate_ensemble import validate_ensemble
from igb.metrics import BiasStatistics
from igb.metrics.measure import batch_stat_mode, predict_logits
from igb.nn import build_model
from igb.nn.reinit import head_names, reinitializer
from multirun_analysis.wandb_files import find_run_dirs, read_run

#: tiny models gain nothing from intra-op threads (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

ROOT = Path(__file__).resolve().parents[2]
NATIVE = {"placement": "native", "kind": "native"}


class TinyNet(nn.Module):
    """A user's module: conv -> BatchNorm -> ReLU -> global pooling -> linear head."""

    def __init__(self, num_classes: int, hidden: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, hidden, 3, padding=1)
        self.bn = nn.BatchNorm2d(hidden)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def model_cfg(library: str, arch: str, **extra) -> dict:
    cfg = {
        "_target_": f"igb.nn.libraries.{library}",
        "name": f"{library.lower()}-{arch}",
        "cls" if library == "Custom" else "arch": arch,
        "weights": None,
        "input_size": None,
        "head_init": "native",
        "kwargs": {},
    }
    return {**cfg, **extra}


def resnet18(**extra) -> dict:
    return model_cfg("Torchvision", "resnet18", **extra)


def params(model: nn.Module, prefix: str = "net.") -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def r18_file(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision ResNet-18 state dict (10 classes, seed 123), saved as a user would."""
    torch.manual_seed(123)
    state = torchvision.models.resnet18(num_classes=10).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(state, path)
    return path, state


# -- building: own init from the seed, weights, heads ---------------------------------------------
def test_seed_is_the_architectures_own_init() -> None:
    """Initialization i is torchvision's constructor under manual_seed(i), bit for bit."""
    model = build_model(resnet18(), NATIVE, (3, 16, 16), 3, seed=7)
    torch.manual_seed(7)
    ref = torchvision.models.resnet18(num_classes=3).state_dict()
    got = params(model)
    assert got.keys() == ref.keys()
    for k in ref:
        assert torch.equal(got[k], ref[k]), k
    other = params(build_model(resnet18(), NATIVE, (3, 16, 16), 3, seed=8))
    assert not torch.equal(other["conv1.weight"], got["conv1.weight"])


def test_backbone_from_a_local_file_and_a_seeded_head(r18_file) -> None:
    path, state = r18_file
    cfg = resnet18(weights=str(path))
    a = params(build_model(cfg, NATIVE, (3, 16, 16), 3, seed=0))
    b = params(build_model(cfg, NATIVE, (3, 16, 16), 3, seed=1))
    for k, v in state.items():
        if not k.startswith("fc."):
            assert torch.equal(a[k], v) and torch.equal(b[k], v), k
    # the head: the architecture's own (3 classes), from the seed, as without weights
    fresh = params(build_model(resnet18(), NATIVE, (3, 16, 16), 3, seed=1))
    assert a["fc.weight"].shape == (3, 512)
    assert torch.equal(b["fc.weight"], fresh["fc.weight"])
    assert not torch.equal(a["fc.weight"], b["fc.weight"])


def test_lightning_checkpoint_keys_and_torch_default_head(r18_file, tmp_path) -> None:
    """A checkpoint of this framework (``model.net.*`` keys) loads the same backbone; a
    torch_default head is exactly a new nn.Linear made after manual_seed(seed)."""
    _, state = r18_file
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"model.net.{k}": v for k, v in state.items()}}, ckpt)
    cfg = resnet18(weights=str(ckpt), head_init="torch_default")
    got = params(build_model(cfg, NATIVE, (3, 16, 16), 4, seed=5))
    assert torch.equal(got["layer4.1.bn2.running_var"], state["layer4.1.bn2.running_var"])
    torch.manual_seed(5)
    linear = nn.Linear(512, 4)
    assert torch.equal(got["fc.weight"], linear.weight) and torch.equal(got["fc.bias"], linear.bias)


def test_timm_vit_resized_one_channel_input_and_weights_file(tmp_path) -> None:
    """timm builds the ViT for the input size and the data's channels; its own loader
    takes the local file (minus the head of another size)."""
    import timm

    torch.manual_seed(0)
    source = timm.create_model("test_vit", num_classes=10, in_chans=1, img_size=32)
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    cfg = model_cfg("Timm", "test_vit", weights=str(tmp_path / "vit.pth"), input_size=32)
    model = build_model(cfg, NATIVE, (1, 8, 8), 3, seed=0)
    got = params(model)
    for k, v in source.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(got[k], v), k
    assert got["head.weight"].shape == (3, source.head.in_features)
    assert predict_logits(model, torch.randn(6, 1, 8, 8), 6).shape == (6, 3)


def test_named_weights_load_from_the_local_caches(tmp_path, monkeypatch) -> None:
    """Named weights come from the caches the libraries download to, in their on-disk
    layouts (written here): torch hub's checkpoints folder and the Hugging Face hub cache."""
    import huggingface_hub.constants
    import timm
    from safetensors.torch import save_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.manual_seed(3)
    imagenet = torchvision.models.resnet18().state_dict()  # 1000 classes
    torch.save(imagenet, hub / "resnet18-f37072fd.pth")
    got = params(build_model(resnet18(weights="IMAGENET1K_V1"), NATIVE, (3, 8, 8), 3, seed=0))
    assert torch.equal(got["layer1.0.conv1.weight"], imagenet["layer1.0.conv1.weight"])
    assert got["fc.weight"].shape == (3, 512)

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    repo = tmp_path / "hf" / "models--timm--test_vit.r160_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    source = timm.create_model("test_vit", img_size=160).state_dict()
    save_file(source, str(repo / "snapshots" / "0123abcd" / "model.safetensors"))
    cfg = model_cfg("Timm", "test_vit", weights="r160_in1k", input_size=32)
    got = params(build_model(cfg, NATIVE, (3, 8, 8), 3, seed=0))
    assert torch.equal(got["blocks.0.attn.qkv.weight"], source["blocks.0.attn.qkv.weight"])
    # timm resampled the position embedding from 160 / 16 to 32 / 16 patches a side
    assert got["pos_embed"].shape[1] < source["pos_embed"].shape[1]


def test_a_file_that_does_not_fit_is_one_line(tmp_path) -> None:
    torch.save(TinyNet(3).state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(Exception, match=r"^model.weights=.*tiny.pth does not fit torchvision"):
        build_model(resnet18(weights=str(tmp_path / "tiny.pth")), NATIVE, (3, 8, 8), 3, seed=0)


def test_head_is_what_depends_on_the_number_of_classes() -> None:
    custom = model_cfg("Custom", f"{__name__}.TinyNet")
    assert head_names(custom, NATIVE, (3, 8, 8), 3) == {"net.fc.weight", "net.fc.bias"}
    vit = model_cfg("Torchvision", "vit_b_16")
    assert head_names(vit, NATIVE, (3, 32, 32), 3) == {
        "net.heads.head.weight",
        "net.heads.head.bias",
    }
    mlp = {"_target_": "igb.nn.mlp.MLP", "depth": 2, "width": 8}
    assert head_names(mlp, {"placement": "pre"}, (5,), 3) == {"head.weight", "head.bias"}


# -- ensembles ------------------------------------------------------------------------------------
def _stats(model, x, batch_size):
    metric = BiasStatistics(3)
    metric.update(predict_logits(model, x, batch_size))
    return metric.compute()


@pytest.mark.parametrize(("vary", "method"), [("all", "loop"), ("head", "vmap")])
def test_ensemble_rows_are_the_models_built_alone(r18_file, vary, method) -> None:
    """With pretrained weights, vary=all and vary=head sample the same thing: the head;
    the threaded loop and vmap (the GPU default) both give the models built alone."""
    cfg = resnet18(weights=str(r18_file[0]))
    x = torch.randn(24, 3, 8, 8)
    plan = EvaluationPlan(cfg, NATIVE, 3, batch_size=12, method=method, workers=2, vary=vary)
    result = evaluate_ensemble(plan, x, [0, 1, 2])
    for k, seed in enumerate([0, 1, 2]):
        ref = _stats(build_model(cfg, NATIVE, (3, 8, 8), 3, seed=seed), x, 12)
        assert result.f[k].tolist() == ref["f"].tolist()
        torch.testing.assert_close(
            torch.as_tensor(result.mu[k]), ref["mu"].double(), rtol=1e-5, atol=1e-6
        )


def test_head_only_ensemble_keeps_the_backbone(tmp_path) -> None:
    """vary=head without weights: every initialization has the random backbone of seed0;
    only the head (the parameters that depend on C) changes, and it is seed i's."""
    cfg = model_cfg("Timm", "resnet10t")
    shape, device = (3, 16, 16), torch.device("cpu")
    reinit = reinitializer(cfg, NATIVE, shape, 3, device, vary="head", seed0=4)
    replicas = []
    for seed in (4, 5, 6):
        m = build_model(cfg, NATIVE, shape, 3, seed=0, device="meta").to_empty(device=device)
        reinit(m, seed)
        replicas.append(dict(m.state_dict()))
    head = {"net.fc.weight", "net.fc.bias"}
    seed4 = replicas[0]
    for seed, state in zip((4, 5, 6), replicas):
        alone = dict(build_model(cfg, NATIVE, shape, 3, seed=seed).state_dict())
        for k, v in state.items():
            assert torch.equal(v, alone[k] if k in head else seed4[k]), (seed, k)
    assert not torch.equal(replicas[1]["net.fc.weight"], replicas[2]["net.fc.weight"])


def test_head_only_blocks_share_the_backbone_of_seed0() -> None:
    """A resumable ensemble evaluates its seeds in blocks: with vary=head every block must
    sample heads on the backbone of ``ensemble.seed0``, so two blocks equal one call."""
    cfg = model_cfg("Timm", "resnet10t")
    x = torch.randn(12, 3, 16, 16)
    plan = EvaluationPlan(cfg, NATIVE, 3, batch_size=12, vary="head", backbone_seed=0)
    whole = evaluate_ensemble(plan, x, range(4))
    blocks = [evaluate_ensemble(plan, x, seeds) for seeds in ([0, 1], [2, 3])]
    for key in ("f", "mu", "s2"):
        joined = np.concatenate([getattr(b, key) for b in blocks])
        np.testing.assert_allclose(joined, getattr(whole, key), rtol=1e-6, atol=1e-9)
    other = evaluate_ensemble(EvaluationPlan(cfg, NATIVE, 3, 12, vary="head"), x, [2, 3])
    assert not np.allclose(other.mu, blocks[1].mu)  # default backbone: the block's first seed


def test_a_zero_head_is_one_line_and_a_fresh_head_measures() -> None:
    """timm's MLP-Mixer starts with a zero head: every logit equal, gamma 0 / 0."""
    cfg = model_cfg("Timm", "mixer_s32_224", input_size=32)
    x = torch.randn(8, 3, 8, 8)
    with pytest.raises(Exception, match=r"^model.head_init=native: timm-mixer_s32_224 init"):
        evaluate_ensemble(EvaluationPlan(cfg, NATIVE, 3, batch_size=8), x, [0])
    cfg["head_init"] = "torch_default"
    result = evaluate_ensemble(EvaluationPlan(cfg, NATIVE, 3, batch_size=8), x, [0, 1])
    assert (result.s2 > 0).all()


def test_every_batch_norm_of_external_nets_uses_batch_statistics() -> None:
    import timm

    class RunningStats(nn.Module):  # not a _BatchNorm, but keeps running statistics
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("running_var", torch.ones(3))

    with torch.device("meta"):
        nets = [
            timm.create_model("efficientnet_b0", num_classes=3),  # timm's BatchNormAct2d
            torchvision.models.mobilenet_v3_small(num_classes=3),
            nn.Sequential(nn.Conv2d(3, 3, 1), RunningStats(), nn.Dropout()),
        ]
    for net in nets:
        stats_modules = [m for m in net.modules() if hasattr(m, "running_var")]
        assert stats_modules
        with batch_stat_mode(net):
            for m in net.modules():
                assert m.training == any(m is s for s in stats_modules), m


# -- refusals (the preflight: one line, before anything is written) -------------------------------
#: norm=none|pre|post on an architecture that places its norms itself (model: extra overrides)
_EXTERNAL = {"torchvision": [], "timm": [], "custom": [f"model.cls={__name__}.TinyNet"]}
NATIVE_ONLY = [
    (
        [f"model={model}", f"norm={norm}", *extra],
        f"norm={norm} is not available for model={model}: the architecture places its norms "
        "itself; use norm=native",
    )
    for model, extra in _EXTERNAL.items()
    for norm in ("none", "pre", "post")
]


#: the rest, kept as data beside this file: overrides and the exact line
BAD_EXTERNAL = [
    (case["argv"], case["says"])
    for case in yaml.safe_load((Path(__file__).parent / "bad_external_values.yaml").read_text())
]


@pytest.mark.parametrize(("argv", "expected"), [*NATIVE_ONLY, *BAD_EXTERNAL])
def test_bad_external_input_is_one_line(argv: list[str], expected: str) -> None:
    assert check("train", argv, validate) == expected


def test_named_weights_never_download_by_default(tmp_path, monkeypatch) -> None:
    """Not in the (empty) caches -> one line naming model.download; no network touched."""
    import huggingface_hub.constants

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    assert check(
        "train", ["model=torchvision", "norm=native", "model.weights=DEFAULT"], validate
    ) == (
        f"model.weights=DEFAULT for torchvision resnet18 is not in the local cache "
        f"({hub}/resnet18-f37072fd.pth); set model.download=true to download it, or give a "
        "file path"
    )
    argv = ["model=timm", "norm=native", "model.arch=resnet10t", "model.weights=default"]
    assert check("train", argv, validate) == (
        "model.weights=default for timm resnet10t is not in the local cache "
        "(timm/resnet10t.c3_in1k); set model.download=true to download it, or give a file path"
    )


def test_ensemble_vary_is_checked() -> None:
    argv = ["model=torchvision", "norm=native", "ensemble.vary=backbone"]
    assert check("ensemble", argv, validate_ensemble) == (
        "ensemble.vary=backbone unknown; allowed: all, head"
    )


# -- the real entry points ------------------------------------------------------------------------
def _run(script: str, args: list[str], cwd: Path, pythonpath: Path | None = None):
    env = {**os.environ, "IGB_ROOT": str(cwd), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_torchvision_resnet_trains_from_a_file_in_a_multirun(r18_file, tmp_path) -> None:
    """train.py -m with a pretrained backbone: statistics from step 0, W&B run named by
    its choices, and multirun_analysis reading the sweep."""
    from multirun_analysis.collect import collect

    sweep = tmp_path / "sweep"
    _run("train.py", ["-m", "model=torchvision", "norm=native", f"model.weights={r18_file[0]}",
                      *TINY_IMAGES, f"hydra.sweep.dir={sweep}"], tmp_path)  # fmt: skip
    job = sweep / "0"
    assert json.loads((job / "status.json").read_text())["status"] == "finished"
    run = read_run(find_run_dirs(job)[0])
    assert run.job_type == "torchvision-resnet18-native"
    assert {"model:torchvision-resnet18", "norm:native", "norm_kind:native"} <= set(run.tags)
    steps = [int(r["trainer/global_step"]) for r in run.history if "igb/train/f_max" in r]
    assert steps[0] == 0 and len(steps) >= 2  # step 0 and the epoch end
    jobs = collect(sweep).jobs
    assert jobs[["model", "norm", "status"]].values.tolist() == [
        ["torchvision-resnet18", "native", "finished"]
    ]


@pytest.mark.slow
def test_timm_vit_trains_and_its_ensemble_runs(tmp_path) -> None:
    """timm's test_vit on 1-channel 8x8 images resized to 16: train.py, then ensemble.py."""
    data = ["dataset.shape=[1,8,8]"]
    _run("train.py", ["model=timm", "model.arch=test_vit", "model.input_size=16", "norm=native",
                      *merged(TINY_IMAGES, data), "logger=csv",
                      f"hydra.run.dir={tmp_path / 'train'}"], tmp_path)  # fmt: skip
    assert json.loads((tmp_path / "train" / "status.json").read_text())["status"] == "finished"
    out = tmp_path / "ens"
    vit = ["model=timm", "model.arch=test_vit", "model.input_size=16", "norm=native"]
    _run("ensemble.py", [*vit, *merged(TINY_IMAGES_ENSEMBLE, data), f"hydra.run.dir={out}"],
         tmp_path)  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_inits"] == 4 and summary["choices"]["model"] == "timm-test_vit"
    assert summary["choices"]["norm_placement"] == "native"


CUSTOM_MODULE = """
import torch
from torch import nn


class UserNet(nn.Module):
    def __init__(self, num_classes, hidden=8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, hidden, 3, padding=1), nn.BatchNorm2d(hidden),
                                  nn.ReLU())
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.classifier(self.body(x).mean(dim=(2, 3)))
"""


@pytest.mark.slow
def test_custom_module_trains_and_its_head_only_ensemble_runs(tmp_path) -> None:
    """A user's module (importable from the user's PYTHONPATH) through both entry points;
    a head-only ensemble on it starts from the weights a first run saved."""
    (tmp_path / "user_nets.py").write_text(CUSTOM_MODULE)
    model = ["model=custom", "model.cls=user_nets.UserNet", "+model.kwargs.hidden=6",
             "norm=native"]  # fmt: skip
    train = [*model, *TINY_IMAGES, "logger=csv", f"hydra.run.dir={tmp_path / 'train'}"]
    _run("train.py", train, tmp_path, tmp_path)
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    out = tmp_path / "ens"
    _run("ensemble.py", [*model, f"model.weights={ckpt}", "ensemble.vary=head",
                         *TINY_IMAGES_ENSEMBLE, f"hydra.run.dir={out}"],
         tmp_path, tmp_path)  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["choices"]["vary"] == "head" and summary["n_inits"] == 4
    # the log and summary.json name the class and the weights loaded
    assert summary["choices"]["class"] == "user_nets.UserNet"
    assert summary["choices"]["weights"] == str(ckpt)
    rows = (out / "inits.csv").read_text().splitlines()
    assert len(rows) == 5 and len(set(rows[1:])) > 1  # the heads differ
