"""Entropy coding of sections: integer symbols to bytes and back, with bounded decompression.

Brotli (RFC 7932) is the only coder of format version 1. The decoder always knows how many
bytes a section must expand to, so decompression stops at that bound: a crafted stream cannot
make it allocate gigabytes.
"""

from __future__ import annotations

import brotli
import numpy as np

from inrcodec.format.errors import FormatError

BROTLI = 0
CODERS = ("brotli",)  # table index -> name, as stored in the bitstream


def compress(raw: bytes, quality: int = 11) -> bytes:
    return brotli.compress(raw, quality=quality, lgwin=22)


def decompress(data: bytes, expected: int) -> bytes:
    """Brotli-decode exactly ``expected`` bytes, or raise FormatError."""
    try:
        d = brotli.Decompressor()
        out = d.process(data, output_buffer_limit=expected + 1)
        if len(out) > expected or not d.is_finished():
            raise FormatError("compressed section does not expand to its declared size")
    except brotli.error as e:
        raise FormatError(f"corrupt compressed section ({e})") from None
    if len(out) != expected:
        raise FormatError("compressed section does not expand to its declared size")
    return out


def zigzag(q: np.ndarray) -> np.ndarray:
    """Signed -> unsigned: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ... (small magnitudes stay small)."""
    q = q.astype(np.int64)
    return np.where(q >= 0, 2 * q, -2 * q - 1).astype(np.uint64)


def unzigzag(u: np.ndarray) -> np.ndarray:
    u = u.astype(np.int64)
    return np.where(u % 2 == 0, u // 2, -(u + 1) // 2)


def symbol_width(u: np.ndarray) -> int:
    """Bytes per symbol (1, 2 or 4) that hold every value of ``u``."""
    top = int(u.max()) if u.size else 0
    return 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4


def pack(u: np.ndarray, width: int) -> bytes:
    return u.astype({1: "<u1", 2: "<u2", 4: "<u4"}[width]).tobytes()


def unpack(raw: bytes, width: int, count: int) -> np.ndarray:
    if width not in (1, 2, 4) or len(raw) != width * count:
        raise FormatError("symbol block has the wrong size")
    return np.frombuffer(raw, dtype={1: "<u1", 2: "<u2", 4: "<u4"}[width], count=count).astype(np.int64)
