"""Format version 5 (the latent-grid family): its file, its NumPy decoder, its golden file."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import GOLDEN, REGEN, SAMPLE, Golden, check_latent_golden, latent_as

from inrcodec import coords, image
from inrcodec.decoder import decode
from inrcodec.decoder.latent import render
from inrcodec.encoder import latent
from inrcodec.encoder.latent import LatentConfig, LatentImage
from inrcodec.format import latent as v5
from inrcodec.format.errors import FormatError

TINY = LatentConfig(lam=1e-3, levels=3, hidden=8, steps=80, batch=256, lr_latent=0.1, context="checkerboard")
GOLDEN_V5 = "format_v5_checkerboard.inr"


def _crop() -> np.ndarray:
    return image.load(SAMPLE)[96:120, 120:152]  # 32x24


@pytest.fixture(scope="module")
def fitted() -> latent.Fitted:
    return latent.fit(_crop(), TINY)


@pytest.fixture(scope="module")
def v5_data(fitted) -> bytes:
    """The fit as version 5, whose bytes the surgery tests below cut and patch."""
    return latent_as(fitted.data, 5)


def _torch_render(f: v5.LatentFile, cfg: LatentConfig, width: int, height: int) -> np.ndarray:
    """The encoder's torch model loaded with the file's values: what training saw."""
    model = LatentImage(f.header.height, f.header.width, replace(cfg, context="none"), f.header.channels)
    with torch.no_grad():
        for p, t in zip(latent._synthesis_tensors(model), f.synthesis()):
            p.copy_(torch.from_numpy(t))
        lat = [torch.from_numpy(q.astype(np.float32))[None] for q in f.latents]
        out = model(coords.grid(height, width), lat).clamp(-1, 1).numpy()
    return np.clip(np.round((out + 1) * 127.5), 0, 255).astype(np.uint8).reshape(height, width, -1)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("activation", ["sine", "relu"])
def test_numpy_decoder_matches_the_torch_model_it_was_trained_as(interpolation, activation):
    cfg = replace(TINY, interpolation=interpolation, activation=activation, steps=40, context="none")
    f = v5.read(latent.fit(_crop(), cfg).data)
    for width, height in ((32, 24), (57, 43), (9, 7)):
        ours = render(f, width, height).astype(int)
        theirs = _torch_render(f, cfg, width, height).astype(int)
        assert np.abs(ours - theirs).max() <= 1  # float32 rounding of two libraries, nothing more
        assert np.mean(ours != theirs) < 0.01


@pytest.mark.parametrize("pe_levels", [0, 3])
def test_bands_on_any_thread_count_give_the_same_pixels(pe_levels, monkeypatch):
    """Bands run on threads and the Fourier features are computed per row and per column: the
    pixels are those of one band at a time, and of the torch model within a level."""
    cfg = replace(TINY, pe_levels=pe_levels, steps=40, context="none")
    f = v5.read(latent.fit(_crop(), cfg).data)
    monkeypatch.setattr("inrcodec.decoder.latent.BAND_PIXELS", 500)  # many bands at 97x61
    one = render(f, 97, 61, threads=1)
    assert np.array_equal(one, render(f, 97, 61, threads=3))
    assert np.abs(one.astype(int) - _torch_render(f, cfg, 97, 61).astype(int)).max() <= 1


def test_file_round_trips_and_decode_dispatches_on_the_version(fitted):
    f = v5.read(fitted.data)
    assert fitted.data[4] == v5.COMPACT_VERSION and f.header.context == 1  # what the encoder writes
    assert v5.write(f) == fitted.data  # the integers are everything the file holds
    data = latent_as(fitted.data, 5)
    assert data[4] == v5.VERSION and v5.write(v5.read(data)) == data
    assert np.array_equal(decode(data, device="cpu"), render(f, 32, 24))
    assert np.array_equal(decode(fitted.data, device="cpu"), render(f, 32, 24))
    assert decode(fitted.data, size=64, device="cpu").shape == (48, 64, 3)


def _with_header(data: bytes, **change) -> bytes:
    """``data`` with header fields changed and its CRC made valid again (to reach the checks
    behind the CRC)."""
    at = len(v5.MAGIC) + 1
    values = dict(zip([x.name for x in v5.LATENT_FIELDS], v5.HEADER.unpack_from(data, at)), **change)
    body = data[:at] + v5.HEADER.pack(*values.values()) + data[at + v5.HEADER.size : -4]
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"levels": 0}, "levels"),
        ({"channels": 2}, "channels"),
        ({"omega": float("nan")}, "omega"),
        ({"context": 2}, "context"),
        ({"n_sections": 2}, "n_sections"),
        ({"width": 33}, None),  # sizes no longer match the coded latents
    ],
)
def test_header_fields_are_checked_on_read(v5_data, change, message):
    with pytest.raises(FormatError, match=message):
        v5.read(_with_header(v5_data, **change))


def test_writer_checks_the_same_ranges(fitted):
    f = v5.read(fitted.data)
    with pytest.raises(FormatError, match="latent_channels"):
        v5.write(replace(f, header=replace(f.header, latent_channels=0)))
    with pytest.raises(FormatError, match="sizes"):
        v5.write(replace(f, latents=f.latents[:-1]))


def test_corrupt_or_cut_files_are_refused(v5_data):
    data = v5_data
    for bad in (
        data[:-1],
        data + b"\0",
        data[:10],
        bytes([data[0] ^ 1]) + data[1:],
        data[:30] + bytes([data[30] ^ 4]) + data[31:],
    ):
        with pytest.raises(FormatError):
            v5.read(bad)


def _sections(data: bytes) -> list[tuple[int, bytes]]:
    at, out = len(v5.MAGIC) + 1 + v5.HEADER.size, []
    while at < len(data) - 4:
        kind, length = v5.FRAME.unpack_from(data, at)
        out.append((kind, data[at + v5.FRAME.size : at + v5.FRAME.size + length]))
        at += v5.FRAME.size + length
    return out


def _rebuilt(data: bytes, sections: list[tuple[int, bytes]]) -> bytes:
    """``data``'s magic and header with other sections, and a valid CRC (to reach the checks
    behind it)."""
    body = data[: len(v5.MAGIC) + 1 + v5.HEADER.size] + b"".join(v5.FRAME.pack(k, len(p)) + p for k, p in sections)
    return body + struct.pack("<I", zlib.crc32(body))


def test_checks_behind_the_crc(v5_data):
    (ck, context), (lk, latents), (sk, synthesis) = _sections(v5_data)
    assert _rebuilt(v5_data, [(ck, context), (lk, latents), (sk, synthesis)]) == v5_data
    nan_step = struct.pack("<f", float("nan")) + synthesis[4:]
    huge_step = struct.pack("<f", 3e38) + synthesis[4:]  # a finite step whose products overflow
    cases = {
        "out of order": [(lk, latents), (ck, context), (sk, synthesis)],
        "trailing": [(ck, context), (lk, latents), (sk, synthesis + b"\0")],
        "not a positive": [(ck, context), (lk, latents), (sk, nan_step)],
        "not finite": [(ck, context), (lk, latents), (sk, huge_step)],
        "width 0": [(ck, b"\0" + context[1:]), (lk, latents), (sk, synthesis)],
        "more than 8": [(ck, context[:1] + b"\x09" + context[2:]), (lk, latents), (sk, synthesis)],
        "bound": [(ck, context), (lk, struct.pack("<H", 1 << 14) + latents[2:]), (sk, synthesis)],
        "latent": [(ck, context), (lk, struct.pack("<H", 1 + latents[0]) + latents[2:]), (sk, synthesis)],
    }
    for message, sections in cases.items():
        with pytest.raises(FormatError, match=message):
            v5.read(_rebuilt(v5_data, sections))


def test_the_writer_refuses_what_the_reader_would(v5_data):
    """A synthesis whose dequantized values overflow float32 is not written (the reader refuses it)."""
    f = v5.read(v5_data)
    with pytest.raises(FormatError, match="not finite"):
        v5.write(replace(f, steps=[3e38, *f.steps[1:]]))


def test_a_header_that_would_allocate_too_much_is_refused_before_decoding(v5_data):
    with pytest.raises(FormatError, match="latents"):
        v5.read(_with_header(v5_data, width=8192, height=8192, latent_channels=16, finest=0))


def _make_golden() -> bytes:
    return latent_as(latent.fit(_crop(), TINY).data, 5)


def test_golden_v5_file_decodes_to_pinned_values():
    """A version 5 file must keep decoding: its integers exactly, its pixels as pinned."""
    path = GOLDEN / GOLDEN_V5
    golden = Golden("inr_files_v5.json")
    if REGEN:
        path.write_bytes(_make_golden())
    data = path.read_bytes()
    v5.read(data)  # the version 5 reader accepts it
    check_latent_golden(golden, data)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_torch_decode_path_agrees_with_the_numpy_reference(interpolation):
    """decode(device=...) off the CPU path renders with torch (here on the CPU: 'torch-cpu');
    tests/test_gpu.py runs the same comparison on CUDA."""
    cfg = replace(TINY, interpolation=interpolation, steps=40)
    data = latent.fit(_crop(), cfg).data
    for size in (None, 61):
        ours = decode(data, size=size, device="cpu").astype(int)
        theirs = decode(data, size=size, device="torch-cpu").astype(int)
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 1


def test_bytes_per_level_add_up_to_the_latent_section(fitted):
    """Without a context model each level is its own block (exact); with it, each level's
    information under its tables, which the one stream of words matches within a word."""
    data = latent.fit(_crop(), replace(TINY, context="none", steps=30)).data
    plain = v5.read(latent_as(data, 5))  # version 5: each level its own block (exact)
    assert sum(v5.level_bytes(plain)) == plain.section_bytes["latents"]
    compact = v5.read(data)  # version 8: one stream, whose last word or two no level owns
    assert compact.section_bytes["latents"] - 8 <= sum(v5.level_bytes(compact)) <= compact.section_bytes["latents"]
    f = v5.read(fitted.data)
    per_level = v5.level_bytes(f)
    assert len(per_level) == TINY.levels
    assert f.section_bytes["latents"] - 2 - 4 <= sum(per_level) <= f.section_bytes["latents"]
