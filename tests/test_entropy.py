"""format/entropy.py: zig-zag symbols, Brotli's bound, and the version 4 range coder with its
quantized Laplace model (the table both sides compute, pinned)."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from inrcodec.format import FormatError, entropy
from inrcodec.format.entropy import Laplace


def laplace_symbols(n: int = 5000, scale: float = 4.0, seed: int = 0) -> np.ndarray:
    return np.round(np.random.default_rng(seed).laplace(2, scale, n)).astype(np.int64)


def test_the_table_is_pinned():
    """The model's integers are what both sides agree on: a change to how they are computed is a
    format break (the hash is of this build's table; see docs/format.md, Version 4)."""
    model = Laplace(-40, 57, 3, 52000)
    freqs = model.frequencies()
    assert sum(freqs) == 1 << entropy.PRECISION and min(freqs) >= 1 and len(freqs) == 98
    assert freqs.index(max(freqs)) == 3 + 40  # the mode is the centre
    digest = hashlib.sha256(np.array(freqs, dtype="<u4").tobytes()).hexdigest()
    assert digest == "f5df4eafb781ad04b6c8bbf704e181cf6830a902e3dc9576022993dfef6b04e8"


@pytest.mark.parametrize("scale", [0.3, 4.0, 60.0])
def test_range_coder_round_trip(scale):
    q = laplace_symbols(scale=scale)
    model = entropy.fit_laplace(q)
    data = entropy.range_encode(q, model)
    np.testing.assert_array_equal(entropy.range_decode(data, model, q.size), q)


def test_the_fitted_model_codes_near_the_entropy_and_beats_its_neighbours():
    q = laplace_symbols(20000)
    model = entropy.fit_laplace(q)
    size = len(entropy.range_encode(q, model))
    counts = np.bincount(q - q.min())
    p = counts[counts > 0] / q.size
    ideal = -np.sum(counts[counts > 0] * np.log2(p)) / 8
    assert ideal <= size <= 1.02 * ideal + 8
    for decay in (model.decay - 2000, model.decay + 2000):  # a worse decay codes in more bytes
        other = Laplace(model.lo, model.hi, model.centre, decay)
        assert len(entropy.range_encode(q, other)) >= size


def test_one_symbol_and_empty_blocks():
    for q in (np.zeros(0, np.int64), np.full(7, -3)):
        model = entropy.fit_laplace(q)
        np.testing.assert_array_equal(entropy.range_decode(entropy.range_encode(q, model), model, q.size), q)


@pytest.mark.parametrize(
    "model",
    [Laplace(5, 4, 5, 100), Laplace(0, 10, 11, 100), Laplace(0, 10, -1, 100), Laplace(0, 1 << 16, 0, 100),
     Laplace(0, 9, 0, 0)],
)  # fmt: skip
def test_bad_models_are_format_errors(model):
    with pytest.raises(FormatError, match="range coder model"):
        Laplace.parse(_raw(model))


def _raw(model: Laplace) -> bytes:
    return entropy.LAPLACE.pack(model.lo, model.hi, model.centre, model.decay)


def test_symbols_outside_the_model_and_broken_streams():
    q = laplace_symbols(200)
    model = entropy.fit_laplace(q)
    with pytest.raises(FormatError, match="outside"):
        entropy.range_encode(np.append(q, model.hi + 1), model)
    data = entropy.range_encode(q, model)
    with pytest.raises(FormatError, match="whole 32-bit words"):
        entropy.range_decode(data[:-1], model, q.size)
    for bad in (data + bytes(8), data + b"\xff" * 8, data[:-4]):  # trailing or missing words
        with pytest.raises(FormatError, match="corrupt range coded block"):
            entropy.range_decode(bad, model, q.size)
    with pytest.raises(FormatError, match="model truncated"):
        Laplace.parse(_raw(model)[:-1])


def test_any_changed_words_are_a_format_error_and_nothing_else():
    """Bytes changed at random (as a crafted file with a valid CRC could have them) end in a
    FormatError, never in the range decoder's own AssertionError (it raised one for 3 % of such
    blocks before decode caught it)."""
    model = Laplace(-20, 20, 0, 50000)
    rng = np.random.default_rng(0)
    symbols = rng.integers(-5, 6, 500)
    data = entropy.range_encode(symbols, model)
    refused = 0
    for _ in range(400):
        words = bytearray(data)
        for _ in range(3):
            words[rng.integers(len(words))] = rng.integers(256)
        try:
            assert np.array_equal(entropy.range_decode(bytes(words), model, symbols.size), symbols)
        except FormatError:
            refused += 1
    assert refused > 350


def test_wide_symbol_ranges_are_refused_before_coding():
    with pytest.raises(FormatError, match="at most 65536"):
        entropy.fit_laplace(np.array([0, 1 << 17]))


# docs/format.md, "The range coder", written out as it reads: an independent implementation of
# what the format calls the range coder's words, checked against constriction's own.
MASK64 = (1 << 64) - 1


def _doc_table(freqs: list[int]) -> list[int]:
    """The coder's left cumulatives Q_0..Q_n of a table f summing to 2^24 (the doc's fast quantization)."""
    n, one = len(freqs), 1 << entropy.PRECISION
    cum = [0]
    for f in freqs:
        cum.append(cum[-1] + f)
    return [(c * (one - n)) // one + k for k, c in enumerate(cum)]


def _doc_encode(symbols: list[tuple[int, list[int]]], seen: Counter | None = None) -> list[int]:
    """(symbol index, Q table) pairs as the doc's u32 words; ``seen`` counts the carry branches taken."""
    seen = Counter() if seen is None else seen
    lower, rng, words, inverted = 0, MASK64, [], None  # inverted: [count, first word] or None
    for s, q in symbols:
        scale = rng >> entropy.PRECISION
        rng = scale * (q[s + 1] - q[s])
        new_lower = (lower + scale * q[s]) & MASK64
        if inverted and (new_lower + rng) & MASK64 > new_lower:
            count, first = inverted
            seen["carry run of %s" % ("one" if count == 1 else "more")] += 1
            if new_lower < lower:
                seen["carry resolved by a wrap"] += 1
                words += [first + 1] + [0] * (count - 1)
            else:
                seen["carry resolved without a wrap"] += 1
                words += [first] + [0xFFFFFFFF] * (count - 1)
            inverted = None
        lower = new_lower
        if rng < 1 << 32:
            rng <<= 32
            word, lower = lower >> 32, (lower << 32) & MASK64
            if inverted:
                inverted[0] += 1
            elif (lower + rng) & MASK64 > lower:
                words.append(word)
            else:
                inverted = [1, word]
    if rng == MASK64:  # nothing coded: no words
        return words
    point = (lower + (1 << 32) - 1) & MASK64
    if inverted:
        seen["end with a carry pending"] += 1
        count, first = inverted
        words += [first, *[0xFFFFFFFF] * (count - 1)] if point >= lower else [first + 1, *[0] * (count - 1)]
    words.append(point >> 32)
    if ((lower + rng) & MASK64) >> 32 == point >> 32:
        words.append(0)
    return words


def _doc_decode(words: list[int], tables: list[list[int]]) -> list[int]:
    """The doc's decoder: one symbol index per table, in order."""
    it = iter(words)
    point = (next(it, 0) << 32) | next(it, 0)
    lower, rng, out = 0, MASK64, []
    for q in tables:
        scale = rng >> entropy.PRECISION
        quantile = ((point - lower) & MASK64) // scale
        assert quantile < 1 << entropy.PRECISION
        s = max(k for k in range(len(q) - 1) if q[k] <= quantile)
        lower, rng = (lower + scale * q[s]) & MASK64, scale * (q[s + 1] - q[s])
        if rng < 1 << 32:
            lower, rng = (lower << 32) & MASK64, rng << 32
            point = ((point << 32) & MASK64) | next(it, 0)
        out.append(s)
    return out


MODELS = [Laplace(-3, 5, 0, 30000), Laplace(-40, 40, 2, 60000), Laplace(0, 1, 0, 100), Laplace(-300, 300, -7, 65000)]


def _doc_against_constriction(rng: np.random.Generator, n: int, seen: Counter) -> None:
    """n symbols drawn from MODELS: the doc's words equal constriction's, and the doc's decoder
    reads them back."""
    picks = rng.integers(0, len(MODELS), size=n)
    values = []
    for m in picks:
        model = MODELS[m]
        f = np.array(model.frequencies(), dtype=np.float64)
        values.append(int(rng.choice(np.arange(model.lo, model.hi + 1), p=f / f.sum())))
    tables = {i: _doc_table(m.frequencies()) for i, m in enumerate(MODELS)}
    seq = [(v - MODELS[m].lo, tables[m]) for v, m in zip(values, picks, strict=True)]
    words = _doc_encode(seq, seen)
    coded = entropy.range_encode_all([np.array([v], dtype=np.int64) for v in values], [MODELS[m] for m in picks])
    assert words == np.frombuffer(coded, dtype="<u4").tolist()
    assert _doc_decode(words, [t for _, t in seq]) == [s for s, _ in seq]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 300, 2000])
def test_the_range_coder_is_the_one_docs_format_md_writes_out(n):
    """Words from constriction equal the doc's algorithm's, symbol for symbol and at the end (0,
    1 or 2 closing words), and the doc's decoder reads them back: an independent decoder can be
    written from docs/format.md without constriction's source."""
    _doc_against_constriction(np.random.default_rng(n), n, Counter())


def test_the_docs_carry_lines_are_exercised():
    """The pending carry (lower + range wrapping after a renormalisation) is taken and resolved
    both ways in a 2000-symbol stream, and a 54-symbol stream ends with one pending; the doc's
    lines for runs of several carried words are checked by reading only (a run of two needs the
    interval to straddle the wrap through another 32 bits of coding: 6 M random symbols, about
    230 k carries, gave none)."""
    seen: Counter = Counter()
    _doc_against_constriction(np.random.default_rng(2000), 2000, seen)
    rng = np.random.default_rng(1031)
    _doc_against_constriction(rng, int(rng.integers(5, 60)), seen)
    assert seen["carry resolved by a wrap"] and seen["carry resolved without a wrap"], seen
    assert seen["end with a carry pending"], seen
