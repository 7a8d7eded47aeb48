"""GPU figures, measured in one run on one CUDA device.

Sections (``--sections``, all by default):

- ``rate``: the device's fp32 matmul rate (8192^3, TF32 off, as the ensembles run) and
  the TF32 / bf16 rates for reference;
- ``ensemble``: the benchmark MLP (depth 10, width 100, BatchNorm post, 10 classes, 2000
  points) at 1000 and 10 000 initializations through ``vmap`` and the ``loop``, a CNN
  ensemble of 1000 and a depth-20 ensemble; evaluation time (``eval_time_s``) with its
  split into initialising and evaluating, and the achieved share of the matmul rate;
- ``process``: whole ``python ensemble.py ... ensemble.n_inits=10000`` processes;
- ``train``: the CNN, ResNet and ViT on CIFAR-10-format files (generated) with
  ``trainer=gpu`` in fp32 and bf16-mixed: the epoch time of the real ``python train.py``
  run (difference of a 2- and a 4-epoch process, so start-up cancels) against a
  hand-written CUDA loop on the same model, data, batch size and optimizer.

    python bench/bench_gpu.py [--sections rate ensemble process train] [--quick]
"""

from __future__ import annotations

import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_ensemble import BENCH  # bench/ is the script's folder: on sys.path
from common import Opt, compose_cfg, eval_inputs, parse_args  # bench/: on sys.path
from omegaconf import DictConfig, OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from igb.ensemble import EvaluationPlan, evaluate_ensemble
from igb.metrics.measure import predict_logits
from igb.nn import build_model

ROOT = Path(__file__).resolve().parents[1]

#: the reference benchmark configuration (ensemble.py overrides), as bench_ensemble.py runs it
MLP_BENCH = BENCH
CNN_BENCH = [
    "model=cnn",
    "norm=post",
    "norm.kind=batch",
    "dataset=gaussian_blobs",
    "dataset.num_classes=10",
    "dataset.num_samples=1000",
    "dataset.shape=[3,32,32]",
    "dataset.val_fraction=0.0",
    "dataset.test_fraction=0.0",
    "ensemble.eval_split=train",
    "ensemble.eval_samples=1000",
    "ensemble.progress=false",
]


def sync() -> None:
    torch.cuda.synchronize()


def gemm_rate(dtype: torch.dtype, n: int = 8192, tf32: bool = False) -> float:
    """Best TFLOP/s of an n^3 product over 5 bursts of 10 (CUDA-synchronised wall time)."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    sync()
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        sync()
        best = max(best, 2 * n**3 * 10 / (time.perf_counter() - t) / 1e12)
    torch.backends.cuda.matmul.allow_tf32 = False
    return best


def section_rate() -> float:
    fp32 = gemm_rate(torch.float32)
    print(f"fp32 matmul (TF32 off) 8192^3: {fp32:.1f} TFLOP/s")
    print(f"fp32 matmul with TF32  8192^3: {gemm_rate(torch.float32, tf32=True):.1f} TFLOP/s")
    print(f"bf16 matmul            8192^3: {gemm_rate(torch.bfloat16):.1f} TFLOP/s", flush=True)
    return fp32


def forward_flops(cfg: DictConfig, x: torch.Tensor, num_classes: int) -> int:
    model = build_model(cfg.model, cfg.norm, tuple(x.shape[1:]), num_classes, seed=0)
    counter = FlopCounterMode(display=False)
    with counter:
        predict_logits(model, x.cpu(), int(cfg.ensemble.batch_size))
    return int(counter.get_total_flops())


def init_only_ms(cfg: DictConfig, x: torch.Tensor, num_classes: int, n: int = 200) -> float:
    """Per-initialization cost of seeding + initialising one model on the GPU."""
    from igb.nn.init import initialize

    model = build_model(cfg.model, cfg.norm, tuple(x.shape[1:]), num_classes, seed=0)
    model = model.cuda()
    scheme = cfg.model.get("init", "kaiming_normal")
    sync()
    t = time.perf_counter()
    for s in range(n):
        torch.manual_seed(s)
        initialize(model, scheme)
    sync()
    return 1e3 * (time.perf_counter() - t) / n


def ensemble(cfg: DictConfig, x, n_cls: int, n: int, method: str) -> tuple[float, object]:
    plan = EvaluationPlan(
        cfg.model, cfg.norm, n_cls, int(cfg.ensemble.batch_size), device="cuda", method=method
    )
    r = evaluate_ensemble(plan, x, range(n))
    return r.eval_time_s, r


def section_ensemble(ref_tflops: float, quick: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("MLP d10 w100 BN-post", MLP_BENCH, [1000, 10000]),
            ("MLP d20 w100 BN-post", [*MLP_BENCH, "model.depth=20"], [1000]),
            ("MLP d10 w100 BN-pre", [*MLP_BENCH, "norm=pre"], [1000]),
            ("CNN d4 w32 BN-post 32x32", CNN_BENCH, [1000]),
        ]
        for name, overrides, sizes in cases:
            cfg = compose_cfg("ensemble", [*overrides, "ensemble.device=cuda"], Path(tmp))
            x, dm = eval_inputs(cfg)
            n_cls = dm.num_classes
            flops = forward_flops(cfg, x, n_cls)
            ensemble(cfg, x, n_cls, 64, "vmap")  # warm-up: CUDA context, kernels, allocator
            ensemble(cfg, x, n_cls, 16, "loop")
            init_ms = init_only_ms(cfg, x, n_cls)
            print(f"\n{name}: {x.shape[0]} points x {tuple(x.shape[1:])}, {n_cls} classes, "
                  f"{flops / 1e6:.1f} MFLOP per init; seeding+initialize alone "
                  f"{init_ms:.3f} ms/init", flush=True)  # fmt: skip
            gammas = {}
            for n in sizes if not quick else sizes[:1]:
                for method in ("vmap", "loop"):
                    if method == "loop" and n > 1000 and quick:
                        continue
                    wall, r = ensemble(cfg, x, n_cls, n, method)
                    rate = flops * n / wall / 1e12
                    evaluating = max(1e-9, wall - n * init_ms / 1e3)
                    eval_rate = flops * n / evaluating / 1e12
                    gammas[(n, method)] = r.gamma
                    print(
                        f"  {method:4s} n={n:6d}: {wall:7.3f} s = {1e3 * wall / n:.3f} ms/init, "
                        f"{rate:6.2f} TFLOP/s = {100 * rate / ref_tflops:5.1f}% of fp32 matmul; "
                        f"without the initialising: {evaluating:.3f} s, {eval_rate:.2f} TFLOP/s "
                        f"= {100 * eval_rate / ref_tflops:.1f}%; chunk {r.chunk_size}, "
                        f"gamma {r.gamma:.4g}",
                        flush=True,
                    )
            for n in sizes:
                if (n, "vmap") in gammas and (n, "loop") in gammas:
                    a, b = gammas[(n, "vmap")], gammas[(n, "loop")]
                    print(f"  vmap vs loop gamma at n={n}: {a:.6g} vs {b:.6g}")


def section_process(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "IGB_ROOT": tmp, "WANDB_MODE": "disabled"}
        for method in ("vmap", "loop", "auto"):
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, str(ROOT / "ensemble.py"), *MLP_BENCH,
                 f"ensemble.n_inits={n}", f"ensemble.method={method}", "ensemble.device=cuda",
                 f"hydra.run.dir={tmp}/{method}"],
                cwd=tmp, env=env, capture_output=True, text=True,
            )  # fmt: skip
            wall = time.perf_counter() - t
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-2:]
            print(f"process `python ensemble.py` n_inits={n} method={method}: {wall:.2f} s "
                  f"(rc {proc.returncode}) {tail}", flush=True)  # fmt: skip


# -- training ------------------------------------------------------------------------------
def write_cifar10(root: Path, n_train: int, n_test: int) -> None:
    """CIFAR-10 python-pickle files (the on-disk format torchvision reads), random pixels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    per = n_train // 5
    for b in range(5):
        labels = rng.integers(0, 10, per).tolist()
        data = rng.integers(0, 256, (per, 3072), dtype=np.uint8)
        with open(folder / f"data_batch_{b + 1}", "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f, protocol=2)
    data = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": data, "labels": rng.integers(0, 10, n_test).tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)


TRAIN_MODELS = {
    "cnn": ["model=cnn", "model.width=64"],
    "resnet": ["model=resnet", "model.width=64"],
    "vit": ["model=vit", "model.width=192", "model.depth=6", "model.heads=6"],
}


def train_overrides(model: str, data_dir: Path, precision: str, epochs: int) -> list[str]:
    return [
        *TRAIN_MODELS[model],
        "norm=post",
        "dataset=cifar10",
        f"dataset.data_dir={data_dir}",
        "dataset.verify=false",
        "dataset.batch_size=128",
        "trainer=gpu",
        f"trainer.precision={precision}",
        f"trainer.max_epochs={epochs}",
        "logger=csv",
        "callbacks.progress=null",
    ]


def process_time(overrides: list[str], tmp: Path, tag: str) -> float:
    env = {**os.environ, "IGB_ROOT": str(tmp), "WANDB_MODE": "disabled"}
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={tmp / tag}"],
        cwd=tmp, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        print(f"  train.py failed ({tag}): {(proc.stdout + proc.stderr)[-1500:]}")
        return float("nan")
    return time.perf_counter() - t


def hand_epoch_s(cfg: DictConfig, epochs: int, precision: str) -> float:
    """Median epoch of a hand-written CUDA loop: batches moved with non_blocking copies
    from pinned memory, the same model, optimizer and batch size as the igb run."""
    from hydra.utils import get_class

    from igb.data.instantiate import instantiate_datamodule

    dm = instantiate_datamodule(cfg.dataset)
    dm.setup("fit")
    x, y = dm.split_tensors("train")
    x, y = x.pin_memory(), y.pin_memory()
    model = build_model(cfg.model, cfg.norm, dm.input_shape, dm.num_classes, seed=0).cuda()
    opt_cfg = OmegaConf.to_container(cfg.optimizer, resolve=True)
    kwargs = {k: v for k, v in opt_cfg.items() if k in ("lr", "momentum", "nesterov",
                                                          "weight_decay")}  # fmt: skip
    opt = get_class(opt_cfg["_target_"])(model.parameters(), **kwargs)
    bs = int(cfg.dataset.batch_size)
    autocast = precision.startswith("bf16")
    times = []
    model.train()
    for epoch in range(epochs):
        sync()
        t = time.perf_counter()
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(epoch))
        for i in range(0, x.shape[0], bs):
            idx = perm[i : i + bs]
            if idx.numel() < 2:
                continue
            xb = x[idx].pin_memory().cuda(non_blocking=True)
            yb = y[idx].pin_memory().cuda(non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def section_train(n_train: int, quick: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        write_cifar10(tmp / "data", n_train, 1000)
        steps = n_train * 9 // 10 // 128
        print(f"\ntraining: CIFAR-10-format files, {n_train} images ({steps} steps of 128 an "
              f"epoch), SGD, norm=post BatchNorm / LayerNorm (ViT)", flush=True)  # fmt: skip
        for model in TRAIN_MODELS:
            for precision in ("32-true", "bf16-mixed") if not quick else ("32-true",):
                ov = train_overrides(model, tmp / "data", precision, 2)
                cfg = compose_cfg("train", ov, tmp / "cfg")
                hand = hand_epoch_s(cfg, 4, precision)
                t2 = process_time(ov, tmp, f"{model}{precision}e2")
                t4 = process_time(
                    train_overrides(model, tmp / "data", precision, 4), tmp, f"{model}{precision}e4"
                )
                epoch = (t4 - t2) / 2
                print(
                    f"  {model:6s} {precision:10s}: hand-written {1e3 * hand:7.1f} ms/epoch "
                    f"({1e3 * hand / steps:.2f} ms/step); train.py {1e3 * epoch:7.1f} ms/epoch "
                    f"(processes of 2 and 4 epochs: {t2:.1f} s, {t4:.1f} s); ratio "
                    f"{epoch / hand:.2f}x",
                    flush=True,
                )


def main() -> None:
    args = parse_args(__doc__, sections=["rate", "ensemble", "process", "train"],
                      quick=Opt(False, "fewer cases (a smoke run)"), process_inits=10000,
                      train_images=12800)  # fmt: skip
    if not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device visible to torch; nothing measured")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, {sms} SMs", flush=True)
    ref = section_rate() if "rate" in args.sections else gemm_rate(torch.float32)
    if "ensemble" in args.sections:
        section_ensemble(ref, args.quick)
    if "process" in args.sections:
        section_process(args.process_inits)
    if "train" in args.sections:
        section_train(args.train_images, args.quick)


if __name__ == "__main__":
    main()
