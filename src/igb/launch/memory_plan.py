"""What a job needs in memory at the least, counted before anything is allocated.

A width, a dataset size or shape far beyond the machine fails minutes later as an
allocator's traceback (or the kernel kills the job). The pre-flight counts a lower bound
from the model built on the meta device and the dataset's configured size: the
parameters (with their gradients when training), the dataset's tensors, and the
activations of one batch; a job whose lower bound exceeds the memory available is
refused with the memory named, and the key that weighs most.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
from torch import nn

from igb.errors import ConfigError

#: bytes of a float32 value: parameters, activations and dataset tensors
FLOAT = 4


def available_memory() -> int | None:
    """Bytes this machine can still give (``MemAvailable``; None where unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def activation_values(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Values the leaf modules output for one sample (a forward pass on the meta device);
    0 where the model cannot run on meta (data-dependent control flow)."""
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.empty((2, *input_shape), device="meta"))
    except Exception:  # noqa: BLE001 - a lower bound: what cannot be counted counts 0
        return 0
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return total // 2


def dataset_values(dataset: Mapping[str, object], input_shape: tuple[int, ...]) -> int:
    """Input values the dataset holds in memory, as configured (0 where the size is the
    files' own: a real dataset on disk is as large as it is)."""
    samples = sum(int(dataset.get(k) or 0) for k in ("num_samples", "test_samples"))
    return samples * math.prod(input_shape)


def check_job_memory(
    model: nn.Module,
    input_shape: tuple[int, ...],
    dataset: Mapping[str, object],
    batch_size: int,
    training: bool,
    model_key: str,
    available: int | None,
) -> None:
    """Refuse a job whose lower bound of memory exceeds what this machine has available;
    ``model_key`` is the key that sets the model's size (``model.width``, ``model.cls``)."""
    if available is None:
        return
    n_params = sum(p.numel() for p in model.parameters())
    data = dataset_values(dataset, input_shape)
    batch = min(batch_size, max(data // max(math.prod(input_shape), 1), 1))
    parts = [  # what, the key that sets it, bytes
        ("parameters" + (" and gradients" if training else ""), model_key,
         n_params * FLOAT * (2 if training else 1)),
        ("dataset", "dataset.num_samples", data * FLOAT),
        (f"activations of a batch of {batch}", "dataset.batch_size",
         activation_values(model, input_shape) * batch * FLOAT),
    ]  # fmt: skip
    need = sum(b for _, _, b in parts)
    if need <= available:
        return
    key = max(parts, key=lambda part: part[2])[1]
    shown = ", ".join(f"{what} {b / 2**30:.3g} GiB" for what, _, b in parts if b)
    raise ConfigError(
        key,
        f"this job needs at least {need / 2**30:.3g} GiB ({shown}) but this machine has "
        f"{available / 2**30:.3g} GiB available: lower {key} (or the model's or the "
        "dataset's size)",
    )
