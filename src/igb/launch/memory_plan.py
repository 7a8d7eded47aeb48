"""What a job needs in memory at the least, counted before anything is allocated.

A width, a dataset size or shape far beyond the machine fails minutes later as an
allocator's traceback (or the kernel kills the job). The pre-flight counts a lower bound
from the model built on the meta device and the dataset's configured size: the
parameters (with their gradients when training), the dataset's tensors, and the
activations of one batch; a job whose lower bound exceeds the memory available is
refused with the memory named, and the key that weighs most.
"""

from __future__ import annotations

import copy
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


#: a model up to this many bytes of parameters (and an input up to this many values) is
#: counted by a forward pass on uninitialized CPU memory (``to_empty``: no initialization is
#: drawn); a larger one on the meta device, whose kernels for linear layers run torch's
#: Python decompositions and import torch._dynamo and sympy on first use (seconds)
REAL_FORWARD_BYTES = 256 * 2**20
REAL_FORWARD_VALUES = 2**22


def activation_values(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Values the leaf modules output for one sample of ``model`` (built on the meta
    device); 0 where the model cannot run on meta (data-dependent control flow)."""
    n_bytes = sum(p.numel() for p in model.parameters()) * FLOAT
    if n_bytes <= REAL_FORWARD_BYTES and math.prod(input_shape) <= REAL_FORWARD_VALUES:
        try:  # shapes only: the values (uninitialized memory) are never read back
            return _counted_forward(_on_cpu_uninitialized(model), input_shape)
        except Exception:  # noqa: BLE001 - e.g. code that branches on the values: meta decides
            pass
    try:
        return _counted_forward(model, input_shape)
    except Exception:  # noqa: BLE001 - a lower bound: what cannot be counted counts 0
        return 0


def _on_cpu_uninitialized(model: nn.Module) -> nn.Module:
    """A copy of the meta ``model`` on uninitialized CPU memory. (``to_empty`` would do, but
    its ``empty_like`` of a meta tensor runs torch's Python reference, which imports sympy.)"""
    copied = copy.deepcopy(model)
    state = {k: torch.empty(v.shape, dtype=v.dtype) for k, v in copied.state_dict().items()}
    copied.load_state_dict(state, assign=True)
    return copied


def _counted_forward(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Values the leaf modules of ``model`` output for one sample (a batch of two, halved),
    in a forward pass on the model's own device."""
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    device = next((p.device for p in model.parameters()), torch.device("meta"))
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((2, *input_shape), device=device))
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
