"""format/container.py and format/entropy.py: the bytes of an .inr file, and everything a
malformed one may do (nothing but FormatError, quickly, without large allocations)."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib
from dataclasses import replace

import brotli
import numpy as np
import pytest
from helpers import BODY_AT, HEADER, HEADER_AT, REPO, fix_crc, synthetic_file, synthetic_stream, with_header

from inrcodec.decoder import decode
from inrcodec.format import FORMAT_VERSION, MAGIC, FormatError, container, entropy

SECTION = struct.Struct("<BI")


@pytest.fixture(scope="module")
def valid() -> bytes:
    """A small valid file: masks, two scalar layers and one SINR layer."""
    return synthetic_file()


def sections(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, kind, payload) of each section, walked independently of container.read."""
    out, pos, end = [], BODY_AT, len(data) - 4
    while pos < end:
        kind, length = SECTION.unpack_from(data, pos)
        out.append((pos, kind, data[pos + SECTION.size : pos + SECTION.size + length]))
        pos += SECTION.size + length
    assert pos == end
    return out


def rebuild_file(data: bytes, new_sections: list[tuple[int, bytes]]) -> bytes:
    """``data``'s magic and header with other sections (n_sections and CRC fixed up)."""
    body = b"".join(SECTION.pack(kind, len(p)) + p for kind, p in new_sections)
    head = data[:BODY_AT]
    return with_header(head + body + b"\0\0\0\0", n_sections=len(new_sections))


def outcome(data: bytes) -> str:
    """'rejected' (FormatError from read or decode) or 'valid' (decoded to the declared shape).

    Any other exception propagates and fails the calling test.
    """
    try:
        stream = container.read(data)
    except FormatError:
        return "rejected"
    try:
        pixels = decode(data, device="cpu")
    except FormatError:
        return "rejected"
    h = stream.header
    assert pixels.shape == (h.height, h.width, h.channels) and pixels.dtype == np.uint8
    return "valid"


# --- the layout ------------------------------------------------------------------------------


def test_header_layout_is_the_documented_one(valid):
    assert HEADER.size == 18 and BODY_AT == 23  # docs/format.md, byte table (version 3)
    assert valid[:4] == b"INRC" == MAGIC and valid[4] == 3 and FORMAT_VERSION == 6  # plain files stay version 3
    width, height, channels, hidden, layers, omega0, omega_hidden, pe_levels, n_sections = struct.unpack_from(
        "<HHBHBffBB", valid, 5
    )
    assert (width, height, channels, hidden, layers) == (12, 8, 3, 8, 2)
    assert (omega0, omega_hidden, pe_levels, n_sections) == (30.0, 30.0, 0, 4)
    kinds = [kind for _, kind, _ in sections(valid)]
    assert kinds == [container.SECTION_MASKS] + [container.SECTION_LAYER] * 3
    assert struct.unpack("<I", valid[-4:])[0] == zlib.crc32(valid[:-4])


def test_round_trip_of_every_field(valid):
    header, masks, layers = synthetic_stream()
    stream = container.read(valid)
    assert stream.header == header
    np.testing.assert_array_equal(stream.masks, masks)
    assert len(stream.layers) == len(layers)
    for got, want in zip(stream.layers, layers):
        assert (got.index, got.coder, got.entropy_coder, got.sinr) == (want.index, want.coder, 0, want.sinr)
        assert got.bias_step == np.float32(want.bias_step) and got.step == np.float32(want.step)
        np.testing.assert_array_equal(got.bias_q, want.bias_q)
        np.testing.assert_array_equal(got.values_q, want.values_q)
        if want.indices is not None:
            np.testing.assert_array_equal(got.indices, want.indices)
    # Section sizes account for every byte: magic, version, header, sections, CRC.
    assert BODY_AT + sum(stream.section_bytes.values()) + 4 == len(valid)
    assert list(stream.section_bytes) == ["masks", "layer0", "layer1", "layer2"]


def test_dense_file_has_no_mask_section():
    data = synthetic_file(density=1.0, sinr_layers=())
    assert [k for _, k, _ in sections(data)] == [container.SECTION_LAYER] * 3
    stream = container.read(data)
    assert stream.masks is None
    assert all(m.all() for m in container.split_masks(None, stream.header))


def test_symbol_widths_follow_the_largest_symbol():
    header, masks, layers = synthetic_stream(density=1.0, sinr_layers=())
    big = replace(layers[0], values_q=np.array([-40000, 5] * (layers[0].values_q.size // 2)))
    huge = replace(layers[2], bias_q=np.full(layers[2].bias_q.size, 2**30))
    data = container.write(header, None, [big, layers[1], huge])
    fixed = [p[:13] for _, _, p in sections(data)]  # index, coders, steps, widths
    assert [(f[11], f[12]) for f in fixed] == [(2, 4), (2, 1), (4, 1)]  # zigzag(-40000) = 79999 needs 4 bytes
    stream = container.read(data)
    np.testing.assert_array_equal(stream.layers[0].values_q, big.values_q)
    np.testing.assert_array_equal(stream.layers[2].bias_q, huge.bias_q)


def test_entropy_helpers():
    q = np.array([0, -1, 1, -2, 2, 2**31 - 1, -(2**31)])
    u = entropy.zigzag(q)
    assert list(u[:5]) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(entropy.unzigzag(u), q)
    assert [entropy.symbol_width(np.array(v)) for v in ([], [255], [256], [65535], [65536])] == [1, 1, 2, 2, 4]
    np.testing.assert_array_equal(entropy.unpack(entropy.pack(u, 4), 4, u.size), u)
    with pytest.raises(FormatError):
        entropy.unpack(b"\0" * 5, 2, 3)
    raw = bytes(range(256)) * 4
    assert entropy.decompress(entropy.compress(raw), len(raw)) == raw
    for bad in (b"", b"\xff\xff\xff", entropy.compress(raw)[:-3]):
        with pytest.raises(FormatError):
            entropy.decompress(bad, len(raw))
    with pytest.raises(FormatError):  # shorter than declared
        entropy.decompress(entropy.compress(raw), len(raw) + 1)


# --- corruption ------------------------------------------------------------------------------


def test_bad_magic(valid):
    for magic in (b"INRD", b"\0\0\0\0", b"\x89PNG"):
        with pytest.raises(FormatError, match="magic"):
            container.read(fix_crc(magic + valid[4:]))


@pytest.mark.parametrize("version", [0, FORMAT_VERSION + 1, 255])
def test_unknown_version(valid, version):
    data = fix_crc(valid[:4] + bytes([version]) + valid[5:])
    with pytest.raises(FormatError, match=f"version {version}"):
        container.read(data)


def test_wrong_crc(valid):
    crc = struct.unpack("<I", valid[-4:])[0]
    with pytest.raises(FormatError, match="CRC"):
        container.read(valid[:-4] + struct.pack("<I", crc ^ 1))


def test_truncation_at_every_offset(valid):
    for n in range(len(valid)):
        with pytest.raises(FormatError):
            container.read(valid[:n])
    with pytest.raises(FormatError):
        container.read(valid + b"\0")


@pytest.mark.filterwarnings("error")
def test_random_byte_flips(valid):
    """500 seeded corruptions of 1-3 bytes: all rejected (CRC32 catches every such burst)."""
    rng = np.random.default_rng(20250325)
    seen = set()
    for _ in range(500):
        data = bytearray(valid)
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(len(data))] ^= int(rng.integers(1, 256))
        seen.add(outcome(bytes(data)))
    assert seen == {"rejected"}


@pytest.mark.filterwarnings("error")
def test_random_byte_flips_with_the_crc_fixed(valid):
    """500 seeded corruptions that pass the CRC: the parser's own checks must hold. Each file is
    rejected with FormatError or parses and decodes to an image of its declared shape."""
    rng = np.random.default_rng(7)
    counts = {"rejected": 0, "valid": 0}
    for _ in range(500):
        data = bytearray(valid)
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(len(data) - 4)] ^= int(rng.integers(1, 256))
        counts[outcome(fix_crc(bytes(data)))] += 1
    # Both branches are exercised: flips in quantized values give valid files, others do not.
    assert counts["rejected"] > 100 and counts["valid"] > 50, counts


# --- crafted files: a correct CRC, absurd fields -------------------------------------------------


def _fast_rejection(data: bytes, match: str | None = None, call=container.read) -> None:
    tracemalloc.start()
    t = time.perf_counter()
    try:
        with pytest.raises(FormatError, match=match):
            call(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t < 2.0
    assert peak < 64 << 20, f"{peak} bytes allocated to reject a crafted file"


@pytest.mark.parametrize(
    "fields,match",
    [
        ({"width": 0}, r"width = 0 is out of range \(allowed: 1\.\.65535\)"),
        ({"height": 0}, "height = 0 is out of range"),
        ({"width": 65535, "height": 65535}, "pixel limit"),
        ({"channels": 2}, r"channels = 2 is out of range \(allowed: 1, 3 or 4\)"),
        ({"channels": 0}, "channels = 0"),
        ({"hidden": 0}, r"hidden = 0 is out of range \(allowed: 1\.\.1024\)"),
        ({"hidden": 65535}, "hidden = 65535"),
        ({"layers": 0}, r"layers = 0 is out of range \(allowed: 1\.\.16\)"),
        ({"layers": 255}, "layers = 255"),
        ({"omega0": float("nan")}, "omega0 = nan is out of range"),
        ({"omega_hidden": float("inf")}, "omega_hidden = inf"),
        ({"omega0": 0.0}, r"omega0 = 0\.0 is out of range \(allowed: finite, 0 < omega0 < 10000\)"),
        ({"omega0": -30.0}, "omega0 = -30.0"),
        ({"pe_levels": 13}, r"pe_levels = 13 is out of range \(allowed: 0\.\.12\)"),
        ({"pe_levels": 255}, "pe_levels = 255"),
        ({"pe_levels": 12}, None),  # allowed, but the first layer's section no longer matches its shape
        ({"n_sections": 255}, "truncated"),
        ({"n_sections": 3}, "trailing"),
        ({"n_sections": 0}, "trailing"),
        # The largest network the header allows: its layer sections do not match, nothing is built.
        ({"hidden": 1024, "layers": 16}, None),
    ],
)
def test_absurd_header_fields(valid, fields, match):
    _fast_rejection(with_header(valid, **fields), match)


HEADER_CASES = [
    {"width": 0},
    {"height": 0},
    {"width": 65535, "height": 65535},
    {"channels": 2},
    {"hidden": 65535},
    {"layers": 0},
    {"omega0": float("nan")},
    {"omega_hidden": float("inf")},
    {"omega0": -30.0},
    {"pe_levels": 13},
]


@pytest.mark.parametrize("fields", HEADER_CASES)
def test_writer_and_reader_reject_a_header_with_the_same_message(valid, fields):
    """One validation (header.check_header) on both sides: the writer refuses what the reader would."""
    header, masks, layers = synthetic_stream()
    with pytest.raises(FormatError) as on_read:
        container.read(with_header(valid, **fields))
    with pytest.raises(FormatError) as on_write:
        container.write(replace(header, **fields), masks, layers)
    assert str(on_write.value) == str(on_read.value)
    name = next(iter(fields))
    assert name in str(on_write.value) and "\n" not in str(on_write.value)


@pytest.mark.parametrize(
    "fields,match",
    [
        # Values a u8 / u16 / f32 cannot even hold: no struct.error or OverflowError leaks out.
        ({"width": 70000}, r"width = 70000 is out of range \(allowed: 1\.\.65535\)"),
        ({"pe_levels": -1}, r"pe_levels = -1 is out of range \(allowed: 0\.\.12\)"),
        ({"omega0": 1e39}, r"omega0 = 1e\+39 \(inf as float32\) is out of range"),
        # In range as a float64, 10000 once stored as float32 (which the reader would refuse).
        ({"omega_hidden": 9999.9999}, r"omega_hidden = 9999\.9999 \(10000\.0 as float32\) is out of range"),
        # Typed fields: an integer field takes integers only.
        ({"hidden": 8.0}, "hidden = 8.0 is out of range"),
        ({"channels": True}, "channels = True is out of range"),
    ],
)
def test_writer_rejects_what_a_header_cannot_hold(fields, match):
    header, masks, layers = synthetic_stream()
    with pytest.raises(FormatError, match=match):
        container.write(replace(header, **fields), masks, layers)


def test_writer_accepts_numpy_integers_and_the_limits():
    header, masks, layers = synthetic_stream()
    wide = replace(header, width=np.uint16(12), height=np.int64(8), omega0=np.float32(30.0), omega_hidden=9999.0)
    assert container.read(container.write(wide, masks, layers)).header == replace(header, omega_hidden=9999.0)
    for n in (0, 255):
        container.check_header(header, n_sections=n)
    with pytest.raises(FormatError, match=r"n_sections = 256 is out of range \(allowed: 0\.\.255\)"):
        container.check_header(header, n_sections=256)


def test_public_section_functions_round_trip():
    header, masks, layers = synthetic_stream()
    survivors = [int(m.sum()) for m in container.split_masks(masks, header)]
    for layer in layers:
        back = container.parse_layer(container.pack_layer(layer), header, survivors)
        assert (back.index, back.coder, back.sinr) == (layer.index, layer.coder, layer.sinr)
        np.testing.assert_array_equal(back.values_q, layer.values_q)
    union, per_region = container.parse_masks(container.pack_masks(masks), masks.size, None)
    np.testing.assert_array_equal(union, masks)
    assert per_region is None
    assert container.pack_masks(None) is None
    grid = container.Regions.grid(2, 3)
    assert container.parse_regions(container.pack_regions(grid), header) == grid
    with pytest.raises(FormatError, match="union"):
        container.pack_masks(None, regions=grid, region_masks=np.zeros((6, masks.size), dtype=bool) | masks)


def test_section_length_past_the_end(valid):
    first = sections(valid)[0][0]
    for length in (len(valid), 2**32 - 1):
        data = bytearray(valid)
        struct.pack_into("<I", data, first + 1, length)
        _fast_rejection(fix_crc(bytes(data)), "past the end")


def test_section_structure(valid):
    secs = [(kind, payload) for _, kind, payload in sections(valid)]
    masks, l0, l1, l2 = secs
    cases = {
        "unknown section kind": [masks, (9, b"x"), l0, l1, l2],
        "expected 3 layer sections": [masks, l0, l1],
        "out of order": [masks, l1, l0, l2],
        "misplaced": [masks, masks, l0, l1, l2],
    }
    for match, secs_ in cases.items():
        _fast_rejection(rebuild_file(valid, secs_), match)
    # Masks after a layer: the layers of a dense file parse, then the masks come too late.
    dense = synthetic_file(density=1.0)
    d0, d1, d2 = [(kind, payload) for _, kind, payload in sections(dense)]
    _fast_rejection(rebuild_file(dense, [d0, masks, d1, d2]), "mask section misplaced")


def _layer_with(data: bytes, index: int, fmt: str, at: int, value) -> bytes:
    """``data`` with one fixed field of layer section ``index`` replaced."""
    off, _kind, _ = sections(data)[1 + index]
    out = bytearray(data)
    struct.pack_into("<" + fmt, out, off + SECTION.size + at, value)
    return fix_crc(bytes(out))


@pytest.mark.parametrize(
    "layer,fmt,at,value,match",
    [
        (0, "B", 0, 7, "out of range"),  # layer index
        (0, "B", 1, 2, "unknown weight"),  # weight coder
        (0, "B", 2, 1, "unknown weight or entropy"),  # entropy coder
        (0, "f", 3, 0.0, "step"),  # bias step
        (0, "f", 7, float("nan"), "step"),  # weight step
        (0, "f", 7, -1.0, "step"),
        (0, "f", 7, float("inf"), "step"),
        (0, "B", 11, 3, "symbol width"),
        (0, "B", 12, 8, "symbol width"),
        (1, "H", 13, 0, "SINR parameters"),  # k
        (1, "H", 13, 5000, "SINR parameters"),  # k above the dictionary's limit
        (1, "H", 15, 0, "SINR parameters"),  # m
        (1, "B", 17, 0, "SINR parameters"),  # s
        (1, "B", 17, 17, "SINR parameters"),  # s > min(k, m)
        (1, "H", 13, 4096, None),  # k * m still allowed, but the payload no longer fits it
    ],
)
def test_absurd_layer_fields(valid, layer, fmt, at, value, match):
    _fast_rejection(_layer_with(valid, layer, fmt, at, value), match)


def test_sinr_atom_index_out_of_range():
    header, masks, layers = synthetic_stream()
    bad = replace(layers[1], indices=np.full_like(layers[1].indices, 16))  # m = 16
    _fast_rejection(container.write(header, masks, [layers[0], bad, layers[2]]), "atom index")


@pytest.mark.parametrize("step", [3e37, 1e38])
def test_weights_that_overflow_float32(step):
    header, masks, layers = synthetic_stream()
    for i in (0, 1):  # scalar, SINR
        crafted = list(layers)
        crafted[i] = replace(layers[i], step=step)
        data = container.write(header, masks, crafted)
        container.read(data)  # every field is in range ...
        with pytest.raises(FormatError, match="overflow"):  # ... but the weights are not
            decode(data, device="cpu")


@pytest.mark.parametrize("target", ["masks", "layer"])
def test_brotli_bomb(valid, target):
    """A section whose Brotli stream expands far past its declared size is cut off at that size."""
    bomb = brotli.compress(b"\0" * (32 << 20), quality=1)
    assert len(bomb) < 10_000
    secs = [(kind, payload) for _, kind, payload in sections(valid)]
    if target == "masks":
        secs[0] = (secs[0][0], bomb)
    else:
        secs[1] = (secs[1][0], secs[1][1][:13] + bomb)
    data = rebuild_file(valid, secs)
    _fast_rejection(data, "declared size")
    _fast_rejection(data, "declared size", call=lambda d: decode(d, device="cpu"))


def test_docs_header_table_matches_HEADER_FIELDS():
    """docs/format.md's header table is HEADER_FIELDS: the same names, order, offsets, types,
    allowed values and meanings."""
    doc = (REPO / "docs" / "format.md").read_text()
    types = {"H": ("u16", 2), "B": ("u8", 1), "f": ("f32", 4)}
    offset = HEADER_AT
    for f in container.HEADER_FIELDS:
        ty, size = types[f.code]
        assert f"| {offset} | {size} | `{f.name}` | {ty} | {f.describe()} | {f.meaning} |" in doc, f.name
        offset += size
    assert offset == HEADER_AT + container.header_struct(FORMAT_VERSION).size


def test_docs_quote_the_code():
    """The section kinds, the readable versions and the version error message as docs/format.md gives them."""
    doc = " ".join((REPO / "docs" / "format.md").read_text().split())  # line breaks as spaces
    (kind_row,) = [row for row in doc.split(" | ") if row.startswith("u8: 1 = MASKS")]
    for kind, name in container.SECTION_NAMES.items():
        assert f"{kind} = {name.upper()}" in kind_row
    assert f"section kinds | {', '.join(map(str, sorted(container.SECTION_NAMES)))} in version 2 and later" in doc
    versions = ", ".join(map(str, container.READABLE_VERSIONS))
    with pytest.raises(FormatError) as e:
        container.read(fix_crc(MAGIC + bytes([9]) + bytes(30)))
    assert str(e.value) == f"unsupported .inr format version 9 (this decoder reads versions {versions})"
    assert f'FormatError("unsupported .inr format version N (this decoder reads versions {versions})")' in doc
    assert f"{container.MAX_PIXELS:,}" in doc and "`format.MAX_PIXELS`" in doc
    with pytest.raises(FormatError) as e:  # the example message the header section quotes
        container.check_header(replace(synthetic_stream()[0], hidden=0))
    assert f"(`{e.value}`)" in doc


# --- version 4: the range coder and priors ----------------------------------------------------------


def test_a_file_that_uses_nothing_new_stays_version_3():
    header, masks, codes = synthetic_stream()
    assert container.write(header, masks, codes)[4] == 3


def test_range_coded_layers_round_trip_as_version_4():
    header, masks, codes = synthetic_stream(density=0.6)
    ranged = [replace(c, entropy_coder=entropy.RANGE) if c.index != 1 else c for c in codes]
    data = container.write(header, masks, ranged)
    stream = container.read(data)
    assert data[4] == stream.version == 4
    assert [c.entropy_coder for c in stream.layers] == [entropy.RANGE, entropy.BROTLI, entropy.RANGE]
    for a, b in zip(codes, stream.layers):
        np.testing.assert_array_equal(a.values_q, b.values_q)
        np.testing.assert_array_equal(a.bias_q, b.bias_q)
        if a.indices is not None:
            np.testing.assert_array_equal(a.indices, b.indices)
    sinr = [replace(c, entropy_coder=entropy.RANGE) for c in codes]  # a range coded SINR layer too
    again = container.read(container.write(header, masks, sinr))
    np.testing.assert_array_equal(again.layers[1].values_q, codes[1].values_q)
    np.testing.assert_array_equal(again.layers[1].indices, codes[1].indices)


def test_version_3_files_may_not_use_the_range_coder():
    header, masks, codes = synthetic_stream()
    data = bytearray(container.write(header, masks, [replace(c, entropy_coder=entropy.RANGE) for c in codes]))
    v3 = bytes(data[:4]) + bytes([3]) + bytes(data[5 : 5 + HEADER.size - 1]) + bytes(data[5 + HEADER.size + 2 - 1 :])
    with pytest.raises(FormatError, match="unknown weight or entropy coder"):
        container.read(fix_crc(v3))


def test_corrupt_range_coded_sections_are_format_errors():
    header, masks, codes = synthetic_stream()
    data = container.write(header, masks, [replace(c, entropy_coder=entropy.RANGE) for c in codes])
    rng = np.random.default_rng(3)
    for _ in range(200):
        bad = bytearray(data)
        at = int(rng.integers(5, len(bad) - 4))
        bad[at] ^= 1 << int(rng.integers(0, 8))
        try:
            container.read(fix_crc(bytes(bad)))
        except FormatError:
            pass


def test_the_prior_field_needs_version_4():
    header = replace(synthetic_stream()[0], prior=7)
    with pytest.raises(FormatError, match="prior needs format version 4"):
        container.pack_header(header, 3, version=3)
    assert container.pack_header(header, 3, version=4)[4] == 4
    assert container.pack_header(header, 3)[4] == container.FORMAT_VERSION == 6  # the newest by default
    assert container.header_struct(6).size == container.header_struct(4).size  # version 6: version 4's header


def test_a_file_naming_a_prior_this_build_lacks_is_refused_by_name(tmp_path):
    from helpers import naming_prior

    header, masks, codes = synthetic_stream()
    data = naming_prior(container.write(replace(header, prior=1), masks, codes), 4242)  # a writer would refuse it
    assert container.read(data).header.prior == 4242  # the container itself is fine (version 4)
    with pytest.raises(FormatError, match="the file needs prior 4242, which this build lacks"):
        container.write(replace(header, prior=4242), masks, codes)
    with pytest.raises(FormatError, match="the file needs prior 4242, which this build lacks"):
        decode(data)


def test_prior_residuals_decode_as_prior_plus_residual(monkeypatch):
    from helpers import install_prior

    from inrcodec.decoder.arrays import layer_arrays

    header, masks, codes = synthetic_stream()
    plain = container.read(container.write(header, masks, codes))
    ws, bs = layer_arrays(plain)
    rng = np.random.default_rng(5)
    pw = [rng.normal(0, 0.1, w.shape).astype(np.float32) for w in ws]
    pb = [rng.normal(0, 0.1, b.shape).astype(np.float32) for b in bs]
    install_prior(monkeypatch, 31000, pw, pb, header)
    with_prior = container.read(container.write(replace(header, prior=31000), masks, codes))
    ws2, bs2 = layer_arrays(with_prior)
    for w, w2, p, keep in zip(ws, ws2, pw, container.split_masks(plain.masks, header)):
        np.testing.assert_array_equal(w2[keep], w[keep] + p[keep])
        assert not w2[~keep].any()  # pruned weights stay zero
    for b, b2, p in zip(bs, bs2, pb):
        np.testing.assert_array_equal(b2, b + p)
    install_prior(monkeypatch, 31001, [w[:, :-1] for w in pw], pb, header)  # the wrong shapes
    with pytest.raises(FormatError, match="another network than this file's"):
        layer_arrays(container.read(container.write(replace(header, prior=31001), masks, codes)))


# --- version 6: a prior that carries the mask ----------------------------------------------------


def _shared_mask_files(monkeypatch):
    """(header, masks, codes, v6 bytes, the same layers as a version 4 file with a MASKS section):
    prior 31002 carries the stream's mask, prior 31003 is the same arrays without one."""
    from helpers import install_prior

    from inrcodec.decoder.arrays import layer_arrays

    header, masks, codes = synthetic_stream(density=0.5)
    ws, bs = layer_arrays(container.read(container.write(header, masks, codes)))
    keep = container.split_masks(masks, header)
    pw = [(np.random.default_rng(3).normal(0, 0.1, w.shape) * k).astype(np.float32) for w, k in zip(ws, keep)]
    install_prior(monkeypatch, 31002, pw, bs, header, masks=keep)
    install_prior(monkeypatch, 31003, pw, bs, header)
    v6 = container.write(replace(header, prior=31002), masks, codes)
    v4 = container.write(replace(header, prior=31003), masks, codes)
    return header, masks, codes, v6, v4


def test_a_prior_with_a_mask_writes_version_6_without_a_masks_section(monkeypatch):
    from inrcodec.decoder.arrays import layer_arrays

    _header, masks, _codes, v6, v4 = _shared_mask_files(monkeypatch)
    s6, s4 = container.read(v6), container.read(v4)
    assert (v6[4], v4[4]) == (6, 4) and s6.version == 6
    assert "masks" not in s6.section_bytes and "masks" in s4.section_bytes
    assert len(v4) - len(v6) == s4.section_bytes["masks"]  # the mask is all the difference
    np.testing.assert_array_equal(s6.masks, masks)
    (w6, b6), (w4, b4) = layer_arrays(s6), layer_arrays(s4)
    for a, b in zip(w6 + b6, w4 + b4):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(decode(v6, device="cpu"), decode(v4, device="cpu"))


def test_version_6_rules(monkeypatch):
    from inrcodec.decoder.arrays import layer_arrays

    header, masks, codes, v6, v4 = _shared_mask_files(monkeypatch)
    with pytest.raises(FormatError, match="carries a mask: the layers must be coded on it"):
        container.write(replace(header, prior=31002), ~masks, codes)  # another mask
    with pytest.raises(FormatError, match="carries a mask: the layers must be coded on it"):
        container.write(replace(header, prior=31002), None, codes)
    as_v4 = fix_crc(v6[:4] + bytes([4]) + v6[5:])  # the same bytes claiming version 4: no MASKS, so dense
    with pytest.raises(FormatError):
        layer_arrays(container.read(as_v4))
    dense_v6 = fix_crc(v4[:4] + bytes([6]) + v4[5:])  # version 6 naming a prior without a mask
    with pytest.raises(FormatError, match="must name a prior with a mask"):
        container.read(dense_v6)
    masked_v4 = bytearray(v4)  # a version 4 file (with its MASKS section) naming the prior with a mask
    masked_v4[22:24] = struct.pack("<H", 31002)
    stream = container.read(fix_crc(bytes(masked_v4)))
    with pytest.raises(FormatError, match="carries a mask, which needs format version 6"):
        layer_arrays(stream)
    masked_v4[4] = 6  # ... and as version 6: a MASKS section is not allowed there
    with pytest.raises(FormatError, match="only LAYER sections"):
        container.read(fix_crc(bytes(masked_v4)))
