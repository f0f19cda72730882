"""Entropy coding of sections: integer symbols to bytes and back, chosen by name.

- ``brotli`` (RFC 7932), every version: a general-purpose compressor over packed symbols. The
  decoder always knows how many bytes a section must expand to, so decompression stops at that
  bound: a crafted stream cannot make it allocate gigabytes.
- ``range`` (version 4): a range coder (the ``constriction`` library's) under a quantized
  Laplace model whose four integers the section stores (:class:`Laplace`). Both sides build the
  model's table from those integers with the same IEEE double operations in the same order
  (additions, multiplications and one division; no exp or pow, whose last bits vary between
  math libraries), so encoder and decoder agree on every probability on every machine.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import brotli
import numpy as np

from inrcodec.format.errors import FormatError

BROTLI = 0
RANGE = 1  # v4
CODERS = ("brotli", "range")  # table index -> name, as stored in the bitstream

PRECISION = 24  # bits of the model's fixed-point probabilities
MAX_ALPHABET = 1 << 16  # symbols between a model's lowest and highest
DECAY_ONE = 1 << 16  # a model's decay is stored as a fraction of this


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


# --- the range coder and its model (v4) -----------------------------------------------------------

LAPLACE = struct.Struct("<iiiH")  # lowest symbol, highest symbol, centre, decay


@dataclass(frozen=True)
class Laplace:
    """A quantized Laplace over the integers ``lo..hi``: P(k) falls by the factor
    ``decay / 65536`` per step away from ``centre``, every symbol of the range keeps a nonzero
    probability, and the table sums to exactly 2^PRECISION."""

    lo: int
    hi: int
    centre: int
    decay: int  # 1..65535

    def check(self) -> None:
        if not (self.lo <= self.centre <= self.hi and self.hi - self.lo < MAX_ALPHABET and 0 < self.decay < DECAY_ONE):
            raise FormatError("range coder model out of range")

    def frequencies(self) -> list[int]:
        """The integer frequencies of ``lo..hi``, summing to 2^PRECISION (the decoder's table)."""
        self.check()
        n = self.hi - self.lo + 1
        ratio = self.decay / DECAY_ONE  # exact: a 16-bit integer over a power of two
        far = max(self.centre - self.lo, self.hi - self.centre)
        weight = [1.0] * (far + 1)  # weight[d]: ratio^d by repeated multiplication
        for d in range(1, far + 1):
            weight[d] = weight[d - 1] * ratio
        ws = [weight[abs(k - self.centre)] for k in range(self.lo, self.hi + 1)]
        total = 0.0
        for w in ws:
            total += w
        spare = (1 << PRECISION) - n  # every symbol gets 1, the rest by weight
        freqs = [1 + int(w * spare / total) for w in ws]
        freqs[self.centre - self.lo] += (1 << PRECISION) - sum(freqs)
        return freqs

    def pack(self) -> bytes:
        self.check()
        return LAPLACE.pack(self.lo, self.hi, self.centre, self.decay)

    @staticmethod
    def parse(data: bytes | memoryview) -> Laplace:
        if len(data) < LAPLACE.size:
            raise FormatError("range coder model truncated")
        model = Laplace(*LAPLACE.unpack_from(data))
        model.check()
        return model


# --- version 8's compact form: a model in 3-13 bytes (5-7 in practice), several arrays in one stream ---

MAX_VARINT = 5  # bytes of a varint: 35 bits hold every value a model stores


def varint(n: int) -> bytes:
    """``n`` >= 0 as an unsigned LEB128: seven bits a byte, low first, the top bit set on all but the last."""
    out = bytearray()
    while n >= 0x80:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(data: bytes | memoryview, at: int) -> tuple[int, int]:
    """(value, offset after it); FormatError if truncated, longer than MAX_VARINT bytes or not in its
    shortest form (one file per content)."""
    n = 0
    for i in range(MAX_VARINT):
        if at + i >= len(data):
            raise FormatError("varint truncated")
        byte = data[at + i]
        n |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i:
                raise FormatError("varint not in its shortest form")
            return n, at + i + 1
    raise FormatError(f"varint longer than {MAX_VARINT} bytes")


def pack_compact(model: Laplace) -> bytes:
    """Version 8's form of a model: zigzag(lo), hi - lo and centre - lo as varints, then the decay
    (u16) only when hi > lo (a one-symbol model codes nothing, so its decay is not stored)."""
    model.check()
    lo = model.lo
    head = varint(int(zigzag(np.array([lo]))[0])) + varint(model.hi - lo) + varint(model.centre - lo)
    return head + (struct.pack("<H", model.decay) if model.hi > lo else b"")


def parse_compact(data: bytes | memoryview, at: int) -> tuple[Laplace, int]:
    """:func:`pack_compact` read back: (model, offset after it); FormatError if malformed."""
    z, at = read_varint(data, at)
    span, at = read_varint(data, at)
    offset, at = read_varint(data, at)
    lo = int(unzigzag(np.array([z]))[0])
    if not -(1 << 31) <= lo <= lo + span < 1 << 31 or span >= MAX_ALPHABET or offset > span:
        raise FormatError("range coder model out of range")
    decay = DECAY_ONE // 2
    if span:
        if at + 2 > len(data):
            raise FormatError("range coder model truncated")
        (decay,) = struct.unpack_from("<H", data, at)
        at += 2
    model = Laplace(lo, lo + span, lo + offset, decay)
    model.check()
    return model, at


def info_bits(symbols: np.ndarray, model: Laplace) -> float:
    """The bits the range coder spends on ``symbols`` under ``model``, before its last words."""
    q = np.asarray(symbols, dtype=np.int64).reshape(-1)
    if model.lo == model.hi or not q.size:
        return 0.0
    return _cost_bits(np.bincount(q - model.lo, minlength=model.hi - model.lo + 1).astype(np.float64), model)


def range_encode_all(arrays: list[np.ndarray], models: list[Laplace]) -> bytes:
    """Several arrays, each under its own model, as one stream of the range coder's 32-bit words (one
    stream ends once: its last words are paid once, not per array). One-symbol models code nothing."""
    import constriction

    encoder = constriction.stream.queue.RangeEncoder()
    for q, model in zip(arrays, models, strict=True):
        q = np.asarray(q, dtype=np.int64).reshape(-1)
        if q.size and (int(q.min()) < model.lo or int(q.max()) > model.hi):
            raise FormatError("symbol outside its range coder model")
        if model.lo < model.hi and q.size:
            encoder.encode((q - model.lo).astype(np.int32), _categorical(model))
    return encoder.get_compressed().astype("<u4").tobytes()


def range_decode_all(data: bytes | memoryview, models: list[Laplace], counts: list[int]) -> list[np.ndarray]:
    """:func:`range_encode_all` read back; FormatError unless ``data`` is exactly the arrays' code."""
    import constriction

    if len(data) % 4:
        raise FormatError("range coded block is not whole 32-bit words")
    out = []
    try:
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        for model, count in zip(models, counts, strict=True):
            if model.lo == model.hi or not count:
                out.append(np.full(count, model.lo, dtype=np.int64))
            else:
                out.append(decoder.decode(_categorical(model), count).astype(np.int64) + model.lo)
    except (ValueError, RuntimeError, OverflowError, AssertionError) as e:  # constriction asserts too
        raise FormatError(f"corrupt range coded block ({e})") from None
    if range_encode_all(out, models) != bytes(data):
        raise FormatError("corrupt range coded block (its words are not the symbols' code)")
    return out


def _categorical(model: Laplace):
    import constriction

    probabilities = np.array(model.frequencies(), dtype=np.float64) / float(1 << PRECISION)  # exact
    return constriction.stream.model.Categorical(probabilities, perfect=False)


def _cost_bits(counts: np.ndarray, model: Laplace) -> float:
    freqs = np.array(model.frequencies(), dtype=np.float64)
    return float(np.sum(counts * (PRECISION - np.log2(freqs))))


def fit_laplace(symbols: np.ndarray) -> Laplace:
    """The model that codes ``symbols`` in the fewest bits: centre at the median, the decay by a
    search over its 16-bit values (measured in whole bits, not estimated from a variance)."""
    q = np.asarray(symbols, dtype=np.int64).reshape(-1)
    if q.size == 0:
        return Laplace(0, 0, 0, DECAY_ONE // 2)
    lo, hi = int(q.min()), int(q.max())
    if hi - lo >= MAX_ALPHABET:
        raise FormatError(f"symbols span {hi - lo + 1} values; the range coder takes at most {MAX_ALPHABET}")
    centre = int(np.clip(np.round(np.median(q)), lo, hi))
    counts = np.bincount(q - lo, minlength=hi - lo + 1).astype(np.float64)
    best = None
    # Coarse to fine over the decay: 1 - 2^-k, then around the best.
    candidates = sorted({int(DECAY_ONE * (1 - 2.0 ** (-k / 4))) for k in range(1, 80)} - {0, DECAY_ONE})
    for _ in range(3):
        for decay in candidates:
            model = Laplace(lo, hi, centre, decay)
            bits = _cost_bits(counts, model)
            if best is None or bits < best[0]:
                best = (bits, model)
        d = best[1].decay
        step = max(1, (DECAY_ONE - d) // 8)
        candidates = sorted({min(DECAY_ONE - 1, max(1, d + i * step)) for i in range(-8, 9)})
    return best[1]


def range_encode(symbols: np.ndarray, model: Laplace) -> bytes:
    """``symbols`` (integers in ``model.lo..model.hi``) as the range coder's 32-bit words (no words
    for a one-symbol model): one array of :func:`range_encode_all`."""
    return range_encode_all([symbols], [model])


def range_decode(data: bytes | memoryview, model: Laplace, count: int) -> np.ndarray:
    """``count`` symbols from the range coder's words; FormatError if they are not a valid stream."""
    if model.lo == model.hi and len(data):
        raise FormatError("range coded block of a one-symbol model is not empty")
    return range_decode_all(data, [model], [count])[0]
