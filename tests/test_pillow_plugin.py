"""pillow_plugin.py: Image.open("x.inr") after import inrcodec."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import GOLDEN, synthetic_file
from PIL import Image, UnidentifiedImageError

import inrcodec  # noqa: F401  (registers the plugin)
from inrcodec.decoder import decode


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_open_and_load(tmp_path, channels, mode):
    data = synthetic_file(channels=channels)
    path = tmp_path / "x.inr"
    path.write_bytes(data)
    with Image.open(path) as im:
        assert im.format == "INR" and im.mode == mode and im.size == (12, 8)
        pixels = np.asarray(im)
    np.testing.assert_array_equal(pixels.reshape(8, 12, channels), decode(data, device="cpu"))


def test_open_from_a_stream_and_convert():
    data = (GOLDEN / "format_v1_mixed.inr").read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (24, 16)
        small = im.convert("L").resize((12, 8))
    assert small.size == (12, 8)
    assert Image.registered_extensions()[".inr"] == "INR"


def test_other_files_are_not_claimed_and_bad_ones_are_refused(tmp_path):
    png = io.BytesIO()
    Image.new("RGB", (3, 3)).save(png, "PNG")
    png.seek(0)
    with Image.open(png) as im:
        assert im.format == "PNG"
    good = synthetic_file()
    for bad in (good[:-1], b"INRC", good[:4] + b"\x09" + good[5:]):
        with pytest.raises(UnidentifiedImageError):
            Image.open(io.BytesIO(bad))


def test_pillow_opens_a_version_5_latent_grid_file():
    path = GOLDEN / "format_v5_checkerboard.inr"
    img = Image.open(path)
    assert img.size == (32, 24) and img.mode == "RGB"
    assert np.array_equal(np.asarray(img), decode(path.read_bytes()))
