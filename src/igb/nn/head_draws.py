"""The head of ``build_model(..., seed)`` without the rest of the initialization.

An architecture draws its head after (part of) its backbone, from one generator seeded
with ``seed``. The CPU generator's consumption depends only on the sequence of draws
(kind, element count, dtype), never on the values or on the modules, so one whole
build, recorded op by op below autograd (:class:`_Recorder`), says once for every seed:

- how many 32-bit words the draws before the head's first draw take (``uniform_`` one
  or two per element, ``normal_`` as torch's CPU kernels: Box-Muller over blocks of 16,
  or one double pair per two elements with the second cached); the generator is then
  jumped there (:mod:`igb.nn.mt19937`) instead of drawing them;
- the head's own ops from there on (its draws, and in-place ops such as the ``erfinv_``
  / ``mul_`` of a truncated normal), replayed on fresh tensors, with the draws of other
  tensors in between replayed on scratch tensors.

Whatever the record cannot vouch for (a draw it does not model before the head, a head
computed from other tensors, a device other than the CPU, a pending cached normal
sample, a replay that differs from the recorded build) makes :func:`head_replay` return
the reason instead, and the caller replays whole initializations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from igb.nn import mt19937

aten = torch.ops.aten
_UNIFORM, _NORMAL = aten.uniform_.default, aten.normal_.default
_NARROW = (torch.float32, torch.float16, torch.bfloat16)  # one word a uniform sample
_CPU = torch.device("cpu")


@dataclass
class _Op:
    func: Any
    args: tuple
    kwargs: dict
    out: Any
    state: Tensor | None  # the generator's state before the op, where the op draws


class _Recorder(TorchDispatchMode):
    """Every op run under it, with the CPU generator's state before each one that draws
    (its tensors stay referenced, so no storage address is reused while recording)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[_Op] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        before = torch.default_generator.get_state()
        out = func(*args, **kwargs)
        drew = not torch.equal(before, torch.default_generator.get_state())
        self.ops.append(_Op(func, args, kwargs, out, before if drew else None))
        return out


def _tensors(tree: Any) -> list[Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, Tensor)]


def _written(op: _Op) -> list[Tensor]:
    """The tensors ``op`` writes: its mutated arguments, else its fresh outputs."""
    schema = op.func._schema
    mutated = [
        value
        for arg, value in zip(schema.arguments, op.args, strict=False)
        if arg.alias_info is not None and arg.alias_info.is_write
    ]
    mutated += [
        op.kwargs[arg.name]
        for arg in schema.arguments
        if arg.name in op.kwargs and arg.alias_info is not None and arg.alias_info.is_write
    ]
    if mutated:
        return _tensors(mutated)
    if any(ret.alias_info is not None for ret in schema.returns):
        return []  # a view
    return _tensors(op.out)


def _key(t: Tensor) -> tuple[int, int, tuple[int, ...], tuple[int, ...]]:
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())


def _words(op: _Op, cached: bool) -> tuple[int, bool] | None:
    """(32-bit words ``op`` draws, whether a normal sample is cached after it), or None
    where its consumption is not modelled (torch's CPU kernels, DistributionTemplates)."""
    if op.func not in (_UNIFORM, _NORMAL) or not isinstance(op.args[0], Tensor):
        return None
    t = op.args[0]
    width = 1 if t.dtype in _NARROW else 2 if t.dtype == torch.float64 else 0
    n = t.numel()
    if op.func is _UNIFORM:
        return (n * width, cached) if width else None
    if t.dtype not in (torch.float32, torch.float64):
        return None
    if n >= 16 and t.is_contiguous():  # uniforms into the output, Box-Muller per 16
        return (n + (16 if n % 16 else 0)) * width, cached
    if n == 0:
        return 0, cached
    fresh = n - 1 if cached else n  # double pairs, the second sample cached for the next
    return 4 * ((fresh + 1) // 2), fresh % 2 == 1


@dataclass
class Step:
    """One op of the head's replay. ``target``: the head tensor it makes or writes, or
    None for a draw of another tensor, made on a scratch tensor of layout ``like``.
    ``args`` leave out the tensor written (no recorded tensor is kept)."""

    func: Any
    args: tuple
    kwargs: dict
    target: str | None
    like: tuple[tuple[int, ...], tuple[int, ...], torch.dtype] | None  # an allocation's
    creates: bool

    def _empty(self) -> Tensor:
        shape, stride, dtype = self.like
        return torch.empty_strided(shape, stride, dtype=dtype)

    def run(self, tensors: dict[str, Tensor]) -> None:
        if self.creates:
            out = self.func(*self.args, **self.kwargs) if self.like is None else self._empty()
            if self.target is not None:
                tensors[self.target] = out
            return
        target = self._empty() if self.target is None else tensors[self.target]
        self.func(target, *self.args, **self.kwargs)


@dataclass
class HeadReplay:
    """The head of ``build_model(..., seed)`` for many seeds, one generator jump each."""

    words: int  # drawn before the head's first draw
    template: Tensor  # the generator's state there, for the recorded seed
    steps: list[Step]
    names: tuple[str, ...]

    @torch.no_grad()
    def __call__(self, seeds: Sequence[int]) -> list[dict[str, Tensor]]:
        out = []
        states = mt19937.skipped_states([int(s) for s in seeds], self.words, self.template)
        with torch.random.fork_rng(devices=[]):
            for state in states:
                torch.default_generator.set_state(state)
                tensors: dict[str, Tensor] = {}
                for step in self.steps:
                    step.run(tensors)
                out.append({name: tensors[name] for name in self.names})
        return out


def _record(build: Callable[[], Mapping[str, Tensor]]) -> tuple[list[_Op], dict[str, Tensor]]:
    with _Recorder() as recorder:
        state = dict(build())
    return recorder.ops, state


def head_replay(
    build: Callable[[int], Mapping[str, Tensor]], head: frozenset[str], seed: int,
) -> tuple[HeadReplay | str, dict[str, Tensor]]:  # fmt: skip
    """(the replay, or why there is none; ``build(seed)``'s state, recorded meanwhile).

    ``build(seed)``: the whole model's parameters and buffers (``build_model``'s)."""
    ops, state = _record(lambda: build(seed))
    heads = {name: state[name] for name in sorted(head)}
    replay = _plan(ops, heads)
    if isinstance(replay, str):
        return replay, state
    (again,) = replay([seed])
    if not all(torch.equal(again[k], v) for k, v in heads.items()):
        return "the replayed head differs from the whole model's", state
    return replay, state


def _plan(ops: list[_Op], heads: dict[str, Tensor]) -> HeadReplay | str:
    devices = {t.device for t in heads.values()}
    if devices != {_CPU}:
        return f"the head is on {', '.join(sorted(map(str, devices)))}, not the CPU"
    owner = {_key(t): name for name, t in heads.items()}
    storages = {k[0]: name for k, name in owner.items()}
    touches: list[tuple[int, str]] = []  # (op index, head name) of the ops writing a head
    for i, op in enumerate(ops):
        for t in _written(op):
            if t.device == _CPU and t.untyped_storage().data_ptr() in storages:
                name = owner.get(_key(t))
                if name is None:
                    return f"{op.func} writes part of the head tensor {storages[_key(t)[0]]}"
                touches.append((i, name))
    if {name for _, name in touches} != set(heads):
        missing = sorted(set(heads) - {name for _, name in touches})
        return f"the head tensor {missing[0]} is not written by any recorded op"
    drawing = [i for i, _ in touches if ops[i].state is not None]
    first = drawing[0] if drawing else len(ops)
    last = touches[-1][0]
    words, cached = 0, False
    for op in ops[:first]:
        if op.state is not None:
            counted = _words(op, cached)
            if counted is None:
                return f"{op.func} draws before the head (its consumption is not modelled)"
            words, cached = words + counted[0], counted[1]
    template = ops[first].state if drawing else torch.Generator().get_state()
    if cached or mt19937.normal_cached(template):
        return "a cached normal sample is pending at the head's first draw"
    if drawing and mt19937.position(template) != mt19937.position_after(words):
        return "the generator's position at the head is not the modelled one"
    target = dict(touches)
    steps = []
    for i, op in enumerate(ops[: last + 1]):
        name = target.get(i)
        if name is None and (i < first or op.state is None):
            continue
        step = _step(op, name)
        if isinstance(step, str):
            return step
        steps.append(step)
    return HeadReplay(words, template, steps, tuple(heads))


def _step(op: _Op, name: str | None) -> Step | str:
    written = _written(op)
    if len(written) != 1:
        return f"{op.func} writes {len(written)} tensors"
    (t,) = written
    if any(t is a for a in _tensors(op.kwargs)):
        return f"{op.func} writes through out="
    creates = not (op.args and op.args[0] is t)
    allocates = op.func._schema.name.startswith("aten::empty")
    if _tensors((op.args if creates else op.args[1:], op.kwargs)) and not allocates:
        return f"{op.func} computes the head (or a draw beside it) from other tensors"
    layout = (tuple(t.shape), t.stride(), t.dtype)
    like = layout if allocates or (name is None and not creates) else None
    args = () if allocates else op.args if creates else op.args[1:]
    return Step(op.func, args, op.kwargs, name, like, creates)
