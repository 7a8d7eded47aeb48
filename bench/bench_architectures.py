"""gamma and regime at initialization of standard architectures (docs/architectures.md).

Every architecture is built by its library (``model=torchvision|timm``, ``norm=native``)
with its own initialization from seeds 0 .. n-1 and measured exactly as ``python
ensemble.py`` measures it (batch statistics in every BatchNorm, one batch holding the
whole evaluation set) on the same evaluation set: the first ``--eval-samples`` points of
the train split of ``dataset=digits`` (scikit-learn's 8x8 handwritten digits, 10 classes,
standardised), upscaled to ``--input-size`` pixels by the model's input adapter (and
repeated to 3 channels for torchvision; timm builds 1-channel stems). Prints one
markdown row per architecture, as it finishes::

    python bench/bench_architectures.py [--input-size 64] [--eval-samples 200] [--scale 1]

``--scale`` multiplies every architecture's number of initializations; ``--only`` picks
rows by label. Wall times are for the whole ensemble (builds and forward passes) with the
default CPU method (one thread per core, each with its own replica).
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

from igb.ensemble import EvaluationPlan, evaluate_ensemble, summarize
from igb.nn import build_model

#: label, library, architecture, initializations (chosen so the table fits ~15 min on
#: the shared 2-core CPU; the bootstrap interval says what that costs in precision), and
#: more overrides: timm's MLP-Mixer starts with a zero head (every logit equal), so it is
#: measured with a fresh nn.Linear head, as when the head is replaced
ARCHITECTURES = [
    ("ResNet-18", "torchvision", "resnet18", 24, []),
    ("ResNet-50", "torchvision", "resnet50", 12, []),
    ("ConvNeXt-Atto", "timm", "convnext_atto", 16, []),
    ("MobileNetV3-Small", "torchvision", "mobilenet_v3_small", 24, []),
    ("EfficientNet-B0", "torchvision", "efficientnet_b0", 12, []),
    ("ViT-Ti/16", "timm", "vit_tiny_patch16_224", 16, []),
    ("DeiT-Ti/16", "timm", "deit_tiny_patch16_224", 16, []),
    ("Swin-T", "timm", "swin_tiny_patch4_window7_224", 10, []),
    ("Mixer-S/16", "timm", "mixer_s16_224", 10, ["model.head_init=torch_default"]),
]

HEADER = (
    "| architecture | built by | params | input | inits | gamma [95% CI] | regime "
    "| mean f_max | wall time |\n|---|---|---|---|---|---|---|---|---|"
)


def measure(
    label: str, library: str, arch: str, n_inits: int, extra: list[str], args: argparse.Namespace
) -> str:
    overrides = [
        *extra,
        f"model={library}",
        f"model.arch={arch}",
        "norm=native",
        "dataset=digits",
        f"model.input_size={args.input_size}",
        f"ensemble.n_inits={n_inits}",
        f"ensemble.eval_samples={args.eval_samples}",
        f"ensemble.batch_size={args.eval_samples}",
    ]
    t0 = time.perf_counter()
    cfg = compose_cfg("ensemble", overrides, Path(tempfile.mkdtemp()))
    x, dm = eval_inputs(cfg)
    meta = build_model(cfg.model, cfg.norm, tuple(x.shape[1:]), dm.num_classes, 0, "meta")
    n_params = sum(p.numel() for p in meta.parameters())
    batch = int(cfg.ensemble.batch_size)
    plan = EvaluationPlan(cfg.model, cfg.norm, dm.num_classes, batch, device="cpu")
    result = evaluate_ensemble(plan, x, range(n_inits))
    s = summarize(result, ensemble_spec(cfg), n_points=int(x.shape[0]), n_boot=1000)
    wall = time.perf_counter() - t0
    lo, hi = s["gamma_ci"]
    gamma = f"{s['gamma']:.3g} [{lo:.3g}, {hi:.3g}]" if math.isfinite(s["gamma"]) else "nan"
    size = f"{args.input_size}x{args.input_size}"
    head = " (fresh head)" if "model.head_init=torch_default" in extra else ""
    return (
        f"| {label}{head} | {library} `{arch}` | {n_params / 1e6:.1f} M | {size} | {n_inits} "
        f"| {gamma} | {s['regime']} | {s['f_max_mean']:.2f} | {wall:.0f} s |"
    )


def main() -> None:
    args = parse_args(__doc__, input_size=64, eval_samples=200, scale=1.0,
                      only=Opt(None, "labels to run", {"nargs": "*"}))  # fmt: skip
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(HEADER, flush=True)
    t0 = time.perf_counter()
    for label, library, arch, n, extra in ARCHITECTURES:
        if args.only and label not in args.only:
            continue
        print(measure(label, library, arch, max(2, round(n * args.scale)), extra, args), flush=True)
    print(f"# total {time.perf_counter() - t0:.0f} s, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
