"""The framing of a W&B transaction log (``run-<id>.wandb``): header and LevelDB-log chunks.

A 7-byte header (``b":W&B"``, magic ``0xBEE1`` as uint16 LE, version 0), then 32 KiB blocks
of chunks ``crc32: uint32 LE, length: uint16 LE, type: uint8`` + payload; the CRC is the
plain CRC-32/IEEE of the type byte and the payload (see :mod:`multirun_analysis.wandb_files`
for the whole format and what is read from the records).
"""

from __future__ import annotations

import struct
import zlib

HEADER_IDENT = b":W&B"
HEADER_MAGIC = 0xBEE1
HEADER_VERSION = 0
HEADER = HEADER_IDENT + struct.pack("<HB", HEADER_MAGIC, HEADER_VERSION)
BLOCK_SIZE = 32 * 1024
CHUNK_HEADER_SIZE = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_CHUNK = struct.Struct("<IHB")


def check_header(data: bytes, name: str) -> bool:
    """True when the header is complete and valid; False when the file is a prefix of one."""
    if len(data) < len(HEADER):
        if HEADER.startswith(data):
            return False
        raise ValueError(f"{name}: offset 0: not a W&B transaction log (header {data!r})")
    if data[:4] != HEADER_IDENT:
        raise ValueError(f"{name}: offset 0: not a W&B transaction log (ident {data[:4]!r})")
    (magic,) = struct.unpack_from("<H", data, 4)
    if magic != HEADER_MAGIC:
        raise ValueError(f"{name}: offset 4: bad W&B magic 0x{magic:04X} (want 0xBEE1)")
    if data[6] != HEADER_VERSION:
        raise ValueError(f"{name}: offset 6: unsupported W&B log version {data[6]}")
    return True


def scan(data: bytes, name: str) -> tuple[list[tuple[int, bytes]], int | None]:
    """Split a transaction log into records.

    Returns ``([(offset, payload), ...], tail)`` where ``tail`` is None when the data ends on
    a record boundary, else the offset where an incomplete record starts. Raises ValueError
    on corruption.
    """
    if not check_header(data, name):
        return [], 0
    records: list[tuple[int, bytes]] = []
    n = len(data)
    pos = len(HEADER)
    pending: list[bytes] | None = None
    pending_at = 0
    while True:
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < CHUNK_HEADER_SIZE:  # block trailer (zero padding)
            pos += left_in_block
            continue
        if pos >= n:
            return records, (pending_at if pending is not None else None)
        if pos + CHUNK_HEADER_SIZE > n:
            return records, (pending_at if pending is not None else pos)
        crc, length, ctype = _CHUNK.unpack_from(data, pos)
        if crc == 0 and length == 0 and ctype == 0:
            # zeroed space (preallocated / never written): allowed only between records
            block_end = min(n, pos + left_in_block)
            if pending is not None or any(data[pos:block_end]):
                raise ValueError(f"{name}: offset {pos}: zero chunk header inside data")
            pos = block_end
            continue
        end = pos + CHUNK_HEADER_SIZE + length
        if length > left_in_block - CHUNK_HEADER_SIZE:
            raise ValueError(
                f"{name}: offset {pos}: chunk length {length} runs past its 32 KiB block"
            )
        if ctype not in (FULL, FIRST, MIDDLE, LAST):
            raise ValueError(f"{name}: offset {pos}: unknown chunk type {ctype}")
        if end > n:
            return records, (pending_at if pending is not None else pos)
        payload = data[pos + CHUNK_HEADER_SIZE : end]
        actual = zlib.crc32(payload, zlib.crc32(bytes((ctype,))))
        if actual != crc:
            raise ValueError(
                f"{name}: offset {pos}: checksum mismatch (stored 0x{crc:08x}, "
                f"computed 0x{actual:08x}); the file is corrupt"
            )
        if ctype in (FULL, FIRST):
            if pending is not None:
                raise ValueError(
                    f"{name}: offset {pos}: new record starts before the record at "
                    f"offset {pending_at} ended"
                )
            if ctype == FULL:
                records.append((pos, payload))
            else:
                pending, pending_at = [payload], pos
        else:
            if pending is None:
                kind = "middle" if ctype == MIDDLE else "last"
                raise ValueError(f"{name}: offset {pos}: {kind} chunk without a first chunk")
            pending.append(payload)
            if ctype == LAST:
                records.append((pending_at, b"".join(pending)))
                pending = None
        pos = end
