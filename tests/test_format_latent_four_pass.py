"""Format version 9: version 8 with the four-pass context model (checkerboard.FOUR_PASS), whose
network starts from (and with an init is coded as a residual from) a shipped checkerboard init
with its first layer widened."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
from helpers import GOLDEN, REGEN, SAMPLE, Golden, check_latent_golden, context_model, latent_pyramid

from inrcodec import image
from inrcodec.config import LATENT_PRESETS
from inrcodec.decoder import decode
from inrcodec.decoder.latent import render
from inrcodec.encoder import latent, latent_init
from inrcodec.format import checkerboard as cb
from inrcodec.format import latent as fmt
from inrcodec.format.errors import FormatError
from inrcodec.format.latent import level_sizes

# the version 8 golden file's fit (grid-low, briefly, from init quarter-v1) with four passes
SMALL = replace(
    LATENT_PRESETS["grid-low"], steps=60, batch=512, init="quarter-v1", lam=1e-3, lr_latent=0.1, context="four-pass"
)
GOLDEN_FILE = "format_v9_four_pass.inr"


def _make() -> bytes:
    return latent.fit(image.load(SAMPLE)[64:128, 96:160], SMALL).data


@pytest.fixture(scope="module")
def fitted() -> bytes:
    return _make()


def test_the_encoder_writes_version_9_which_reads_back_to_its_bytes(fitted):
    f = fmt.read(fitted)
    assert fitted[4] == fmt.FOUR_PASS_VERSION and f.header.context == 2 and f.header.init == 1
    assert f.header.scheme == cb.FOUR_PASS and f.context[0].shape == (16, cb.FOUR_PASS.features)
    assert fmt.write(f) == fitted
    assert np.array_equal(decode(fitted, device="cpu"), render(f, 64, 64))
    assert sum(fmt.level_bytes(f)) == pytest.approx(f.section_bytes["latents"], abs=8)


def _with_version(data: bytes, version: int) -> bytes:
    body = data[:4] + bytes([version]) + data[5:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def test_the_context_byte_and_the_version_must_agree(fitted):
    """Four passes only in version 9, and version 9 only with four passes (a valid CRC each)."""
    with pytest.raises(FormatError, match="not allowed in version 8"):
        fmt.read(_with_version(fitted, fmt.COMPACT_VERSION))
    names = [f.name for f in fmt.LATENT_FIELDS]
    before = "".join(f.code for f in fmt.LATENT_FIELDS[: names.index("context")])
    at = len(fmt.MAGIC) + 1 + struct.calcsize("<" + before)
    assert fitted[at] == 2
    checkerboard = fitted[:at] + b"\x01" + fitted[at + 1 : -4]
    with pytest.raises(FormatError, match="not allowed in version 9"):
        fmt.read(checkerboard + struct.pack("<I", zlib.crc32(checkerboard)))


def test_every_cut_and_every_flipped_byte_is_refused(fitted):
    for cut in range(len(fitted)):
        with pytest.raises(FormatError):
            fmt.read(fitted[:cut])
    for at in range(0, len(fitted) - 4, 7):
        with pytest.raises(FormatError):
            fmt.read(fitted[:at] + bytes([fitted[at] ^ 0x10]) + fitted[at + 1 :])
    # ... and with the CRC made valid again, so that the version 9 reader itself meets each flip:
    # it reads the file or refuses it with a FormatError, never another exception
    refused = 0
    for at in range(5, len(fitted) - 4, 3):
        body = fitted[:at] + bytes([fitted[at] ^ 0x10]) + fitted[at + 1 : -4]
        try:
            fmt.read(body + struct.pack("<I", zlib.crc32(body)))
        except FormatError:
            refused += 1
    assert refused > 0


def _params_map(lat: list[np.ndarray], arm: list[np.ndarray], scheme: cb.Scheme, level: int) -> np.ndarray:
    """(2, C, h, w): floor(mu) and the table index of every latent of ``level`` under ``scheme``."""
    q = lat[level]
    parent = lat[level + 1] if level + 1 < len(lat) else None
    out = np.zeros((2, *q.shape), np.int64)
    for group in range(len(scheme.groups)):
        here = cb.member(scheme, *q.shape[1:], group)
        base, index = cb.int_params(cb.features(q, parent, scheme, group), arm, level)
        out[0][:, here], out[1][:, here] = base.reshape(q.shape[0], -1), index.reshape(q.shape[0], -1)
    return out


def test_a_widened_checkerboard_network_predicts_every_latent_as_the_checkerboard_does():
    """What lets version 9 start from the shipped (checkerboard) inits: with its first layer
    widened, the four-pass network gives every latent the checkerboard's centre and table (the
    new contexts, the diagonals and the anchors' second group, enter with zero weights)."""
    sizes = level_sizes(13, 10, 3)
    lat = latent_pyramid(sizes, channels=2)
    arm = context_model(levels=3).integers()
    wide = [cb.widen_first_layer(arm[0], cb.FOUR_PASS), *arm[1:]]
    assert wide[0].shape == (8, cb.FOUR_PASS.features) and not wide[0][:, [9, 11, 14, 16]].any()  # diagonals
    for level in range(len(sizes)):
        four, two = _params_map(lat, wide, cb.FOUR_PASS, level), _params_map(lat, arm, cb.CHECKERBOARD, level)
        assert np.array_equal(four, two)
    assert cb.widen_first_layer(wide[0], cb.FOUR_PASS) is wide[0]  # already the scheme's: as it is
    with pytest.raises(ValueError, match="neither the checkerboard's nor the scheme's"):
        cb.widen_first_layer(wide[0][:, :17], cb.FOUR_PASS)
    with pytest.raises(ValueError, match="neither"):
        cb.widen_first_layer(wide[0][0], cb.FOUR_PASS)  # one row, not a layer
    # and the code is the same information, in other passes
    assert sum(cb.level_bits(lat, wide, cb.FOUR_PASS)) == pytest.approx(sum(cb.level_bits(lat, arm)), rel=1e-12)


def test_four_passes_round_trip_and_each_group_sees_only_what_was_decoded():
    sizes = level_sizes(11, 9, 3)
    lat = latent_pyramid(sizes, channels=2, seed=4)
    rng = np.random.default_rng(2)
    arm = context_model(levels=3).integers()
    arm[0] = cb.widen_first_layer(arm[0], cb.FOUR_PASS) + rng.integers(-60, 61, (8, 20))  # new contexts weigh too
    data = cb.encode_latents(lat, arm, cb.FOUR_PASS)
    back = cb.decode_latents(data, sizes, 2, arm, cb.FOUR_PASS)
    assert all(np.array_equal(a, b) for a, b in zip(lat, back))
    # a group's contexts do not change when the latents of its own group or later ones do
    q = lat[0]
    for group in range(4):
        later = lat[0].copy()
        later[:, cb.FOUR_PASS.group_of(*q.shape[1:]) >= group] += 7
        seen = cb.features(q, lat[1], cb.FOUR_PASS, group)
        assert np.array_equal(cb.features(later, lat[1], cb.FOUR_PASS, group), seen)
    with pytest.raises(FormatError, match="reads"):
        cb.encode_latents(lat, arm, cb.CHECKERBOARD)  # a four-pass network under the checkerboard


def test_moved_bits_of_the_four_groups_add_up_to_the_level(fitted):
    f = fmt.read(fitted)
    per_level = cb.level_bits(f.latents, f.context, cb.FOUR_PASS)
    for level in range(len(f.latents)):
        total = 0.0
        for group in range(4):
            bits = cb.moved_bits(f.latents, f.context, level, group, (0, -1, 1), scheme=cb.FOUR_PASS)
            here = cb.member(cb.FOUR_PASS, *f.latents[level].shape[1:], group)
            assert np.all(np.isfinite(bits[0][:, here])) and np.all(np.isinf(bits[:, :, ~here]))
            total += float(bits[0][:, here].sum())
        assert total == pytest.approx(per_level[level], rel=1e-9, abs=1e-9)


def test_golden_v9_file_decodes_to_pinned_values():
    """Version 9 files must keep decoding: their integers exactly, their pixels as pinned."""
    golden = Golden("inr_files_v9.json")
    path = GOLDEN / GOLDEN_FILE
    if REGEN:
        path.write_bytes(_make())
    data = path.read_bytes()
    f = fmt.read(data)
    assert data[4] == fmt.FOUR_PASS_VERSION and f.header.init == 1 and f.header.context == 2
    assert all(np.count_nonzero(q) for q in f.latents[:3])  # the latents' coding is exercised
    check_latent_golden(golden, data)


def test_docs_describe_version_9():
    from helpers import REPO

    doc = (REPO / "docs" / "format.md").read_text()
    assert "## Version 9" in doc
    for new, old in cb.FROM_CHECKERBOARD:
        assert f"| {new} | {old} |" in doc  # the widening's column map, as the code has it


def test_a_four_pass_init_is_used_as_it_is():
    """An init trained with four passes (W1 of 16 x 20) is named by the file and coded from without
    widening; the file reads back to its bytes and decodes as the encoder measured it."""
    data = latent.fit(image.load(SAMPLE)[64:128, 96:160], replace(SMALL, init="quarter-4p-v1")).data
    f = fmt.read(data)
    assert data[4] == fmt.FOUR_PASS_VERSION and f.header.init == 5
    assert fmt.write(f) == data
    base = fmt.context_base(f.header, f.context_width, f.context_bits)
    assert base.size == sum(a.size for a in f.context)
    w1 = latent_init.arrays("quarter-4p-v1")["arm.l1.weight"]  # 16 x 20, first in CONTEXT's order
    assert w1.shape == (16, 20)
    want = np.rint(w1.astype(np.float64).reshape(-1) * (1 << f.context_bits)).astype(np.int64)
    assert np.array_equal(base[: w1.size], want)  # its own columns, not a widening's zeros and copies


@pytest.mark.parametrize(("golden_file", "init"), [("format_v8_compact.inr", 5), (GOLDEN_FILE, 2)])
def test_an_init_of_the_other_context_model_is_refused(golden_file, init):
    """A checkerboard file (v8) naming a four-pass init, or a four-pass one (v9) naming an init of a
    1/2-resolution checkerboard network, is refused in one line naming the init."""
    data = (GOLDEN / golden_file).read_bytes()
    at = 5 + 20  # the init's u16 after the magic, the version and version 7's header
    assert int.from_bytes(data[at : at + 2], "little") == 1
    body = data[:at] + init.to_bytes(2, "little") + data[at + 2 : -4]
    with pytest.raises(FormatError, match=f"latent init {init} is for another"):
        fmt.read(body + zlib.crc32(body).to_bytes(4, "little"))
