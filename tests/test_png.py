"""inrcodec.png: the PNG writer of decoded images. Lossless: Pillow reads back the same pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inrcodec import image, png


def _read(data: bytes) -> tuple[str, np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.mode, np.asarray(im)


def _smooth(height: int, width: int, channels: int) -> np.ndarray:
    """A decode-like picture: smooth gradients and waves, some noise, a flat patch."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    planes = [127 + 100 * np.sin(7 * x + 3 * c) * np.cos(5 * y - c) for c in range(channels)]
    arr = np.stack(planes, axis=2) + np.random.default_rng(channels).normal(0, 2, (height, width, channels))
    arr[height // 4 : height // 2, width // 4 : width // 2] = 200
    return np.clip(np.round(arr), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
@pytest.mark.parametrize("size", [(1, 1), (2, 9), (257, 300), (600, 31)])
def test_pixels_read_back_identical(channels, mode, size):
    arr = _smooth(*size, channels)
    buf = io.BytesIO()
    png.write(buf, arr, rows_per_block=100)  # several blocks: the Up filter across their seams
    got_mode, got = _read(buf.getvalue())
    assert got_mode == mode
    np.testing.assert_array_equal(got.reshape(arr.shape), arr)


def test_extreme_values_and_many_idat_chunks():
    """Up's differences wrap modulo 256 (0 under 255, 255 under 0); the data spans many IDAT chunks."""
    rng = np.random.default_rng(0)
    arr = rng.choice(np.array([0, 255], np.uint8), (120, 90, 3))
    buf = io.BytesIO()
    png.write(buf, arr, rows_per_block=7, idat_bytes=500)
    assert buf.getvalue().count(b"IDAT") > 10
    np.testing.assert_array_equal(_read(buf.getvalue())[1], arr)


def test_smaller_than_pillow_at_level_3_and_compact_on_flat_areas():
    """What the writer was chosen for: smaller files than the Pillow writer it replaced (zlib level 3)
    on a decode-like image, and a flat image (a run-length case) still compresses to almost nothing."""
    arr = _smooth(512, 768, 3)
    ours, pillow = io.BytesIO(), io.BytesIO()
    png.write(ours, arr)
    Image.fromarray(arr).save(pillow, "PNG", compress_level=3)
    assert ours.tell() < pillow.tell()
    flat = io.BytesIO()
    png.write(flat, np.full((1000, 1000, 3), 37, np.uint8))
    assert flat.tell() < 20_000


def test_refuses_what_png_cannot_hold():
    for bad in (np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ValueError, match="expected"):
            png.write(io.BytesIO(), bad)


def test_image_save_writes_png_with_it(tmp_path):
    """image.save's PNGs are this writer's (atomic, as before); other formats stay Pillow's."""
    arr = _smooth(40, 50, 3)
    image.save(arr, tmp_path / "a.png")
    buf = io.BytesIO()
    png.write(buf, arr)
    assert (tmp_path / "a.png").read_bytes() == buf.getvalue()
    assert not list(tmp_path.glob(".*.tmp"))
    np.testing.assert_array_equal(image.load(tmp_path / "a.png"), arr)
