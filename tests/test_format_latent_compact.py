"""Format version 8: version 7 with compact coded blocks (a model in 3-13 bytes, one stream of words
per section), and init 0 for a file coded from no init."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
from helpers import GOLDEN, REGEN, SAMPLE, Golden, latent_as, sha256

from inrcodec import image
from inrcodec.config import LATENT_PRESETS
from inrcodec.decoder import decode
from inrcodec.decoder.latent import render
from inrcodec.encoder import latent
from inrcodec.format import entropy
from inrcodec.format import latent as fmt
from inrcodec.format.errors import FormatError

# grid-low on a small crop from init quarter-v1 (ID 1), briefly, at a lambda and latent learning rate
# that leave nonzero latents on three levels; and a grey fit without a context model, which names no
# init and codes its latents' levels in one compact stream
SMALL = replace(
    LATENT_PRESETS["grid-low"],
    steps=60,
    batch=512,
    init="quarter-v1",
    lam=1e-3,
    lr_latent=0.1,
    context="checkerboard",
)
PLAIN = replace(SMALL, steps=30, context="none")
GOLDEN_FILES = {"checkerboard": "format_v8_compact.inr", "plain": "format_v8_compact_plain.inr"}


def _crop() -> np.ndarray:
    return image.load(SAMPLE)[64:128, 96:160]  # 64x64


def _make(kind: str) -> bytes:
    if kind == "checkerboard":
        return latent.fit(_crop(), SMALL).data
    return latent.fit(_crop()[:, :, :1], PLAIN).data


@pytest.fixture(scope="module")
def fitted() -> bytes:
    return _make("checkerboard")


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 1 << 20, (1 << 35) - 1])
def test_varints_round_trip(n):
    data = entropy.varint(n)
    assert entropy.read_varint(data + b"\xff", 0) == (n, len(data))
    assert len(data) == max(1, -(-n.bit_length() // 7))


def test_malformed_varints_are_refused():
    for bad, message in ((b"\x80", "truncated"), (b"\x80\x00", "shortest"), (b"\xff" * 5 + b"\x01", "longer")):
        with pytest.raises(FormatError, match=message):
            entropy.read_varint(bad, 0)


def test_compact_models_round_trip_and_are_checked():
    for model in (entropy.Laplace(-5, 5, 0, 63100), entropy.Laplace(-40, 2, -18, 65415), entropy.Laplace(3, 3, 3, 9)):
        data = entropy.pack_compact(model)
        back, at = entropy.parse_compact(data, 0)
        assert at == len(data) <= 7
        assert (back.lo, back.hi, back.centre) == (model.lo, model.hi, model.centre)
        assert back.decay == (model.decay if model.hi > model.lo else entropy.DECAY_ONE // 2)  # one symbol: no decay
    with pytest.raises(FormatError, match="out of range"):
        entropy.parse_compact(entropy.varint(0) + entropy.varint(2) + entropy.varint(3) + b"\0\x80", 0)  # centre > hi
    with pytest.raises(FormatError, match="truncated"):
        entropy.parse_compact(entropy.varint(0) + entropy.varint(2) + entropy.varint(1) + b"\0", 0)
    top = entropy.varint(2 * ((1 << 31) - 2))  # lo = 2^31 - 2: hi = lo + 2 would leave the i32 range
    with pytest.raises(FormatError, match="out of range"):
        entropy.parse_compact(top + entropy.varint(2) + entropy.varint(0) + b"\0\x80", 0)


def test_one_stream_holds_several_arrays_exactly_in_no_more_words_than_one_each():
    rng = np.random.default_rng(0)
    arrays = [rng.laplace(0, 3, 500).round().astype(np.int64), np.zeros(9, np.int64), rng.integers(-40, 3, 700)]
    models = [entropy.fit_laplace(q) for q in arrays]
    words = entropy.range_encode_all(arrays, models)
    back = entropy.range_decode_all(words, models, [len(q) for q in arrays])
    assert all(np.array_equal(a, b) for a, b in zip(arrays, back))
    assert len(words) <= sum(len(entropy.range_encode(q, m)) for q, m in zip(arrays, models))
    for bad in (words + b"\0\0\0\0", words[:-4], words[:-1]):
        with pytest.raises(FormatError, match="corrupt|words"):
            entropy.range_decode_all(bad, models, [len(q) for q in arrays])


def test_the_encoder_writes_version_8_smaller_than_7_and_5_with_the_same_values(fitted):
    f = fmt.read(fitted)
    assert fitted[4] == fmt.COMPACT_VERSION and f.header.compact and f.header.init == 1
    assert fmt.write(f) == fitted
    v7, v5 = latent_as(fitted, 7), latent_as(fitted, 5)
    assert len(fitted) < len(v7) < len(v5)
    for other in (v7, v5):
        g = fmt.read(other)
        assert all(np.array_equal(a, b) for a, b in zip(g.latents, f.latents))
        assert all(np.array_equal(a, b) for a, b in zip(g.tensors, f.tensors))
        assert all(np.array_equal(a, b) for a, b in zip(g.context, f.context))
        assert np.array_equal(decode(other, device="cpu"), decode(fitted, device="cpu"))
    assert np.array_equal(decode(fitted, device="cpu"), render(f, 64, 64))


def test_a_file_without_an_init_or_a_context_model_round_trips():
    data = _make("plain")
    f = fmt.read(data)
    assert data[4] == fmt.COMPACT_VERSION and f.header.init == 0 and f.header.context == 0
    assert fmt.write(f) == data and len(data) < len(latent_as(data, 5))
    assert np.array_equal(decode(data, device="cpu"), decode(latent_as(data, 5), device="cpu"))


def test_every_cut_and_every_flipped_byte_is_refused(fitted):
    for cut in range(len(fitted)):
        with pytest.raises(FormatError):
            fmt.read(fitted[:cut])
    for at in range(0, len(fitted) - 4, 7):  # the CRC catches a flip; past it, the checks below
        with pytest.raises(FormatError):
            fmt.read(fitted[:at] + bytes([fitted[at] ^ 0x10]) + fitted[at + 1 :])


def _sections(data: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    at = len(fmt.MAGIC) + 1 + fmt.HEADER.size + fmt.INIT.size
    head, out = data[:at], []
    while at < len(data) - 4:
        kind, length = fmt.FRAME.unpack_from(data, at)
        out.append((kind, data[at + fmt.FRAME.size : at + fmt.FRAME.size + length]))
        at += fmt.FRAME.size + length
    return head, out


def _rebuilt(head: bytes, sections: list[tuple[int, bytes]]) -> bytes:
    body = head + b"".join(fmt.FRAME.pack(k, len(p)) + p for k, p in sections)
    return body + struct.pack("<I", zlib.crc32(body))


def test_checks_behind_the_crc(fitted):
    """Payloads with a valid CRC but spare words, a non-minimal varint or a bad step are refused."""
    head, ((ck, context), (lk, latents), (sk, synthesis)) = _sections(fitted)
    overlong = context[:2] + bytes([context[2] | 0x80, 0]) + context[3:]  # zigzag(lo) in two bytes
    assert _rebuilt(head, [(ck, context), (lk, latents), (sk, synthesis)]) == fitted
    cases = {
        "corrupt range coded block": [(ck, context + b"\0\0\0\0"), (lk, latents), (sk, synthesis)],
        "words": [(ck, context), (lk, latents), (sk, synthesis + b"\0\0\0\0")],
        "not a positive": [(ck, context), (lk, latents), (sk, struct.pack("<f", -1.0) + synthesis[4:])],
        "shortest form": [(ck, overlong), (lk, latents), (sk, synthesis)],
    }
    for message, sections in cases.items():
        with pytest.raises(FormatError, match=message):
            fmt.read(_rebuilt(head, sections))


def test_golden_v8_files_decode_to_pinned_values():
    """Version 8 files must keep decoding: their integers exactly, their pixels as pinned."""
    golden = Golden("inr_files_v8.json")
    for kind, name in GOLDEN_FILES.items():
        path = GOLDEN / name
        if REGEN:
            path.write_bytes(_make(kind))
        data = path.read_bytes()
        f = fmt.read(data)
        assert data[4] == fmt.COMPACT_VERSION and f.header.init == (1 if kind == "checkerboard" else 0)
        assert all(np.count_nonzero(q) for q in f.latents[:3])  # the latents' coding is exercised
        golden.check(f"{kind}.latents", sha256(np.concatenate([q.reshape(-1) for q in f.latents])))
        golden.check(f"{kind}.synthesis", sha256(np.concatenate([t.reshape(-1) for t in f.synthesis()])))
        if f.context is not None:
            golden.check(f"{kind}.context", sha256(np.concatenate([a.reshape(-1) for a in f.context])))
        golden.check(f"{kind}.pixels", sha256(decode(data, device="cpu")))
        golden.check(f"{kind}.pixels_40x30", sha256(decode(data, width=40, height=30, device="cpu")))


def test_docs_describe_version_8():
    from helpers import REPO

    doc = (REPO / "docs" / "format.md").read_text()
    assert "## Version 8" in doc and "| 25 | 2 | `init`, u16, 0..65535" in doc
    assert fmt.COMPACT_INIT_FIELD.describe() == "0..65535" and entropy.MAX_VARINT == 5
