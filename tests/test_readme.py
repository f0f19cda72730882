"""README.md's "Use" lines, run in order as a newcomer would: they must work, and the source image
must come out of them byte for byte as it went in (no command may write over it)."""

from __future__ import annotations

import hashlib
import re
import shlex

import numpy as np
from click.testing import CliRunner
from helpers import REPO, tiny_config
from test_cli import allow_preset, tiny_cap  # noqa: F401  (tiny_cap: a fixture)

from inrcodec import image
from inrcodec.cli import main


def use_lines() -> list[list[str]]:
    """The shell lines of README's "## Use" section (indented ``inrcodec ...``), comments dropped."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Use", 1)[1].split("\n## ", 1)[0]
    lines = [m.group(1) for m in re.finditer(r"^ {4}(inrcodec .*)$", section, flags=re.M)]
    return [shlex.split(line, comments=True)[1:] for line in lines]


def test_the_use_section_is_what_we_think_it_is():
    commands = [args[0] for args in use_lines()]
    assert commands.count("encode") >= 2 and "decode" in commands and "info" in commands


def test_readme_use_lines_keep_the_source_image(tmp_path, monkeypatch, tiny_cap):  # noqa: F811
    y, x = np.mgrid[0:24, 0:32] / 32
    arr = np.round(np.stack([0.5 + 0.4 * np.sin(4 * x), 0.5 + 0.4 * np.cos(3 * y), x], axis=2) * 255)
    image.save(arr.astype(np.uint8), tmp_path / "img.png")
    before = hashlib.sha256((tmp_path / "img.png").read_bytes()).hexdigest()
    # The presets the lines name take minutes; a tiny one keeps their meaning (fit, prune, code).
    tiny = allow_preset(monkeypatch, "tiny", tiny_config(steps=60, density=1.0, qat_steps=0))
    monkeypatch.chdir(tmp_path)
    for args in use_lines():
        if "--bpp" in args:  # the grid ladder's rate control, on tiny_cap's tiny points
            args[args.index("--bpp") + 1] = "12"  # those points' files take 6-9 bpp of this picture
        elif args[0] == "encode":
            args = [*args, "--preset", tiny]
        if "--size" in args:
            args[args.index("--size") + 1] = "64"  # 1024 is just slower
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, (args, res.output, res.stderr)
        assert hashlib.sha256((tmp_path / "img.png").read_bytes()).hexdigest() == before, args
    assert {"img.inr", "img.decoded.png"} <= {p.name for p in tmp_path.iterdir()}
