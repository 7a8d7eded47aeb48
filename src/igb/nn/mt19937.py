"""Jump torch's CPU generator ahead: the state after ``torch.manual_seed(seed)`` and ``n``
32-bit draws, without drawing them.

The CPU generator is an MT19937, an F2-linear recurrence on a 19937-bit state: ``T^J``
equals ``p(T)`` with ``p = x^J mod phi`` (``phi`` its characteristic polynomial, found
once by Berlekamp-Massey on its own output). ``p(T) s`` is a Horner scheme over
``q``-bit chunks of ``p`` with a per-seed table of the ``2^q`` sums of the first states,
in two levels so that every numpy call works on many chunks and many seeds at once: a
few hundred numpy calls per batch instead of generating millions of numbers per seed.

torch's state (``Generator.get_state``) holds the 624 words of the current block, the
read position in it, and the normal samples cached by Box-Muller: the jump sets the
first two and copies the rest from a state of the same position (a template).
Short skips are drawn: the jump costs about as much as drawing half a million words.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

N = 624  # words of a block
_M = 397  # the recurrence's middle tap
_DEGREE = 19937  # bits of the state
_MATRIX_A = np.uint32(0x9908B0DF)
_UPPER, _LOWER = np.uint32(0x80000000), np.uint32(0x7FFFFFFF)
_Q, _K = 8, 64  # Horner chunk bits (even: the XORs read 64-bit views); chunks per inner block
# Generator.get_state's byte layout (CPUGeneratorImplState)
_SEED, _LEFT, _NEXT, _WORDS = slice(0, 8), slice(8, 12), slice(16, 24), slice(24, 24 + 8 * N)
_NORMAL_VALID = (5040, 5052)  # the cached double and float normal samples' flags
#: below this many words, drawing them is cheaper than the jump
DRAW_BELOW = 1 << 19


def extend(x: np.ndarray, start: int, stop: int) -> None:
    """Fill ``x[..., start:stop]`` (``start >= N``) by the recurrence on the words before."""
    k = start - N
    while k + N < stop:
        c = min(N - _M, stop - (k + N))
        out = x[..., k + N : k + N + c]
        low = x[..., k + 1 : k + 1 + c]
        np.bitwise_and(low, 1, out=out)
        np.multiply(out, _MATRIX_A, out=out)
        np.bitwise_xor(out, x[..., k + _M : k + _M + c], out=out)
        y = np.bitwise_and(low, _LOWER)
        y |= x[..., k : k + c] & _UPPER
        y >>= 1
        out ^= y
        k += c


def seeded_words(seeds: Sequence[int]) -> np.ndarray:
    """The 624 words after ``manual_seed(seed)``, one row a seed (torch's own seeding)."""
    out = np.empty((len(seeds), N), np.uint32)
    g = torch.Generator()
    for row, seed in zip(out, seeds, strict=True):
        row[:] = g.manual_seed(seed).get_state().numpy()[_WORDS].view(np.uint64)
    return out


@functools.cache
def _charpoly() -> tuple[int, ...]:
    """The exponents of phi below 19937 (Berlekamp-Massey on one bit of the words)."""
    x = np.zeros((1, 2 * _DEGREE + 1), np.uint32)
    x[:, :N] = seeded_words([5489])
    extend(x, N, x.shape[1])
    conn, b, length, m, recent = 1, 1, 0, 1, 0
    for n, bit in enumerate((x[0, 1:] & 1).tolist()):
        recent = (recent << 1) | bit
        if (conn & recent).bit_count() & 1:
            conn, b_next = conn ^ (b << m), conn
            if 2 * length <= n:
                length, b, m = n + 1 - length, b_next, 1
                continue
        m += 1
    assert length == _DEGREE, length
    return tuple(length - i for i in range(length + 1) if (conn >> i) & 1 and i > 0)


_SPREAD = np.array([int(f"{b:08b}".replace("", "0")[:-1], 2) for b in range(256)], "<u2")


def _square(a: int) -> int:
    """``a(x)^2`` over GF(2): every bit moves to twice its position."""
    raw = np.frombuffer(a.to_bytes((a.bit_length() + 7) // 8 or 1, "little"), np.uint8)
    return int.from_bytes(_SPREAD[raw].tobytes(), "little")


def _reduce(a: int) -> int:
    terms, mask = _charpoly(), (1 << _DEGREE) - 1
    while a.bit_length() > _DEGREE:
        high, a = a >> _DEGREE, a & mask
        for e in terms:
            a ^= high << e
    return a


@functools.lru_cache(maxsize=8)
def _jump_chunks(steps: int) -> np.ndarray:
    """``x^steps mod phi`` as (outer blocks, ``_K``) chunks of ``_Q`` bits."""
    p = 1
    for bit in bin(steps)[2:]:
        p = _reduce(_square(p))
        if bit == "1":
            p = _reduce(p << 1)
    g = -(-_DEGREE // (_Q * _K)) * _K
    return np.array([(p >> (_Q * i)) & ((1 << _Q) - 1) for i in range(g)]).reshape(-1, _K)


def _jump(words: np.ndarray, steps: int) -> np.ndarray:
    """The words ``steps + 1 ..`` ``steps + N`` of the sequences that start with ``words``.

    Arrays put the seeds inside the chunk axis, so a chunk's table entries for every seed
    are one contiguous block; the XORs run on 64-bit views in torch."""
    chunks = _jump_chunks(steps)
    blocks, seeds = chunks.shape[0], words.shape[0]
    x = np.zeros((seeds, N + _Q), np.uint32)
    x[:, :N] = words
    extend(x, N, N + _Q)
    table = np.zeros((1 << _Q, seeds, N), np.uint32)  # table[c]: the sum of c's shifts
    for bit in range(_Q):
        np.bitwise_xor(table[: 1 << bit], x[:, bit : bit + N], out=table[1 << bit : 2 << bit])
    table64 = torch.from_numpy(table.view(np.int64))
    index = torch.from_numpy(chunks)
    inner = np.zeros((blocks, seeds, N + _K * _Q), np.uint32)  # every outer block at once
    inner[:, :, :N] = table[chunks[:, -1]]
    inner64 = torch.from_numpy(inner.view(np.int64))
    picked = torch.empty((blocks, seeds, N // 2), dtype=torch.int64)
    pos = 0
    for j in range(_K - 2, -1, -1):
        extend(inner, pos + N, pos + N + _Q)
        pos += _Q
        torch.index_select(table64, 0, index[:, j], out=picked)
        inner64[:, :, pos // 2 : (pos + N) // 2].bitwise_xor_(picked)
    parts = inner[:, :, pos : pos + N]
    stride = _Q * _K
    outer = np.zeros((seeds, N + (blocks - 1) * stride + 1), np.uint32)
    outer[:, :N] = parts[-1]
    pos = 0
    for h in range(blocks - 2, -1, -1):
        extend(outer, pos + N, pos + N + stride)
        pos += stride
        outer[:, pos : pos + N] ^= parts[h]
    extend(outer, pos + N, pos + N + 1)
    return outer[:, pos + 1 : pos + 1 + N]


def _drawn(seed: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    torch.empty(n).uniform_(generator=g)  # one word a float32 sample
    return g.get_state()


def skipped_states(seeds: Sequence[int], n: int, template: torch.Tensor) -> list[torch.Tensor]:
    """``get_state()`` after ``manual_seed(seed)`` and ``n`` 32-bit draws, for each seed.

    ``template``: a state after the same draws from another seed, whose read position and
    (absent) cached normal samples are copied; see :func:`position`."""
    if n < DRAW_BELOW:
        return [_drawn(s, n) for s in seeds]
    block = -(-n // N)  # torch twists a whole block when it needs a word past the last one
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small XORs: OpenMP's barriers would cost more than they do
    try:
        words = _jump(seeded_words(seeds), N * block - 1)
    finally:
        torch.set_num_threads(threads)
    out = []
    for seed, row in zip(seeds, words, strict=True):
        state = template.clone()
        raw = state.numpy()
        raw[_SEED] = np.array([seed], np.uint64).view(np.uint8)
        raw[_WORDS] = row.astype(np.uint64).view(np.uint8)
        out.append(state)
    return out


def position(state: torch.Tensor) -> tuple[int, int]:
    """(words read in the current block, ``left``) of a ``get_state()``."""
    raw = state.numpy()
    return int(raw[_NEXT].view(np.uint64)[0]), int(raw[_LEFT].view(np.int32)[0])


def position_after(n: int) -> tuple[int, int]:
    """:func:`position` after ``manual_seed`` and ``n`` words."""
    if n == 0:
        return 0, 1
    read = n - N * (-(-n // N) - 1)
    return read, N + 1 - read


def normal_cached(state: torch.Tensor) -> bool:
    """Whether Box-Muller left a normal sample for the next draw (its value is seed's)."""
    return any(bool(state[i]) for i in _NORMAL_VALID)
