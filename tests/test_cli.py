"""cli.py: encode / decode / info / demo, their options and JSON, and how they fail: one line on
stderr, a non-zero exit, no traceback, and no output file left behind."""

from __future__ import annotations

import json
import math
import os
import re
import struct
import subprocess
import sys
import zlib
from dataclasses import replace

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import GOLDEN, REPO, STATS_KEYS, synthetic_file, tiny_config
from PIL import Image

from inrcodec import config, image
from inrcodec.cli import main
from inrcodec.format import container

INFO_KEYS = {
    "file", "format_version", "bytes", "bpp", "header", "parameters", "density", "coders", "entropy_coders", "sections",
}  # fmt: skip


def allow_preset(monkeypatch, name: str, cfg: config.EncodeConfig) -> str:
    """Add a preset, and to the --preset choices of every command that has one (fixed at import)."""
    monkeypatch.setitem(config.PRESETS, name, cfg)
    for command in main.commands.values():
        for param in command.params:
            if param.name == "preset" and isinstance(param.type, click.Choice):
                monkeypatch.setattr(param.type, "choices", (*param.type.choices, name))
    return name


@pytest.fixture
def tiny(monkeypatch):
    """A "tiny" preset for the CLI (the real ones take minutes on a CPU)."""
    return allow_preset(monkeypatch, "tiny", tiny_config(steps=300, density=1.0, qat_steps=10))


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


def test_an_auto_kernel_encode_says_in_one_line_when_torchs_kernels_ran_instead(tmp_path, crop, monkeypatch):
    """The SIREN presets' fit takes the native kernels where they run ("auto"); where they cannot
    (here: no compiler) the encode still succeeds, says why on stderr, and its JSON names the
    kernels that ran."""
    from inrcodec.encoder import native

    cfg = tiny_config(steps=40, density=1.0, qat_steps=5)
    cfg = replace(cfg, fit=replace(cfg.fit, fused=True, kernel="auto"))
    allow_preset(monkeypatch, "tiny-auto", cfg)
    monkeypatch.setattr(native, "unavailable", lambda: "native kernels: no C compiler (set CC, or install gcc)")
    src = tmp_path / "crop.png"
    image.save(crop, src)
    res = run("encode", src, "--preset", "tiny-auto", "--json", "--device", "cpu")
    assert res.exit_code == 0 and json.loads(res.stdout)["kernel"] == "torch"
    assert res.stderr.strip().splitlines() == [
        "note: native kernels: no C compiler (set CC, or install gcc): the fit ran torch's kernels"
        " (slower; other bytes in the last bits)"
    ]
    assert run("encode", src, "--preset", "tiny-auto", "-q", "--force").stderr == ""  # -q: nothing


def test_encode_json_decode_info(tmp_path, crop, tiny):
    src = tmp_path / "crop.png"
    image.save(crop, src)
    res = run("encode", src, "--preset", tiny, "--steps", 200, "--density", 0.7, "--seed", 3, "--json")
    assert res.exit_code == 0, res.output
    stats = json.loads(res.stdout)
    assert STATS_KEYS | {"output"} <= set(stats)
    # the keys both families' JSON share (the grid-* test below checks its own)
    assert (
        stats["preset"] == tiny
        and stats["format_version"] == json.loads(run("info", tmp_path / "crop.inr", "--json").stdout)["format_version"]
    )
    out = tmp_path / "crop.inr"  # default: SRC with .inr
    assert stats["output"] == str(out)
    # Rates are bytes on disk.
    size = os.path.getsize(out)
    assert stats["bytes"] == size and stats["bpp"] == 8 * size / (48 * 32)
    assert 0.65 < stats["density"] <= 0.7

    res = run("decode", out, "-q")
    assert res.exit_code == 0 and res.stdout == ""
    decoded = image.load(tmp_path / "crop.decoded.png")  # default: never the source's own name
    assert image.psnr(decoded, crop) == pytest.approx(stats["psnr"], abs=1e-9) and stats["psnr"] > 30

    res = run("info", out, "--json")
    info = json.loads(res.stdout)
    assert INFO_KEYS <= set(info)
    assert info["bytes"] == size and info["bpp"] == stats["bpp"] and info["format_version"] == out.read_bytes()[4]
    assert info["header"] == {
        "width": 48, "height": 32, "channels": 3, "hidden": 16, "layers": 2, "omega0": 30.0, "omega_hidden": 30.0,
        "pe_levels": 0, "prior": 0,
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
    allow_preset(monkeypatch, "tiny", tiny_config(steps=100, density=1.0, qat_steps=0))
    res = run("demo", "--preset", "tiny", "-o", tmp_path)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.inr", "sample.png", "sample@2x.png"]
    with Image.open(tmp_path / "sample@2x.png") as im:
        assert im.size == (512, 384)
    assert "bpp" in res.stdout and "PSNR" in res.stdout


def test_demo_never_replaces_files_unless_forced(tmp_path, monkeypatch):
    """The demo's outputs are checked before any work: a file of the user's in OUTDIR stays."""
    allow_preset(monkeypatch, "tiny", tiny_config(steps=100, density=1.0, qat_steps=0))
    mine = tmp_path / "sample.png"
    mine.write_bytes(b"the user's own file")
    assert "sample.png: exists; pass --force" in fails("demo", "--preset", "tiny", "-o", tmp_path, match="exists")
    assert mine.read_bytes() == b"the user's own file" and sorted(p.name for p in tmp_path.iterdir()) == ["sample.png"]
    assert run("demo", "--preset", "tiny", "-o", tmp_path, "--force").exit_code == 0
    assert mine.read_bytes() != b"the user's own file"


def test_bad_devices_are_usage_errors_before_any_work(tmp_path, encoded_scalar, crop):
    """A device this machine lacks, or no device at all: one line and status 2 (torch's own errors
    were tracebacks after the image was read); no output."""
    import torch

    src = tmp_path / "x.inr"
    src.write_bytes(encoded_scalar.data)
    image.save(crop, tmp_path / "c.png")
    missing = ["tpu", "cuda:99"] + ([] if torch.cuda.is_available() else ["cuda"])
    missing += [] if torch.backends.mps.is_available() else ["mps"]
    encodes = (
        ("encode", tmp_path / "c.png", "-o", tmp_path / "c.inr"),
        ("encode", tmp_path / "c.png", "--workers", 1, "-o", tmp_path),  # a batch
    )
    for device in missing:
        for args in (("decode", src, "-o", tmp_path / "y.png"), *encodes):
            res = run(*args, "--device", device)
            assert res.exit_code == 2 and f"--device {device}:" in res.stderr, res.stderr
    for args in encodes:  # the decoder's torch path on the CPU is the decoder's alone
        res = run(*args, "--device", "torch-cpu")
        assert res.exit_code == 2 and "--device torch-cpu: not a device" in res.stderr, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "x.inr"]


def test_encode_warns_of_an_inr_file_under_an_image_name(tmp_path, crop, tiny):
    image.save(crop, tmp_path / "c.png")
    res = run("encode", tmp_path / "c.png", "--preset", tiny, "--steps", 20, "-o", tmp_path / "c.jpg", "-q")
    assert res.exit_code == 0 and "c.jpg: an .inr file will be written under an image's extension" in res.stderr
    assert (tmp_path / "c.jpg").read_bytes()[:3] == b"INR"
    res = run("encode", tmp_path / "c.png", "--preset", tiny, "--steps", 20, "-o", tmp_path / "c.inr", "-q")
    assert res.exit_code == 0 and res.stderr == ""


def test_an_output_folder_takes_the_default_name(tmp_path, crop, tiny):
    """-o naming a folder (with or without its slash) writes the default name in it, for encode
    and decode alike; the warning for an image's extension is not said for an output refused anyway."""
    image.save(crop, tmp_path / "c.png")
    (tmp_path / "out").mkdir()
    res = run("encode", tmp_path / "c.png", "--preset", tiny, "--steps", 20, "-o", f"{tmp_path / 'out'}/", "-q")
    assert res.exit_code == 0 and (tmp_path / "out" / "c.inr").read_bytes()[:3] == b"INR"
    res = run("decode", tmp_path / "out" / "c.inr", "-o", tmp_path / "out", "-q")
    assert res.exit_code == 0 and Image.open(tmp_path / "out" / "c.decoded.png").size == crop.shape[1::-1]
    res = run("encode", tmp_path / "c.png", "--preset", tiny, "-o", tmp_path / "c.png")
    assert res.exit_code == 1 and "warning" not in res.stderr and "is the input" in res.stderr
    res = run("encode", tmp_path / "c.png", "--preset", tiny, "-o", f"{tmp_path / 'c.png'}/")
    assert res.exit_code == 2 and "c.png/: is a file, not a folder" in res.stderr


def test_a_link_to_nothing_as_output_is_refused_before_the_work(tmp_path, crop, tiny, monkeypatch):
    import inrcodec.encoder.pipeline as pipeline

    image.save(crop, tmp_path / "c.png")
    (tmp_path / "c.inr").symlink_to(tmp_path / "nowhere" / "x.inr")
    monkeypatch.setattr(pipeline, "encode_array", lambda *a, **k: pytest.fail("the encoder ran"))
    fails("encode", tmp_path / "c.png", "--preset", tiny, match="c.inr: exists; pass --force")


def test_an_os_error_is_one_line_naming_its_file():
    from inrcodec.cli.guard import message

    assert message(PermissionError(13, "Permission denied", "sub/x.png")) == "sub/x.png: permission denied"
    assert message(ValueError("x.png: no such file")) == "x.png: no such file"


def test_decode_refuses_formats_pillow_only_reads(tmp_path, encoded_scalar):
    """.inr is registered with Pillow to read (our plugin), not to write: one line, before the render."""
    src = tmp_path / "x.inr"
    src.write_bytes(encoded_scalar.data)
    fails("decode", src, "-o", tmp_path / "y.inr", match="y.inr: cannot write INR images")
    assert not (tmp_path / "y.inr").exists()


def test_unknown_versions_list_every_version_the_decoder_reads(tmp_path, encoded_scalar):
    from inrcodec.decoder.render import READABLE
    from inrcodec.format import latent

    assert READABLE == (1, 2, 3, 4, 5, 6, 7, 8, 9) and set(latent.VERSIONS) < set(READABLE)
    data = bytearray(encoded_scalar.data)
    data[len(container.MAGIC)] = 99
    src = tmp_path / "x.inr"
    src.write_bytes(bytes(data))
    line = fails("info", src, match="unsupported .inr format version 99")
    assert line.endswith(f"(this decoder reads versions {', '.join(map(str, READABLE))})")


def test_pruning_with_too_few_steps_is_refused_before_the_fit(tmp_path, crop, monkeypatch):
    """--density prunes, and pruning rewinds to step 100 of the dense fit: fewer steps are a usage
    error at once, not a failure after the dense fit."""
    image.save(crop, tmp_path / "c.png")
    res = run("encode", tmp_path / "c.png", "--preset", "fast", "--steps", 50, "--density", 0.5)
    assert res.exit_code == 2 and "--steps 50: pruning rewinds the weights to step 100" in res.stderr
    assert not (tmp_path / "c.inr").exists()
    with pytest.raises(ValueError, match="give --steps 100 or more"):
        config.override("fast", steps=99, density=0.5)
    assert config.override("fast", steps=100, density=0.5).fit.steps == 100
    assert config.override("fast", steps=50).fit.steps == 50  # no pruning, no rewind
    fast = config.PRESETS["fast"]
    rigl = allow_preset(monkeypatch, "rigl", replace(fast, prune=replace(fast.prune, rule="rigl")))
    assert config.override(rigl, steps=50, density=0.5).prune.density == 0.5  # RigL never rewinds


# --- image modes ----------------------------------------------------------------------------------


def _encode_decode(tmp_path, tiny, pil: Image.Image) -> tuple[np.ndarray, Image.Image]:
    tmp_path.mkdir(exist_ok=True)
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


def test_sixteen_bit_is_scaled_to_8_with_a_warning(tmp_path, tiny):
    arr16 = (smooth(channels=1)[:, :, 0].astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(arr16).save(tmp_path / "in.png")
    res = run("encode", tmp_path / "in.png", "--preset", tiny, "-q")
    assert res.stderr.strip() == f"warning: {tmp_path / 'in.png'}: 16-bit samples are coded at 8 bits"
    px, out = _encode_decode(tmp_path / "again", tiny, Image.fromarray(arr16))
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
    res = run("decode", tmp_path / "missing.inr", "--size", 10, "--width", 5)  # a usage error, before reading
    assert res.exit_code == 2 and "give --size or --width/--height, not both" in res.stderr
    fails(
        "decode",
        tmp_path / "good.inr",
        "--width",
        100000,
        "--height",
        100000,
        match="good.inr: output 100000x100000 is over the",
    )
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
    fails("decode", tmp_path / "x.inr", "-o", tmp_path / "x.png", "--force", match="CRC")
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
    line = fails("decode", src, "-o", tmp_path / "x.png", "--force", match="No space left")
    assert line == f"Error: {tmp_path / 'x.png'}: cannot write (No space left on device)"  # no temporary name
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
    assert res.stderr.strip().splitlines() == [f"Error: {bad}: file truncated in the header"]
    _only(tmp_path, "bad.inr")


# --- the table of bad inputs (docs/pipeline.md) -----------------------------------------------------

BAD_INPUTS = [  # (command line, exit status, the last line of stderr), in a folder made by _bad_input_folder
    ("encode missing.png", 1, "Error: missing.png: no such file"),
    ("encode notes.png", 1, "Error: notes.png: cannot read image (cannot identify image file 'notes.png')"),
    ("encode dot.png", 1, "Error: dot.png: 1x1 is below the 8x8 minimum"),
    ("encode img.png", 1, "Error: img.inr: exists; pass --force to overwrite it, or -o to name another file"),
    ("encode img.png -o img.png --force", 1, "Error: img.png: is the input; name another output with -o"),
    ("encode img.png -o nodir/x.inr", 1, "Error: nodir/x.inr: no such folder 'nodir'"),
    ("encode img.png -o .", 1, "Error: img.inr: exists; pass --force to overwrite it, or -o to name another file"),
    (
        "encode img.png -o nodir/",
        2,
        "Error: Invalid value for '-o' / '--output': nodir/: no such folder (a name ending in a slash names a folder)",
    ),
    ("encode img.png -o img.png/x.inr", 1, "Error: img.png/x.inr: 'img.png' is a file, not a folder"),
    ("encode huge.png", 1, "Error: huge.png: is over the 67108864 pixel limit"),
    ("encode img.png --threads 1000", 2, "Error: Invalid value for '--threads': 1000 is not in the range 1<=x<=256."),
    ("encode img.png --workers 1000", 2, "Error: Invalid value for '--workers': 1000 is not in the range 1<=x<=256."),
    (
        "encode img.png -o -",
        2,
        "Error: Invalid value for '-o' / '--output': -: standard output is not supported; name a file or a folder",
    ),
    (
        "encode grey.png --prior 1",
        1,
        "Error: grey.png: prior 1 is for another network than this preset's on this image: channels 3, not 1 "
        "(the image's)",
    ),
    (
        "encode img.png --preset nope",
        2,
        "Error: Invalid value for '--preset': 'nope' is not one of 'fast', 'low', 'medium', 'high', 'grid-low', "
        "'grid-medium', 'grid-high', 'grid-xhigh', 'grid-max'.",
    ),
    ("encode img.png --density 1.5", 2, "Error: Invalid value for '--density': 1.5 is not in the range 0<x<=1."),
    ("encode img.png --bpp -1", 2, "Error: Invalid value for '--bpp': -1.0 is not in the range x>0."),
    ("encode img.png --bpp nan", 2, "Error: Invalid value for '--bpp': 'nan' is not a finite number"),
    ("encode img.png --bpp inf", 2, "Error: Invalid value for '--bpp': 'inf' is not a finite number"),
    ("encode img.png --steps 0", 2, "Error: Invalid value for '--steps': 0 is not in the range x>=1."),
    (
        "encode img.png -o r.inr --regions stripes",
        1,
        "Error: bad --regions 'stripes'; use grid:RxC, kmeans:K[@F] or labels[@F]",
    ),
    ("decode missing.inr", 1, "Error: missing.inr: no such file"),
    ("decode img.png", 1, "Error: img.png: not an .inr file (bad magic)"),
    (
        "decode img.inr",
        1,
        "Error: img.decoded.png: exists; pass --force to overwrite it, or -o to name another file",
    ),
    ("decode img.inr -o img.xyz", 1, "Error: img.xyz: unknown output image format '.xyz'"),
    (
        "decode img.inr -o -",
        2,
        "Error: Invalid value for '-o' / '--output': -: standard output is not supported; name a file or a folder",
    ),
    ("decode img.inr -o img.inr --force", 1, "Error: img.inr: is the input; name another output with -o"),
    (
        "decode img.inr -o .",
        1,
        "Error: img.decoded.png: exists; pass --force to overwrite it, or -o to name another file",
    ),
]


def _png_header(width: int, height: int) -> bytes:
    """A PNG that is only its header (IHDR, IEND): enough for Pillow to read the size and refuse it."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def bad_input_folder(tmp_path, monkeypatch, encoded_scalar):
    """img.png with its img.inr and img.decoded.png, a text file named notes.png, a 1x1 dot.png,
    a greyscale grey.png;
    the pipeline replaced by a tripwire, since every row must fail before any work."""
    import inrcodec.encoder.pipeline as pipeline

    Image.fromarray(smooth()).save(tmp_path / "img.png")
    (tmp_path / "img.inr").write_bytes(encoded_scalar.data)
    (tmp_path / "img.decoded.png").write_bytes(b"precious")
    (tmp_path / "notes.png").write_text("not an image\n")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    Image.fromarray(smooth()[..., 0]).save(tmp_path / "grey.png")
    (tmp_path / "huge.png").write_bytes(_png_header(20000, 20000))
    monkeypatch.chdir(tmp_path)

    def tripwire(*args, **kwargs):
        raise AssertionError("the encoder ran before the inputs were checked")

    from inrcodec.encoder import latent, latent_rate

    monkeypatch.setattr(pipeline, "encode_array", tripwire)
    monkeypatch.setattr(latent, "fit", tripwire)  # the rows without --preset take the grid family's
    monkeypatch.setattr(latent_rate, "fit_to_cap", tripwire)
    return tmp_path


@pytest.mark.parametrize("line,status,message", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_table(bad_input_folder, line, status, message):
    before = {p.name: p.read_bytes() for p in bad_input_folder.iterdir()}
    res = run(*line.split())
    assert res.exit_code == status, res.output
    assert res.stderr.strip().splitlines()[-1] == message
    assert res.stdout == ""
    assert {p.name: p.read_bytes() for p in bad_input_folder.iterdir()} == before  # nothing written or changed
    doc = (REPO / "docs" / "pipeline.md").read_text()
    assert f"| `{line}`" in doc and f"`{message}`" in doc, "docs/pipeline.md's table is out of date"


def test_sixteen_bit_rgb_png_is_seen_as_16_bit(tmp_path):
    """Pillow opens a 16-bit RGB PNG as 8-bit RGB; probe still tells."""
    rows = b"".join(b"\0" + bytes(range(48)) for _ in range(8))  # 8 rows of 8 RGB pixels at 16 bits
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))  # noqa: E731
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 16, 2, 0, 0, 0))
    (tmp_path / "rgb16.png").write_bytes(png + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    info = image.probe(tmp_path / "rgb16.png")
    assert (info.mode, info.bits, info.warning) == ("RGB", 16, "16-bit samples are coded at 8 bits")
    with pytest.warns(image.PrecisionWarning, match="16-bit"):
        assert image.load(tmp_path / "rgb16.png").shape == (8, 8, 3)
    Image.fromarray(smooth()).save(tmp_path / "rgb8.png")
    assert image.probe(tmp_path / "rgb8.png").warning is None


def test_forced_overwrite_replaces_and_unforced_never_does(tmp_path, encoded_scalar):
    src = tmp_path / "x.inr"
    src.write_bytes(encoded_scalar.data)
    (tmp_path / "x.decoded.png").write_bytes(b"precious")
    fails("decode", src, match="exists; pass --force")
    assert (tmp_path / "x.decoded.png").read_bytes() == b"precious"
    assert run("decode", src, "--force", "-q").exit_code == 0
    assert image.load(tmp_path / "x.decoded.png").shape == (32, 48, 3)


def test_an_output_that_appears_during_the_work_is_not_replaced(tmp_path, encoded_scalar, monkeypatch):
    """The check before the work passed; another process then made the file: it is kept."""
    from inrcodec.cli import paths

    src = tmp_path / "x.inr"
    src.write_bytes(encoded_scalar.data)
    real = paths.check_output

    def then_someone_writes(output, force, source=None):
        real(output, force, source)
        output.write_bytes(b"theirs")

    monkeypatch.setattr(paths, "check_output", then_someone_writes)
    fails("decode", src, match="x.decoded.png: exists; not overwritten")
    assert (tmp_path / "x.decoded.png").read_bytes() == b"theirs"
    _only(tmp_path, "x.inr", "x.decoded.png")


@pytest.mark.parametrize("where", ["before the guard", "inside the work"])
def test_ctrl_c_is_always_130_and_one_line(tmp_path, monkeypatch, where):
    from inrcodec.cli import paths

    Image.fromarray(smooth()).save(tmp_path / "img.png")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "before the guard":  # e.g. while torch is being imported
        monkeypatch.setattr(paths, "encoded_name", interrupt)
    else:
        monkeypatch.setattr(image, "load", interrupt)
    res = run("encode", tmp_path / "img.png")
    assert res.exit_code == 130 and res.stderr == "interrupted; no output written\n"
    _only(tmp_path, "img.png")


def test_encode_quiet_prints_only_the_result_line(tmp_path, crop, tiny):
    image.save(crop, tmp_path / "c.png")
    res = run("encode", tmp_path / "c.png", "--preset", tiny, "-q")
    assert res.exit_code == 0 and res.stderr == ""
    assert re.fullmatch(r".*c\.inr: \d+ bytes, [\d.]+ bpp, [\d.]+ dB PSNR\n", res.stdout)


def test_a_log_gets_lines_of_progress_where_a_terminal_gets_a_bar(tmp_path, crop, tiny, monkeypatch):
    """stderr to a file (CliRunner's is not a terminal): a line per stage and one per interval
    (0 here: every report), the last the fit's end; a bar there would have left a blank line."""
    from inrcodec.cli import progress

    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    image.save(crop, tmp_path / "c.png")
    res = run("encode", tmp_path / "c.png", "--preset", tiny)
    assert res.exit_code == 0, res.output
    lines = res.stderr.strip().splitlines()
    parsed = [re.fullmatch(r"(fit|quantize)(?: (\d+)/(\d+) [\d.]+ dB)?", x) for x in lines]
    assert all(parsed), lines  # "stage done/total PSNR", or a stage's name when it begins at the end
    steps = [(int(m[2]), int(m[3])) for m in parsed if m[2]]
    assert len(steps) > 2 and steps == sorted(steps), lines
    assert [m[1] for m in parsed][0] == "fit" and [m[1] for m in parsed][-1] == "quantize", lines


def test_a_resumed_runs_bar_counts_from_where_it_resumed(monkeypatch):
    """On a terminal, ``Bar(resumed=True)`` (prior train's) starts at the first report's step, so
    its ETA is this call's; a plain Bar counts from 0 and starts again when the steps do (rate
    control's next point)."""
    from inrcodec.cli import progress

    monkeypatch.setattr(progress, "to_log", lambda: False)
    bar = progress.Bar(resumed=True)
    bar("outer step", 7, 10, 20.0)
    bar("outer step", 8, 10, 21.0)
    assert (bar.bar.length, bar.bar.pos) == (4, 2) and bar.label == "outer step 8/10 21.00 dB"
    bar("outer step", 3, 10, 19.0)  # steps going back: a new loop, counted from 0 on the whole length
    assert (bar.bar.length, bar.bar.pos) == (10, 3)
    bar.close()
    plain = progress.Bar()
    plain("fit", 7, 10, 20.0)
    plain("fit", 2, 10, 22.0)
    assert (plain.bar.length, plain.bar.pos) == (10, 2) and plain.label == "fit 22.00 dB"
    plain.close()


@pytest.mark.parametrize("line", ["demo -o -", "decode -", "info -", "lottery -", "prior train -o -"])
def test_a_dash_is_refused_as_a_file_or_folder_name(line):
    """``-`` means standard input or output by convention; no command reads or writes them, so it
    is a usage error, not a file or folder called ``-`` (demo -o - made one)."""
    res = run(*line.split())
    assert res.exit_code == 2 and "-: standard input and output are not supported" in res.stderr


def test_the_package_namespace_is_its_api():
    import inrcodec

    names = {n for n in dir(inrcodec) if not n.startswith("_")}
    assert {"encode", "decode", "FormatError", "FORMAT_VERSION"} <= names
    assert not names & {"np", "os", "replace", "annotations", "Path"}


def test_a_file_needing_a_prior_this_build_lacks_is_one_line_naming_it(tmp_path):
    from dataclasses import replace as dc_replace

    from helpers import naming_prior, synthetic_stream

    header, masks, codes = synthetic_stream()
    (tmp_path / "x.inr").write_bytes(naming_prior(container.write(dc_replace(header, prior=1), masks, codes), 4242))
    line = fails("decode", tmp_path / "x.inr", match="prior 4242")
    assert line.startswith(f"Error: {tmp_path / 'x.inr'}: the file needs prior 4242, which this build lacks")
    _only(tmp_path, "x.inr")


def test_decode_and_info_read_a_version_5_latent_grid_file(tmp_path):
    """The latent-grid family's files go through the same commands (tests/golden's v5 file)."""
    src = GOLDEN / "format_v5_checkerboard.inr"
    out = tmp_path / "v5.png"
    assert run("decode", src, "-o", out, "--size", "64").exit_code == 0
    assert image.load(out).shape == (48, 64, 3)
    info = json.loads(run("info", src, "--json").stdout)
    assert info["format_version"] == 5 and info["header"]["context"] == 1
    assert [lv["size"] for lv in info["levels"]] == [[32, 24], [16, 12], [8, 6]]
    assert sum(info["sections"].values()) < info["bytes"]
    # Bytes per level: the levels' information adds up to the latent section, less its 2-byte
    # bound and the last word's padding.
    per_level = sum(lv["bytes"] for lv in info["levels"])
    assert info["sections"]["latents"] - 2 - 4 <= per_level <= info["sections"]["latents"]
    assert all(lv["bytes"] > 0 for lv in info["levels"])
    assert "latent grids" in run("info", src).stdout
    bad = tmp_path / "cut.inr"
    bad.write_bytes(src.read_bytes()[:-7])
    fails("decode", bad, "-o", tmp_path / "cut.png", match="CRC")
    assert not (tmp_path / "cut.png").exists()


def test_encode_with_a_latent_grid_preset_writes_version_9(tmp_path, crop):
    """grid-low starts from a shipped init, so its file (version 9: the four-pass context model)
    codes the networks from it."""
    src = tmp_path / "crop.png"
    image.save(crop, src)
    out = tmp_path / "crop.inr"
    stats = json.loads(run("encode", src, "-o", out, "--preset", "grid-low", "--steps", "30", "--json").stdout)
    data = out.read_bytes()
    assert data[4] == 9 and stats["format_version"] == 9 and stats["bytes"] == len(data)
    assert sum(stats["sections"].values()) < len(data)
    assert 0 < stats["cpu_seconds"] and 0 < stats["wall_seconds"] < 600  # a GPU's fit shows in the wall time
    assert (stats["width"], stats["height"], stats["channels"], stats["device"]) == (48, 32, 3, "cpu")
    assert run("decode", out, "-o", tmp_path / "back.png").exit_code == 0
    assert json.loads(run("info", out, "--json").stdout)["init"] == "quarter-4p-v1"
    assert "residuals from shipped init 5 (quarter-4p-v1)" in run("info", out).stdout
    at = 5 + 20  # the init's u16 after version 7's header: a file naming an init this build lacks
    body = data[:at] + (4242).to_bytes(2, "little") + data[at + 2 : -4]
    (tmp_path / "other.inr").write_bytes(body + zlib.crc32(body).to_bytes(4, "little"))
    line = fails("decode", tmp_path / "other.inr", match="latent init 4242")
    assert line.startswith(f"Error: {tmp_path / 'other.inr'}: the file needs latent init 4242, which this build lacks")
    assert not (tmp_path / "other.png").exists()
    res = run("encode", src, "-o", tmp_path / "x.inr", "--preset", "grid-low", "--density", "0.5")
    assert res.exit_code == 2 and "--density: not for the latent-grid presets" in res.stderr  # a usage error
    assert not (tmp_path / "x.inr").exists()
    res = run("encode", src, "-o", tmp_path / "x.inr", "--preset", "grid-low", "--device", "mps")
    said = "trains on cpu or cuda" if torch.backends.mps.is_available() else "no MPS device here"
    assert res.exit_code == 2 and said in res.stderr and not (tmp_path / "x.inr").exists()
    if not torch.cuda.is_available():  # checked before any work, as the SIREN's --device
        res = run("encode", src, "-o", tmp_path / "x.inr", "--preset", "grid-low", "--device", "cuda")
        assert res.exit_code == 2 and "no CUDA device here" in res.stderr and not (tmp_path / "x.inr").exists()
    before = out.read_bytes()
    fails("encode", src, "-o", out, "--preset", "grid-low", "--steps", "30", match="exists")
    assert out.read_bytes() == before


@pytest.mark.parametrize("preset", ["fast", "grid-low"])
def test_one_image_is_encoded_on_one_thread_unless_threads_says_otherwise(tmp_path, crop, preset, monkeypatch):
    """A single encode fits on one torch thread, as a batch runs each image (so the two write the
    same bytes, and a busy second core cannot slow it tenfold), or on --threads, whatever the
    process had before; that setting is back afterwards, and --json says which ran. Both families."""
    from inrcodec.encoder import latent, pipeline

    during = []

    def counting(fit):
        return lambda *a, **k: during.append(torch.get_num_threads()) or fit(*a, **k)

    monkeypatch.setattr(pipeline, "encode_array", counting(pipeline.encode_array))
    monkeypatch.setattr(latent, "fit", counting(latent.fit))
    src = tmp_path / "crop.png"
    image.save(crop, src)
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # what the process runs on otherwise (conftest's is one)
    try:
        for extra, n in (((), 1), (("--threads", "2"), 2)):
            res = run(
                "encode", src, "-o", tmp_path / "x.inr", "--preset", preset, "--steps", 20, "--json", "--force", *extra
            )
            assert res.exit_code == 0, res.output
            assert during[-1] == n and json.loads(res.stdout)["threads"] == n
            assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_steps_with_a_rate_cap_on_a_ladder_preset_is_a_usage_error(tmp_path):
    """--bpp on low/medium/high chooses the ladder width, and on the grid-* presets (or none) the
    ladder point, each with its own steps: --steps would be ignored, so it is refused (exit 2, one
    line, nothing written); with --density the cap prunes."""
    src = tmp_path / "a.png"
    image.save(np.full((16, 16, 3), 99, np.uint8), src)
    res = run("encode", src, "-o", tmp_path / "a.inr", "--preset", "medium", "--bpp", "0.5", "--steps", "10")
    assert res.exit_code == 2 and "--steps with --bpp" in res.stderr
    for preset in ((), ("--preset", "grid-high")):
        res = run("encode", src, "-o", tmp_path / "a.inr", *preset, "--bpp", "0.5", "--steps", "10")
        assert res.exit_code == 2 and "--steps: not with --bpp on the grid-* presets" in res.stderr
    _only(tmp_path, "a.png")


TINY_LADDER = tuple(
    config.LatentConfig(lam=lam, levels=3, hidden=8, steps=30, batch=256, lr_latent=0.1) for lam in (1e-1, 1e-2, 1e-4)
)


@pytest.fixture
def tiny_cap(monkeypatch):
    """--bpp on the grid family searches TINY_LADDER (typical rates: what its files take on a
    48x32 crop of the sample, so the first guess is near); the real ladder's fits take minutes."""
    cli_main = sys.modules["inrcodec.cli.main"]  # the module (inrcodec.cli.main is the command group)
    typical = (1.5, 1.7, 3.5)  # the files take 1.54, 1.67 and 3.46 bpp

    def tiny(bpp, seed=None):
        points = TINY_LADDER if seed is None else tuple(replace(p, seed=seed) for p in TINY_LADDER)
        return config.LatentCap(bpp, points, typical)

    monkeypatch.setattr(cli_main, "latent_cap", tiny)
    return tiny


def test_a_rate_cap_on_the_grid_family_writes_the_best_ladder_file_under_it(tmp_path, crop, tiny_cap, monkeypatch):
    """No --preset (or any grid-*) with --bpp: the ladder's points are fitted until the best file
    under the cap; it is that point's own file, its JSON lists each point tried, and a cap below
    the lowest point's file is one line naming the image, exit 1, nothing written."""
    from inrcodec.encoder import latent
    from inrcodec.encoder.latent_rate import detail

    src = tmp_path / "crop.png"
    image.save(crop, src)
    cli_main = sys.modules["inrcodec.cli.main"]
    guess = (math.log(1.1) - 0.5 * math.log(detail(crop)), 0.5)  # this crop's files at 1.1x typical
    monkeypatch.setattr(cli_main, "latent_cap", lambda bpp, seed=None: replace(tiny_cap(bpp, seed), guess=guess))
    own = [latent.fit(crop, p).data for p in TINY_LADDER]
    assert [len(d) for d in own] == sorted({len(d) for d in own})  # three rates, in order
    bpp = (len(own[1]) + len(own[2])) * 4 / crop[..., 0].size  # between the upper two files
    res = run("encode", src, "-o", tmp_path / "a.inr", "--bpp", bpp, "--json")
    assert res.exit_code == 0, res.output
    stats = json.loads(res.stdout)
    assert (tmp_path / "a.inr").read_bytes() == own[1]
    assert stats["lam"] == TINY_LADDER[1].lam and stats["preset"] is None and stats["format_version"] == 8
    assert [t["fits"] for t in stats["rate_control"]][-1] and stats["bytes"] <= bpp * crop[..., 0].size / 8
    assert stats["cpu_seconds"] == round(sum(t["cpu_seconds"] for t in stats["rate_control"]), 3)
    assert stats["rate_guess"] == 1.1  # the first guess, read from the crop's detail
    res = run("encode", src, "-o", tmp_path / "b.inr", "--preset", "grid-max", "--bpp", bpp)
    assert res.exit_code == 0 and (tmp_path / "b.inr").read_bytes() == own[1]
    assert "under the cap" in res.stderr  # a line per point fitted, after the guess's
    assert "its files expected at 1.10x the photos' typical rates" in res.stderr
    low = len(own[0]) * 4 / crop[..., 0].size  # half the lowest point's file
    line = fails("encode", src, "-o", tmp_path / "c.inr", "--bpp", low, "-q", match="cannot reach")
    assert line == (
        f"Error: {src}: cannot reach {low:g} bpp: the ladder's lowest point (λ 0.1) took "
        f"{len(own[0]) * 8 / crop[..., 0].size:.4f} bpp ({len(own[0])} bytes, the cap {len(own[0]) // 2})"
    )
    _only(tmp_path, "crop.png", "a.inr", "b.inr")


def test_info_says_a_version_6_file_takes_its_mask_from_its_prior():
    res = run("info", GOLDEN / "format_v6_shared_mask.inr")
    assert res.exit_code == 0, res.output
    assert ".inr version 6" in res.output and "density 0.500" in res.output
    assert "prior    2 (the weights are residuals from it; the file's mask is the prior's (format v6))" in res.output
    assert "section  masks" not in res.output


def test_decode_loads_neither_the_experiment_commands_nor_torch(tmp_path):
    """`inrcodec decode` on the CPU imports what decoding needs: the lottery, RTL and prior
    commands load only when named (cli.main.LAZY_COMMANDS), torch not at all."""
    src = tmp_path / "x.inr"
    src.write_bytes(synthetic_file())
    script = (
        "import sys\n"
        "from inrcodec.cli.main import main\n"
        "main(['decode', sys.argv[1], '-o', sys.argv[2], '--device', 'cpu', '-q'], standalone_mode=False)\n"
        "lazy = ('inrcodec.experiments', 'inrcodec.cli.prior')\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(lazy)]\n"
        "sys.exit(f'loaded: {bad}' if bad else 0)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run(
        [sys.executable, "-c", script, str(src), str(tmp_path / "x.png")], capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "x.png").exists()
    assert {"lottery", "rtl", "prior"} <= set(main.list_commands(click.Context(main)))


@pytest.mark.parametrize(
    "args",
    [("encode", ""), ("decode", ""), ("info", ""), ("encode", "img.png", "-o", ""), ("decode", "img.inr", "-o", "")],
    ids=lambda a: " ".join(repr(x) if not x else x for x in a),
)
def test_an_empty_path_is_a_usage_error_not_the_current_folder(bad_input_folder, args):
    """pathlib reads '' as '.': decode '' was a traceback, info '' said '.: no such file'."""
    before = {p.name: p.read_bytes() for p in bad_input_folder.iterdir()}
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines()[-1].endswith(": an empty path names no file")
    assert {p.name: p.read_bytes() for p in bad_input_folder.iterdir()} == before


def test_the_default_preset_is_grid_medium_and_an_option_only_the_siren_has_picks_medium(tmp_path, monkeypatch):
    """No --preset: the latent family's grid-medium (and with --bpp, its rate control: the test
    above); with --density, a coder, --prior or --regions: the SIREN's medium (README,
    docs/pipeline.md); --device alone keeps grid-medium. The Python API alike."""
    import inrcodec
    from inrcodec.encoder import latent, pipeline

    src = tmp_path / "a.png"
    image.save(smooth(), src)
    res = run("encode", src, "-o", tmp_path / "g.inr", "--steps", 20, "--json")
    assert res.exit_code == 0, res.output
    assert (json.loads(res.stdout)["preset"], json.loads(res.stdout)["format_version"]) == ("grid-medium", 8)
    seen = []

    def tripwire(arr, cfg, *args, **kwargs):
        seen.append(cfg)
        raise KeyboardInterrupt  # the preset is all this test wants; the fit is another test's

    from inrcodec.encoder import rtl

    monkeypatch.setattr(pipeline, "encode_array", tripwire)
    monkeypatch.setattr(rtl, "encode_regions", tripwire)
    image.save(np.zeros((16, 16, 1), np.uint8), tmp_path / "labels.png")
    options = [
        ("--density", "0.5"), ("--weight-coder", "sinr"), ("--entropy-coder", "range"), ("--prior", "none"),
        ("--adaround", "5"), ("--regions", "grid:2x2"),
        ("--regions", "labels", "--region-map", tmp_path / "labels.png"),
    ]  # fmt: skip
    for option in options:  # every option of the command's siren_only, each alone
        assert run("encode", src, "-o", tmp_path / "s.inr", *option).exit_code == 130, option
    assert [c.arch.hidden for c in seen] == [config.PRESETS["medium"].arch.hidden] * len(options)
    res = run("encode", src, "-o", tmp_path / "s.inr", "--device", "cuda:99")  # grid-medium's, checked first
    assert res.exit_code == 2 and "--device cuda:99" in res.stderr and not seen[len(options) :]
    res = run("encode", src, "-o", tmp_path / "g.inr", "--device", "cpu", "--steps", 20, "--json", "--force")
    assert res.exit_code == 0 and json.loads(res.stdout)["preset"] == "grid-medium", res.output
    monkeypatch.setattr(latent, "fit", tripwire)
    with pytest.raises(KeyboardInterrupt):
        inrcodec.encode(smooth())
    assert seen[-1] == config.LATENT_PRESETS["grid-medium"]
    for kwargs in ({"weight_coder": "sinr"}, {"entropy_coder": "range"}):
        with pytest.raises(KeyboardInterrupt):
            inrcodec.encode(smooth(), **kwargs)
        assert seen[-1].arch.hidden == config.PRESETS["medium"].arch.hidden, kwargs
    if torch.cuda.is_available():
        with pytest.raises(KeyboardInterrupt):
            inrcodec.encode(smooth(), device="cuda")  # a device alone: the grid family's fit
        assert seen[-1] == config.LATENT_PRESETS["grid-medium"]
    else:  # refused before any work, as on the command line
        with pytest.raises(ValueError, match="no CUDA device here"):
            inrcodec.encode(smooth(), device="cuda")
    if torch.backends.mps.is_available():
        with pytest.raises(KeyboardInterrupt):
            inrcodec.encode(smooth(), device="mps")  # a device only the SIREN takes picks its default
        assert seen[-1].arch.hidden == config.PRESETS["medium"].arch.hidden
    else:  # refused before any work, as on the command line (torch's own error was an AssertionError)
        with pytest.raises(ValueError, match="device mps: no MPS device here"):
            inrcodec.encode(smooth(), device="mps")
    for bad, said in (("cuda:99", "cuda:99"), ("tpu", "not a device"), ("meta", "not supported"), (1.5, "not a")):
        with pytest.raises(ValueError, match=said):  # the SIREN's presets too, not only the grid's
            inrcodec.encode(smooth(), preset="medium", device=bad)
    assert seen[-1].arch.hidden == config.PRESETS["medium"].arch.hidden  # nothing fitted since
    seen.clear()
    with pytest.raises(KeyboardInterrupt):  # "" is the default choice, as before the check
        inrcodec.encode(smooth(), preset="medium", device="")
    assert seen[-1].arch.hidden == config.PRESETS["medium"].arch.hidden
    _only(tmp_path, "a.png", "g.inr", "labels.png")


def test_a_name_the_system_cannot_look_up_is_one_line_not_a_traceback(tmp_path):
    """A path whose lookup itself fails (a name over the file system's limit) is neither a folder
    nor an image: one line naming it, exit 1, for encode and decode alike."""
    long = tmp_path / ("x" * 300 + ".png")
    fails("encode", long, "-o", tmp_path / "a.inr", match="file name too long")
    fails("decode", long.with_suffix(".inr"), "-o", tmp_path / "a.png", match="file name too long")
    Image.fromarray(smooth()).save(tmp_path / "a.png")
    fails("encode", tmp_path / "a.png", "-o", long, match="file name too long")  # an image's extension as output
    (tmp_path / "a.png").unlink()
    _only(tmp_path)


def test_encode_adaround_option(tmp_path):
    """--adaround STEPS runs AdaRound after fine-tuning (the file records nothing of it: a file of
    the same format) and is refused, before any work, where it cannot run."""
    src = tmp_path / "a.png"
    image.save(smooth(), src)
    res = run("encode", src, "-o", tmp_path / "a.inr", "--preset", "fast", "--steps", 40, "--adaround", 30, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["preset"] == "fast"
    for option, said in (
        (("--weight-coder", "sinr"), "not with the sinr weight coder"),
        (("--weight-coder", "auto"), "not with the auto weight coder"),
        (("--regions", "grid:2x2"), "not with --regions"),
        (("--preset", "grid-low"), "not for the latent-grid presets"),
    ):
        res = run("encode", src, "-o", tmp_path / "b.inr", "--adaround", 30, *option)
        assert res.exit_code == 2 and said in res.stderr, (option, res.output)
    res = run("encode", src, "-o", tmp_path / "b.inr", "--adaround", -1)
    assert res.exit_code == 2 and "--adaround" in res.stderr
    _only(tmp_path, "a.png", "a.inr")
