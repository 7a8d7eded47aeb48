"""Where the bias is born and what ``model.neutralize=head`` does, architecture by architecture.

For each architecture: one ensemble with ``ensemble.profile=true`` (gamma, and the module
where gamma_l rises most along the forward path) and the same seeds with
``model.neutralize=head`` (gamma with the head's input centred). Built-in models are
measured with ``norm=none`` on 200 Gaussian-blob images 3x32x32 (``dataset.shape``),
external ones (``norm=native``, their own initialization) on the first 200 digits
upscaled to ``--input-size``. Prints one markdown row per architecture and, with
``--figures DIR``, writes the profile figure of each (``profile_<label>.png``)::

    python bench/bench_neutralize.py [--inits 8] [--input-size 32] [--only CNN-max ...]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import torch
from common import Opt, compose_cfg, ensemble_spec, eval_inputs, parse_args  # bench/: on sys.path

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.ensemble.profile_plot import plot_profile
from igb.ensemble.profile_report import largest_rise, make_profiler, profile_rows
from igb.ensemble.summary import title

BLOBS = ["norm=none", "dataset=gaussian_blobs", "dataset.shape=[3,32,32]", "dataset.num_classes=10",
         "dataset.num_samples=400"]  # fmt: skip
#: label, overrides
ARCHITECTURES = [
    ("MLP", ["model=mlp", *BLOBS]),
    ("CNN-max", ["model=cnn", "model.depth=4", "model.width=16", *BLOBS]),
    ("CNN-avg", ["model=cnn", "model.depth=4", "model.width=16", "model.pool=avg", *BLOBS]),
    ("ResNet", ["model=resnet", *BLOBS]),
    ("ResNet9-max", ["model=resnet9", *BLOBS]),
    ("ResNet9-avg", ["model=resnet9", "model.global_pool=avg", *BLOBS]),
    ("ViT", ["model=vit", "model.depth=2", *BLOBS]),
    ("MLP-Mixer", ["model=mlp_mixer", "model.depth=2", *BLOBS]),
    ("ResNet-18", ["model=torchvision", "model.arch=resnet18"]),
    ("MobileNetV3-Small", ["model=torchvision", "model.arch=mobilenet_v3_small"]),
    ("EfficientNet-B0", ["model=torchvision", "model.arch=efficientnet_b0"]),
    ("ConvNeXt-Atto", ["model=timm", "model.arch=convnext_atto"]),
    ("ViT-Ti/16", ["model=timm", "model.arch=vit_tiny_patch16_224"]),
]
HEADER = ("| architecture | gamma [95% CI] | with `neutralize=head` | largest rise of gamma_l "
          "(module: from -> to) | wall |\n|---|---|---|---|---|")  # fmt: skip


def _gamma(result) -> str:
    from igb.metrics import gamma_bootstrap_ci

    lo, hi = gamma_bootstrap_ci(result.mu, result.s2, n_boot=1000)
    return f"{result.gamma:.3g} [{lo:.3g}, {hi:.3g}]" if math.isfinite(result.gamma) else "nan"


def measure(label: str, overrides: list[str], args: argparse.Namespace) -> str:
    external = any(o.startswith("model=t") for o in overrides)
    common = [f"ensemble.n_inits={args.inits}", "ensemble.eval_samples=200",
              "ensemble.batch_size=200"]  # fmt: skip
    if external:
        common += ["norm=native", "dataset=digits", f"model.input_size={args.input_size}"]
    t0 = time.perf_counter()
    rows = {}
    for neutralize in ("none", "head"):
        cfg = compose_cfg("ensemble", [*overrides, *common, f"model.neutralize={neutralize}"],
                          Path(tempfile.mkdtemp()))  # fmt: skip
        x, dm = eval_inputs(cfg)
        spec = ensemble_spec(cfg)
        profiler = make_profiler(spec, tuple(x.shape[1:]), dm.num_classes)
        plan = EvaluationPlan(cfg.model, cfg.norm, dm.num_classes, batch_size=200, device="cpu")
        res = evaluate_ensemble(plan, x, range(args.inits), profiler=profiler)
        table = profile_rows(profiler, spec, x, n_boot=300, level=0.95)
        rows[neutralize] = (res, table)
        if args.figures and neutralize == "none":
            name = label.replace("/", "-")
            figure = Path(args.figures) / f"profile_{name}.png"
            plot_profile(table, figure, title=title(spec.choices))
    (plain, table), (centred, _) = rows["none"], rows["head"]
    rise = largest_rise(table)
    where = (f"`{rise['module']}` ({rise['kind']}): {rise['from']:.2g} -> {rise['to']:.2g}"
             if rise else "-")  # fmt: skip
    return (f"| {label} | {_gamma(plain)} | {_gamma(centred)} | {where} "
            f"| {time.perf_counter() - t0:.0f} s |")  # fmt: skip


def main() -> None:
    args = parse_args(__doc__, inits=8, input_size=32, only=Opt(None, settings={"nargs": "*"}),
                      figures=None)  # fmt: skip
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print(HEADER, flush=True)
    for label, overrides in ARCHITECTURES:
        if args.only and label not in args.only:
            continue
        print(measure(label, overrides, args), flush=True)


if __name__ == "__main__":
    main()
