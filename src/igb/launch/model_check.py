"""A model's faults found at the pre-flight, named as the model's, before a folder exists.

Two guards. :func:`time_limit` bounds what the pre-flight spends building a model on the
meta device (an absurd depth, a user's constructor that never returns). :func:`check_run`
builds a user's or a library's model for real in a forked child and runs one batch
through it: a constructor that exits the process, raises, or hangs; logits that are not
finite at initialization, of the wrong shape or dtype; a weights file that cannot be read
are each one line, and the launcher's process is never at the mercy of the user's code.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from igb.errors import ConfigError, one_line
from igb.launch.memory_plan import available_memory, check_job_memory
from igb.nn import build_model
from igb.nn.build import model_class
from igb.nn.external import is_external

#: seconds the pre-flight gives one model to build on the meta device
BUILD_S = 60.0
#: seconds the forked child gives a model to build for real and run one batch
RUN_S = 120.0
#: samples in the batch the forked child runs (more than one: BatchNorm in training mode)
BATCH = 4


@contextmanager
def time_limit(seconds: float, key: str, message: str) -> Iterator[None]:
    """Raise ``ConfigError(key, message)`` when the block runs longer than ``seconds``
    (SIGALRM: the main thread of a POSIX process; elsewhere the block runs unbounded)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(_signum: int, _frame: object) -> None:
        raise ConfigError(key, message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def logits_problem(out: object, num_classes: int, batch: int) -> str | None:
    """What is wrong with a model's output for a batch of ``batch`` inputs, if anything."""
    if not isinstance(out, torch.Tensor):
        return f"returns a {type(out).__name__}, not a tensor of logits"
    if tuple(out.shape) != (batch, num_classes):
        return (
            f"returns logits of shape {tuple(out.shape)} for a batch of {batch}; expected "
            f"({batch}, {num_classes}): one logit per class"
        )
    if not out.dtype.is_floating_point:
        return f"returns logits of dtype {out.dtype}; expected a floating-point dtype"
    if not bool(torch.isfinite(out).all()):
        return (
            "returns non-finite logits (NaN or inf) at initialization, before any training "
            "step: a fault of the model's initialization or forward, not of optimizer.lr"
        )
    return None


def _one_batch(build: Callable[[], nn.Module], shape: tuple[int, ...], classes: int) -> str:
    """Build and run one batch (in the child); '' when the model is sound."""
    try:
        model = build()
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            out = model(torch.randn((BATCH, *shape), generator=generator))
        return logits_problem(out, classes, BATCH) or ""
    except SystemExit as exc:
        return f"exits the process (sys.exit({exc.code!r})) while being built or run"
    except ConfigError as exc:
        return f"\0{exc.key}\0{exc.message}"  # the parent raises it as it was
    except BaseException as exc:  # noqa: BLE001 - the user's code: anything at all
        return f"fails while being built or run on one batch: {type(exc).__name__}: {one_line(exc)}"


def check_run(
    build: Callable[[], nn.Module], input_shape: tuple[int, ...], num_classes: int,
    key: str, seconds: float = RUN_S,
) -> None:  # fmt: skip
    """Build the model for real and run one batch in a forked child; a ConfigError naming
    ``key`` (``model.cls=...``) with what went wrong."""
    if not hasattr(os, "fork"):
        return
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        try:
            # one thread: an intra-op pool the parent had is not usable after a fork
            torch.set_num_threads(1)
            message = _one_batch(build, input_shape, num_classes)
            os.write(write, (message or "ok").encode(errors="replace")[:4000])
        finally:
            os._exit(0)
    os.close(write)
    chunks: list[bytes] = []
    ended = False
    deadline = time.monotonic() + seconds
    try:
        while not ended and time.monotonic() < deadline:
            ready, _, _ = select.select([read], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(read, 4096) if ready else b""
            ended = bool(ready) and not chunk  # the child closed its end: it has ended
            chunks.append(chunk)
    finally:
        os.close(read)
    if not ended:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise ConfigError(key, f"{key} did not build and run one batch within {seconds:g} s")
    _, status = os.waitpid(pid, 0)
    message = b"".join(chunks).decode(errors="replace")
    if not message:
        code = os.waitstatus_to_exitcode(status)
        raise ConfigError(
            key, f"{key} ended the process (exit status {code}) while being built or run"
        )
    if message == "ok":
        return
    if message.startswith("\0"):  # a ConfigError of the build: its own key and line
        child_key, _, child_message = message[1:].partition("\0")
        raise ConfigError(child_key, child_message)
    raise ConfigError(key, f"{key} {message}")


def _model_key(model: DictConfig) -> str:
    """The key that names the model's size or code: ``model.cls``, ``model.arch`` or
    ``model.width`` (``model.depth`` for a model without a width)."""
    for name in ("cls", "arch", "width", "depth"):
        if model.get(name) is not None:
            return f"model.{name}"
    return "model"


def checked_model(cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The model on the meta device, built within :data:`BUILD_S` and within the machine's
    memory (:mod:`igb.launch.memory_plan`); a user's or a library's model is first built
    and run on one batch in a forked child (:func:`check_run`)."""
    key = _model_key(cfg.model)

    def meta() -> nn.Module:
        slow = f"{key}: building the model took more than {BUILD_S:g} s on the meta device"
        with time_limit(BUILD_S, key, f"{slow} (no memory, no values); make it smaller"):
            built = build_model(cfg.model, cfg.norm, input_shape, num_classes, seed=0,
                                device="meta")  # fmt: skip
        check_job_memory(
            built, input_shape, cfg.dataset, int(cfg.dataset.batch_size),
            training="ensemble" not in cfg, model_key=key, available=available_memory(),
        )  # fmt: skip
        return built

    def real() -> nn.Module:
        meta()  # in the child first: a constructor that exits ends the child only
        return build_model(cfg.model, cfg.norm, input_shape, num_classes, seed=0)

    if is_external(model_class(cfg.model._target_)):  # the user's or a library's code
        check_run(real, input_shape, num_classes, f"{key}={OmegaConf.select(cfg, key)}")
    return meta()
