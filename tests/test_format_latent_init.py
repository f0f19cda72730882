"""Format version 7: the latent family's networks coded as residuals from a shipped init."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
from helpers import GOLDEN, REGEN, SAMPLE, Golden, check_latent_golden, latent_as

from inrcodec import image
from inrcodec.config import LATENT_PRESETS
from inrcodec.decoder import decode
from inrcodec.decoder.latent import render
from inrcodec.encoder import latent
from inrcodec.format import latent as fmt
from inrcodec.format.errors import FormatError
from inrcodec.priors import latent as registry

# grid-low's networks from init quarter-v1 (ID 1, what the golden file names) on a small crop, briefly
SMALL = replace(LATENT_PRESETS["grid-low"], steps=60, batch=512, init="quarter-v1", context="checkerboard")
GOLDEN_V7 = "format_v7_latent_init.inr"


def _crop() -> np.ndarray:
    return image.load(SAMPLE)[64:128, 96:160]  # 64x64


@pytest.fixture(scope="module")
def fitted() -> latent.Fitted:
    assert SMALL.init == "quarter-v1"
    return latent.fit(_crop(), SMALL)


@pytest.fixture(scope="module")
def v7(fitted) -> bytes:
    """The fit as version 7 (the encoder writes version 8: tests/test_format_latent_compact.py)."""
    return latent_as(fitted.data, 7)


def _init_field(data: bytes, init: int) -> bytes:
    """``data`` (version 7) naming another init, its CRC made valid again."""
    at = len(fmt.MAGIC) + 1 + fmt.HEADER.size
    body = data[:at] + fmt.INIT.pack(init) + data[at + fmt.INIT.size : -4]
    return body + struct.pack("<I", zlib.crc32(body))


def test_version_7_codes_a_fit_from_an_init_in_fewer_bytes_than_version_5(v7):
    f = fmt.read(v7)
    assert v7[4] == fmt.INIT_VERSION and f.header.init == registry.INITS[0].id
    assert fmt.write(f) == v7  # the values read back are the version 5 values
    plain = fmt.write(replace(f, header=replace(f.header, init=0)))
    assert plain[4] == fmt.VERSION and len(plain) > len(v7)
    back = fmt.read(plain)
    assert all(np.array_equal(a, b) for a, b in zip(back.tensors, f.tensors))
    assert all(np.array_equal(a, b) for a, b in zip(back.context, f.context))
    assert np.array_equal(decode(plain, device="cpu"), decode(v7, device="cpu"))
    assert np.array_equal(decode(v7, device="cpu"), render(f, 64, 64))


def test_the_residuals_are_from_the_init_in_units_of_the_step(fitted):
    """Each synthesis tensor's coded integers are q - rint(w_init / step); the values the init
    alone gives (every residual 0) are the init rounded to the file's steps."""
    f = fmt.read(fitted.data)
    base = fmt.synthesis_base(f.header, f.steps)
    init = registry.arrays(registry.by_id(f.header.init))
    w0 = init["linears.0.weight"].astype(np.float64)
    assert np.array_equal(base[0], np.rint(w0 / f.steps[0]).astype(np.int64))
    zero = fmt.write(replace(f, tensors=base))  # a file whose synthesis residuals are all 0
    assert all(np.array_equal(a, b) for a, b in zip(fmt.read(zero).tensors, base))


def test_a_grey_image_names_no_init(fitted):
    """The inits are RGB networks: a grey fit starts from SIREN's random init, init 0."""
    grey = _crop()[:, :, :1]
    data = latent.fit(grey, replace(SMALL, steps=10)).data
    assert data[4] == fmt.COMPACT_VERSION and fmt.read(data).header.init == 0


@pytest.mark.parametrize("version", [7, 8])
def test_an_init_this_build_lacks_is_refused_by_name(fitted, version):
    data = latent_as(fitted.data, version)
    with pytest.raises(FormatError, match=r"needs latent init 999, which this build lacks \(it has: 1 \(quarter-v1\)"):
        fmt.read(_init_field(data, 999))
    half = next(i.id for i in registry.INITS if i.name == "half-v1")
    with pytest.raises(FormatError, match=f"latent init {half} is for another"):
        fmt.read(_init_field(data, half))
    if version == 7:  # version 8's init 0 means none
        with pytest.raises(FormatError, match="init = 0"):
            fmt.read(_init_field(data, 0))


def test_a_damaged_init_is_refused(monkeypatch, fitted):
    bad = tuple(replace(i, sha256="0" * 64) for i in registry.INITS)
    monkeypatch.setattr(registry, "INITS", bad)
    with pytest.raises(FormatError, match="does not match its SHA-256"):
        fmt.read(fitted.data)


def test_truncated_version_7_headers_are_refused(v7):
    at = len(fmt.MAGIC) + 1 + fmt.HEADER.size
    for cut in (at + 1, at + 2, at + 5):
        with pytest.raises(FormatError):
            fmt.read(v7[:cut])


def test_golden_v7_file_decodes_to_pinned_values():
    """A version 7 file must keep decoding: its integers exactly, its pixels as pinned."""
    path = GOLDEN / GOLDEN_V7
    golden = Golden("inr_files_v7.json")
    if REGEN:
        path.write_bytes(latent_as(latent.fit(_crop(), SMALL).data, 7))
    data = path.read_bytes()
    f = fmt.read(data)
    assert data[4] == fmt.INIT_VERSION and f.header.init == 1
    check_latent_golden(golden, data)


def test_docs_list_every_shipped_init_and_the_header_field():
    """docs/format.md's version 7 table names each init of the registry: ID, name, file, SHA-256."""
    from helpers import REPO

    doc = (REPO / "docs" / "format.md").read_text()
    for init in registry.INITS:
        assert f"| {init.id} | `{init.name}` | `{init.file}` | `{init.sha256}` |" in doc, init.name
    assert "| 25 | 2 | `init`, u16, 1..65535" in doc and fmt.INIT_FIELD.describe() == "1..65535"


@pytest.mark.parametrize("version", [7, 8])
def test_pillow_and_the_torch_path_read_versions_7_and_8(fitted, tmp_path, version):
    from PIL import Image

    data = latent_as(fitted.data, version)
    path = tmp_path / "x.inr"
    path.write_bytes(data)
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), decode(data, device="cpu"))
    theirs = decode(data, size=50, device="torch-cpu").astype(int)
    assert np.abs(theirs - decode(data, size=50, device="cpu").astype(int)).max() <= 1
