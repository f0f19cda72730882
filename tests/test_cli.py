"""cli.py: encode / decode / info / demo, their options and JSON, and how they fail: one line on
stderr, a non-zero exit, no traceback, and no output file left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import REPO, STATS_KEYS, synthetic_file, tiny_config
from PIL import Image

from inrcodec import config, image
from inrcodec.cli import main
from inrcodec.format import container

INFO_KEYS = {"file", "format_version", "bytes", "bpp", "header", "parameters", "density", "coders", "sections"}


@pytest.fixture
def tiny(monkeypatch):
    """A "tiny" preset for the CLI (the real ones take minutes on a CPU)."""
    monkeypatch.setitem(config.PRESETS, "tiny", tiny_config(steps=300, density=1.0, qat_steps=10))
    return "tiny"


def run(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output + result.stderr, result.output + result.stderr
    return result


def fails(*args: str, match: str):
    """Runs and checks a failure: exit 1, one 'Error: ...' line on stderr, nothing on stdout."""
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert match in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


def smooth(h: int = 16, w: int = 16, channels: int = 3) -> np.ndarray:
    """A smooth picture a tiny network fits in a few hundred steps."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    planes = [0.5 + 0.4 * np.sin(3 * x + 2 * y), 0.5 + 0.4 * np.cos(2 * x - 3 * y), x * 0.8 + 0.1, 0.2 + 0.7 * y]
    return np.round(np.stack(planes[:channels], axis=2) * 255).astype(np.uint8)


# --- the happy paths ------------------------------------------------------------------------------


def test_encode_json_decode_info(tmp_path, crop, tiny):
    src = tmp_path / "crop.png"
    image.save(crop, src)
    res = run("encode", src, "--preset", tiny, "--steps", 200, "--density", 0.7, "--seed", 3, "--json")
    assert res.exit_code == 0, res.output
    stats = json.loads(res.stdout)
    assert STATS_KEYS | {"output"} <= set(stats)
    out = tmp_path / "crop.inr"  # default: SRC with .inr
    assert stats["output"] == str(out)
    # Rates are bytes on disk.
    size = os.path.getsize(out)
    assert stats["bytes"] == size and stats["bpp"] == 8 * size / (48 * 32)
    assert 0.65 < stats["density"] <= 0.7

    res = run("decode", out, "-q")
    assert res.exit_code == 0 and res.stdout == ""
    decoded = image.load(tmp_path / "crop.png")
    assert image.psnr(decoded, crop) == pytest.approx(stats["psnr"], abs=1e-9) and stats["psnr"] > 30

    res = run("info", out, "--json")
    info = json.loads(res.stdout)
    assert INFO_KEYS <= set(info)
    assert info["bytes"] == size and info["bpp"] == stats["bpp"] and info["format_version"] == out.read_bytes()[4]
    assert info["header"] == {
        "width": 48, "height": 32, "channels": 3, "hidden": 16, "layers": 2, "omega0": 30.0, "omega_hidden": 30.0,
        "pe_levels": 0,
    }  # fmt: skip
    assert info["density"] == pytest.approx(stats["density"]) and info["coders"] == stats["coders"]
    assert info["sections"] == stats["sections"] and info["parameters"] == stats["params"]

    text = run("info", out).stdout
    assert "48x32" in text and f"{size} bytes" in text and "section  layer0" in text


@pytest.mark.parametrize(
    "args,shape",
    [
        ((), (32, 48)),
        (("--size", 96), (64, 96)),
        (("--width", 24), (16, 24)),
        (("--height", 64), (64, 96)),
        (("--width", 10, "--height", 30), (30, 10)),
    ],
)
def test_decode_sizes(tmp_path, encoded_scalar, args, shape):
    src = tmp_path / "x.inr"
    src.write_bytes(encoded_scalar.data)
    res = run("decode", src, "-o", tmp_path / "y.png", *args)
    assert res.exit_code == 0
    assert res.stdout.strip() == f"{tmp_path / 'y.png'}: {shape[1]}x{shape[0]}"
    with Image.open(tmp_path / "y.png") as im:
        assert im.size == shape[::-1] and im.mode == "RGB"


def test_decode_to_other_formats(tmp_path, encoded_scalar):
    src = tmp_path / "x.inr"
    src.write_bytes(encoded_scalar.data)
    for name, fmt in (("y.jpg", "JPEG"), ("y.webp", "WEBP"), ("y.bmp", "BMP")):
        assert run("decode", src, "-o", tmp_path / name, "-q").exit_code == 0
        with Image.open(tmp_path / name) as im:
            assert im.format == fmt and im.size == (48, 32)


def test_demo(tmp_path, monkeypatch):
    monkeypatch.setitem(config.PRESETS, "tiny", tiny_config(steps=100, density=1.0, qat_steps=0))
    res = run("demo", "--preset", "tiny", "-o", tmp_path)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.inr", "sample.png", "sample@2x.png"]
    with Image.open(tmp_path / "sample@2x.png") as im:
        assert im.size == (512, 384)
    assert "bpp" in res.stdout and "PSNR" in res.stdout


# --- image modes ----------------------------------------------------------------------------------


def _encode_decode(tmp_path, tiny, pil: Image.Image) -> tuple[np.ndarray, Image.Image]:
    src = tmp_path / "in.png"
    pil.save(src)
    res = run("encode", src, "--preset", tiny, "-q")
    assert res.exit_code == 0, res.output
    res = run("decode", tmp_path / "in.inr", "-o", tmp_path / "out.png", "-q")
    assert res.exit_code == 0, res.output
    out = Image.open(tmp_path / "out.png")
    out.load()
    return np.asarray(out), out


def test_rgba_keeps_its_alpha(tmp_path, tiny):
    arr = smooth(channels=4)
    px, out = _encode_decode(tmp_path, tiny, Image.fromarray(arr, "RGBA"))
    assert out.mode == "RGBA" and container.read((tmp_path / "in.inr").read_bytes()).header.channels == 4
    assert image.psnr(px[:, :, 3:], arr[:, :, 3:]) > 30  # the alpha plane itself came through
    assert image.psnr(px, arr) > 30


def test_grey_stays_grey(tmp_path, tiny):
    arr = smooth(channels=1)[:, :, 0]
    px, out = _encode_decode(tmp_path, tiny, Image.fromarray(arr, "L"))
    assert out.mode == "L" and container.read((tmp_path / "in.inr").read_bytes()).header.channels == 1
    assert image.psnr(px[:, :, None], arr[:, :, None]) > 30


def test_sixteen_bit_is_scaled_to_8(tmp_path, tiny):
    arr16 = (smooth(channels=1)[:, :, 0].astype(np.uint16) * 257).astype(np.uint16)
    px, out = _encode_decode(tmp_path, tiny, Image.fromarray(arr16))
    assert out.mode == "L"
    assert image.psnr(px[:, :, None], (arr16 // 257).astype(np.uint8)[:, :, None]) > 30


@pytest.mark.parametrize("transparent", [False, True])
def test_palette(tmp_path, tiny, transparent):
    rgb = Image.fromarray(smooth(channels=3), "RGB").quantize(32)
    if transparent:
        rgb.info["transparency"] = 0
    px, out = _encode_decode(tmp_path, tiny, rgb)
    want = np.asarray(rgb.convert("RGBA" if transparent else "RGB"))
    assert out.mode == ("RGBA" if transparent else "RGB")
    assert image.psnr(px, want) > 25


# --- failures -------------------------------------------------------------------------------------


def _only(tmp_path, *names: str) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names), "an output file was left behind"


def test_encode_bad_inputs(tmp_path, tiny, monkeypatch):
    (tmp_path / "text.png").write_text("this is not an image\n")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.fromarray(smooth()).save(tmp_path / "big.png")
    fails("encode", tmp_path / "text.png", "--preset", tiny, match="cannot read image")
    fails("encode", tmp_path / "empty.png", "--preset", tiny, match="cannot read image")
    fails("encode", tmp_path / "missing.png", "--preset", tiny, match="no such file")
    res = run("encode", tmp_path, "--preset", tiny)  # click's own check: a usage error, exit 2
    assert res.exit_code == 2 and "is a directory" in res.stderr
    monkeypatch.setattr(image, "MAX_PIXELS", 100)
    fails("encode", tmp_path / "big.png", "--preset", tiny, match="over the 100 pixel limit")
    monkeypatch.undo()
    fails("encode", tmp_path / "big.png", "--preset", "nope", match="unknown preset")
    fails("encode", tmp_path / "big.png", "--bpp", "-1", match="--bpp")
    fails("encode", tmp_path / "big.png", "--density", "1.5", match="--density")
    _only(tmp_path, "text.png", "empty.png", "big.png")


def test_decode_and_info_bad_inputs(tmp_path, encoded_scalar):
    good = encoded_scalar.data
    (tmp_path / "bad.inr").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    (tmp_path / "png.inr").write_bytes((REPO / "inrcodec" / "data" / "sample.png").read_bytes())
    (tmp_path / "empty.inr").write_bytes(b"")
    (tmp_path / "good.inr").write_bytes(good)
    for cmd in ("decode", "info"):
        fails(cmd, tmp_path / "bad.inr", match="CRC")
        fails(cmd, tmp_path / "png.inr", match="magic")
        fails(cmd, tmp_path / "empty.inr", match="too short")
        fails(cmd, tmp_path / "missing.inr", match="no such file")
    fails("decode", tmp_path / "good.inr", "--size", 10, "--width", 5, match="not both")
    fails("decode", tmp_path / "good.inr", "--width", 100000, "--height", 100000, match="pixel limit")
    fails("decode", tmp_path / "good.inr", "-o", tmp_path / "out.xyz", match="unknown output image format")
    res = run("decode", tmp_path / "good.inr", "--size", 0)
    assert res.exit_code == 2 and "Traceback" not in res.stderr  # click's usage error
    _only(tmp_path, "bad.inr", "png.inr", "empty.inr", "good.inr")


def test_rgba_to_jpeg_is_refused(tmp_path):
    (tmp_path / "a.inr").write_bytes(synthetic_file(channels=4))
    fails("decode", tmp_path / "a.inr", "-o", tmp_path / "a.jpg", match="alpha")
    _only(tmp_path, "a.inr")


# --- atomic output --------------------------------------------------------------------------------


def test_failures_keep_an_existing_output(tmp_path, encoded_scalar, tiny):
    (tmp_path / "x.inr").write_bytes(encoded_scalar.data[:-1])  # corrupt
    (tmp_path / "x.png").write_bytes(b"precious")
    fails("decode", tmp_path / "x.inr", match="CRC")
    (tmp_path / "y.png").write_text("not an image")
    (tmp_path / "y.inr").write_bytes(b"precious")
    fails("encode", tmp_path / "y.png", "--preset", tiny, match="cannot read image")
    assert (tmp_path / "x.png").read_bytes() == b"precious" and (tmp_path / "y.inr").read_bytes() == b"precious"
    _only(tmp_path, "x.inr", "x.png", "y.png", "y.inr")


def test_a_failing_write_leaves_nothing_partial(tmp_path, encoded_scalar, monkeypatch):
    """The disk fills up after the bytes are written: the old output stays, no temporary remains."""
    src = tmp_path / "x.inr"
    src.write_bytes(encoded_scalar.data)
    (tmp_path / "x.png").write_bytes(b"precious")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    fails("decode", src, match="No space left")
    assert (tmp_path / "x.png").read_bytes() == b"precious"
    _only(tmp_path, "x.inr", "x.png")


def test_python_dash_m_reports_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.inr"
    bad.write_bytes(b"INRC\x01 truncated")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run(
        [sys.executable, "-m", "inrcodec", "decode", str(bad)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.strip().splitlines() == ["Error: file truncated in the header"]
    _only(tmp_path, "bad.inr")
