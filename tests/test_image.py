"""image.py: the mode policy, the size limits, probing, uint8 <-> float, PSNR, atomic saving."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from PIL import Image

from inrcodec import image


@pytest.fixture(autouse=True)
def tiny_images_allowed(monkeypatch, request):
    """The mode tests use 6x5 images (a few literal pixels each), under the 8x8 minimum;
    test_minimum_size checks the minimum itself."""
    if request.node.name != "test_minimum_size":
        monkeypatch.setattr(image, "MIN_SIDE", 1)


def test_minimum_size(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "eight.png")
    assert image.probe(tmp_path / "eight.png").width == 8 and image.load(tmp_path / "eight.png").shape == (8, 8, 3)
    Image.fromarray(np.zeros((7, 300, 3), np.uint8)).save(tmp_path / "strip.png")
    for fn in (image.probe, image.load):
        with pytest.raises(image.ImageError, match="300x7 is below the 8x8 minimum"):
            fn(tmp_path / "strip.png")


def _load(tmp_path, pil: Image.Image, name: str = "x.png") -> np.ndarray:
    pil.save(tmp_path / name)
    return image.load(tmp_path / name)


RGB = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "mode,channels",
    [("RGB", 3), ("L", 1), ("RGBA", 4), ("LA", 4), ("1", 1), ("P", 3), ("CMYK", 3), ("YCbCr", 3)],
)
def test_mode_policy(tmp_path, mode, channels):
    pil = Image.fromarray(RGB, "RGB").convert(mode)
    ext = {"CMYK": "tif", "YCbCr": "jpg"}.get(mode, "png")
    arr = _load(tmp_path, pil, f"x.{ext}")
    assert arr.dtype == np.uint8 and arr.shape == (6, 5, channels) and arr.flags.c_contiguous
    if ext == "png":  # the same policy for an image in memory
        np.testing.assert_array_equal(image.from_pil(pil), arr)


def test_grey_alpha_becomes_rgba_with_its_alpha(tmp_path):
    la = np.stack([np.arange(30, dtype=np.uint8).reshape(6, 5), np.full((6, 5), 7, np.uint8)], axis=2)
    arr = _load(tmp_path, Image.fromarray(la, "LA"))
    np.testing.assert_array_equal(arr, np.concatenate([la[:, :, :1]] * 3 + [la[:, :, 1:]], axis=2))


def test_palette_with_transparency_becomes_rgba(tmp_path):
    pal = Image.fromarray(RGB, "RGB").quantize(4)
    pal.info["transparency"] = 1
    arr = _load(tmp_path, pal)
    assert arr.shape == (6, 5, 4)
    idx = np.asarray(pal)
    assert (arr[:, :, 3][idx == 1] == 0).all() and (arr[:, :, 3][idx != 1] == 255).all()


def test_sixteen_bit_and_wide_integers_scale_to_8_bits(tmp_path):
    a16 = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    with pytest.warns(image.PrecisionWarning, match="16-bit samples are coded at 8 bits"):
        assert _load(tmp_path, Image.fromarray(a16)).reshape(-1).tolist() == [0, 1, 255, 128]
    a32 = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32))  # mode I, max <= 255: kept
    assert image.from_pil(a32).reshape(-1).tolist() == [0, 100, 255]
    f = Image.fromarray(np.array([[0.0, 1000.0, 65535.0]], dtype=np.float32))  # mode F, max > 255
    assert image.from_pil(f).reshape(-1).tolist() == [0, 4, 255]
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))  # mode F in [0, 1]: 1.0 is white
    assert image.from_pil(unit).reshape(-1).tolist() == [0, 128, 255]


@pytest.mark.parametrize("ext", ["gif", "webp", "png", "tiff"])
def test_a_file_of_several_frames_codes_the_first_and_says_so(tmp_path, ext):
    frames = [Image.fromarray(np.full((8, 9, 3), 40 * i, np.uint8), "RGB") for i in range(3)]
    path = tmp_path / f"anim.{ext}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert image.probe(path).warning == "3 frames, only the first is coded"
    with pytest.warns(image.PrecisionWarning, match="anim.*3 frames, only the first is coded"):
        arr = image.load(path)
    assert arr.shape == (8, 9, 3) and int(arr.max()) == 0  # the first frame, black
    frames[0].save(tmp_path / "still.gif")
    assert image.probe(tmp_path / "still.gif").warning is None


def test_a_camera_jpeg_with_a_preview_is_one_picture(tmp_path):
    """Pillow opens a JPEG carrying a second picture (MPF: a phone's preview or depth map) as an
    MPO of two frames: that is one photograph, coded without a frames warning."""
    pic = Image.fromarray(np.full((8, 9, 3), 90, np.uint8), "RGB")
    pic.save(tmp_path / "camera.jpg", "MPO", save_all=True, append_images=[pic.resize((4, 4))])
    assert Image.open(tmp_path / "camera.jpg").n_frames == 2  # what the warning would have counted
    assert image.probe(tmp_path / "camera.jpg").warning is None


def test_output_formats_are_checked_before_any_work(tmp_path):
    """What a writer would refuse only after the render: alpha where the format has none, a side
    over the format's limit, a format Pillow reads but cannot write (.inr, our own plugin's)."""
    assert image.output_format(tmp_path / "a.png", 4, (70000, 10)) == "PNG"
    for name, channels, size, match in (
        ("a.jpg", 4, None, "JPEG cannot hold an alpha channel"),
        ("a.ppm", 4, None, "PPM cannot hold an alpha channel"),
        ("a.jpg", 3, (65501, 1), "JPEG holds at most 65500 pixels a side, not 65501x1"),
        ("a.webp", 3, (8, 16384), "WEBP holds at most 16383 pixels a side"),
        ("a.gif", 3, (65536, 8), "GIF holds at most 65535 pixels a side"),
        ("a.h5", 3, None, "a.h5: cannot write RGB images as HDF5"),
        ("a.inr", 3, None, "a.inr: cannot write INR images"),
        ("a.xyz", 3, None, "unknown output image format '.xyz'"),
        ("a.xbm", 3, None, "a.xbm: cannot write RGB images as XBM"),
        ("a.eps", 4, None, "a.eps: cannot write RGBA images as EPS"),
    ):
        with pytest.raises(image.ImageError, match=match):
            image.output_format(tmp_path / name, channels, size)
    with pytest.raises(image.ImageError, match="JPEG holds at most"):
        image.save(np.zeros((1, 65501, 3), np.uint8), tmp_path / "wide.jpg")
    assert list(tmp_path.iterdir()) == []


def test_unsupported_mode():
    with pytest.raises(image.ImageError, match="unsupported image mode La"):
        image.from_pil(Image.new("La", (2, 2)))


def test_load_errors(tmp_path, monkeypatch):
    with pytest.raises(image.ImageError, match="no such file"):
        image.load(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "cut.png").write_bytes(_png_bytes(tmp_path)[:60])
    for name in ("empty.png", "text.png", "cut.png"):
        with pytest.raises(image.ImageError, match="cannot read image"):
            image.load(tmp_path / name)
    Image.fromarray(RGB).save(tmp_path / "ok.png")
    monkeypatch.setattr(image, "MAX_PIXELS", 29)
    with pytest.raises(image.ImageError, match="5x6 is over the 29 pixel limit"):
        image.load(tmp_path / "ok.png")
    monkeypatch.setattr(image, "MAX_PIXELS", 30)
    assert image.load(tmp_path / "ok.png").shape == (6, 5, 3)


def _png_bytes(tmp_path) -> bytes:
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 9).save(tmp_path / "full.png")
    return (tmp_path / "full.png").read_bytes()


def test_unit_range_round_trip_is_exact():
    v = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    u = image.to_unit(v)
    assert u.dtype == np.float32 and u.min() == -1.0 and u.max() == 1.0
    np.testing.assert_array_equal(image.from_unit(u), v)
    assert image.from_unit(np.array([-5.0, 5.0, np.float32(1 / 255)])).tolist() == [0, 255, 128]


def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    assert image.psnr(a, a) == math.inf
    b = a.copy()
    b[0, 0, 0] = 255  # MSE = 255^2 / 48
    assert image.psnr(a, b) == pytest.approx(10 * math.log10(48))
    with pytest.raises(ValueError):
        image.psnr(a, a[:2])


def test_save_and_to_pil(tmp_path):
    for arr, mode in ((RGB, "RGB"), (RGB[:, :, :1], "L"), (np.dstack([RGB, RGB[:, :, :1]]), "RGBA")):
        image.save(arr, tmp_path / "o.png")
        with Image.open(tmp_path / "o.png") as im:
            assert im.mode == mode
            np.testing.assert_array_equal(np.asarray(im).reshape(arr.shape), arr)
    with pytest.raises(image.ImageError, match="unknown output image format"):
        image.save(RGB, tmp_path / "o.unknown")
    with pytest.raises(image.ImageError, match="alpha"):
        image.save(np.dstack([RGB, RGB[:, :, :1]]), tmp_path / "o.jpg")


def test_atomic_write(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def broken(f):
        f.write(b"half a file")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError):
        image.atomic_write(target, broken)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with pytest.raises(KeyboardInterrupt):  # even an interrupt leaves no temporary
        image.atomic_write(target, lambda f: (_ for _ in ()).throw(KeyboardInterrupt))
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    image.atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "1", "P", "CMYK", "I;16"])
def test_probe_knows_the_channels_load_gives(tmp_path, mode):
    pil = (
        Image.fromarray(RGB, "RGB").convert(mode)
        if mode != "I;16"
        else Image.fromarray(RGB[:, :, 0].astype(np.uint16) * 257)
    )
    pil.save(tmp_path / "x.png" if mode != "CMYK" else tmp_path / "x.jpg")
    path = tmp_path / ("x.png" if mode != "CMYK" else "x.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", image.PrecisionWarning)
        assert image.probe(path).channels == image.load(path).shape[2]


# --- writing while the decoder renders (decoder.cpu.RowsDone) ---------------------------------------


def _bands(arr: np.ndarray, rows, order: list[int], band: int, fail_at: int | None = None) -> None:
    """Fill ``arr`` band by band in ``order`` (a render's threads finish bands in any order)."""
    from inrcodec.decoder.cpu import RowsDone

    assert isinstance(rows, RowsDone)
    for y0 in order:
        if y0 == fail_at:
            raise RuntimeError("render failed")
        arr[y0 : y0 + band] = (np.arange(arr.shape[1]) + y0)[None, :, None] % 251
        rows.mark(y0, min(arr.shape[0], y0 + band))


def test_a_png_written_while_rendering_is_the_png_of_the_whole_image(tmp_path):
    from inrcodec.decoder.cpu import RowsDone

    h, w, band = 700, 90, 64
    starts = list(range(0, h, band))
    arr, rows = np.zeros((h, w, 3), np.uint8), RowsDone(h)
    order = starts[1::2] + starts[0::2]  # out of order: the writer must wait for the first rows
    image.save_while_rendering(arr, tmp_path / "x.png", lambda: _bands(arr, rows, order, band), rows)
    image.save(arr, tmp_path / "whole.png")
    assert (tmp_path / "x.png").read_bytes() == (tmp_path / "whole.png").read_bytes()
    jpeg_rows = RowsDone(h)  # another format waits for the whole image
    image.save_while_rendering(arr, tmp_path / "x.jpg", lambda: _bands(arr, jpeg_rows, starts, band), jpeg_rows)
    assert image.load(tmp_path / "x.jpg").shape == (h, w, 3)


def test_a_failed_render_leaves_no_file_and_raises_its_own_error(tmp_path):
    from inrcodec.decoder.cpu import RowsDone

    h, band = 700, 64
    arr, rows = np.zeros((h, 90, 3), np.uint8), RowsDone(h)
    with pytest.raises(RuntimeError, match="render failed"):
        image.save_while_rendering(arr, tmp_path / "x.png", lambda: _bands(arr, rows, [0, 64, 128], band, 128), rows)
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file
    (tmp_path / "taken.png").write_bytes(b"mine")
    rows = RowsDone(h)
    with pytest.raises(FileExistsError, match="taken.png"):  # the writer's error, after the render
        image.save_while_rendering(
            arr, tmp_path / "taken.png", lambda: _bands(arr, rows, list(range(0, h, band)), band), rows, overwrite=False
        )
    assert (tmp_path / "taken.png").read_bytes() == b"mine"


def test_an_interrupt_after_the_last_band_still_leaves_no_file(tmp_path):
    """Ctrl-C once every band is marked (a thread pool finishes its bands first) or while the writer
    compresses: the writer's last check keeps the file out, and the interrupt is what is raised."""
    from inrcodec.decoder.cpu import RowsDone

    h, band = 700, 64
    arr, rows = np.zeros((h, 90, 3), np.uint8), RowsDone(h)

    def render() -> None:
        _bands(arr, rows, list(range(0, h, band)), band)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        image.save_while_rendering(arr, tmp_path / "x.png", render, rows)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="C-contiguous"):  # a copy would be read before the render
        image.save(np.zeros((h, 90, 3), np.uint8)[:, ::2], tmp_path / "y.png", ready=RowsDone(h).wait)


def test_from_unit_rounds_half_to_even_clamps_and_makes_nan_black():
    """The 8-bit mapping of docs/format.md, "Decoding": a NaN (a hostile file's overflowing
    network) is 0 on every machine, not whatever casting a NaN to uint8 gives."""
    half = np.float32(-0.4941176176071167)  # (half + 1) * 127.5 is 64.5 exactly in float32
    assert (half + np.float32(1)) * np.float32(127.5) == np.float32(64.5)
    x = np.array([np.nan, np.inf, -np.inf, 2, -2, 0, 1, -1, 0.5, half], dtype=np.float32)
    with np.errstate(invalid="raise"):  # clip then a cast of NaN would warn (raise here)
        assert image.from_unit(x).tolist() == [0, 255, 0, 255, 0, 128, 255, 0, 191, 64]
