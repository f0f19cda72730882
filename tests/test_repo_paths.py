"""No committed file names an absolute path of the machine it was made on.

Results, logs and docs once recorded the checkout's absolute path (``<root>/main/benchmarks/...``)
and the shared data's (``<root>/shared/kodak``): paths that mean nothing on another machine and
leak how this one is laid out. Every path a committed file needs is written relative to the
repository root (``benchmarks/results/kodak``, ``../shared/kodak``; ``benchmarks.runner.repo_path``).

The check reads every text file ``git ls-files`` lists (binary files, those with a NUL byte in their
first 8 KiB such as the PNG plots, are skipped) and flags

- a path that starts at a typical root of machine-local files (``ROOTS``: work, root, home, tmp,
  Users, mnt, scratch, private, var/folders), followed by a name. It counts only where the ``/``
  starts a path: at the start of a line or after a space, a quote, a bracket, ``=`` or ``,``. So
  a root after a host name (``https://example.org/home/x``), inside a relative path (``a/tmp/b``,
  ``../tmp/x``), after ``~`` or in a ``file://`` URL is not flagged, and a bare root without a
  name after it is not either;
- the repository's own absolute path and its parent's on the machine running the test, wherever
  they appear (whatever the root is called there), when that path is long enough to be specific.

The planted examples of its own unit test are written with ``@`` for ``/``, so this file passes too.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOTS = ("work", "root", "home", "tmp", "Users", "mnt", "scratch", "private", "var/folders")
# A path start: line start or a delimiter, then /<root>/ and a name character.
ABSOLUTE = re.compile(r"(?:^|(?<=[\s\"'`(\[{<=,]))/(?:" + "|".join(ROOTS) + r")/[\w.-]", re.M)


def machine_paths(text: str, local: tuple[str, ...] = ()) -> list[str]:
    """The absolute machine paths ``text`` names: each hit's line, stripped (empty: none)."""
    lines = text.splitlines()
    hits = []
    for i, line in enumerate(lines):
        if ABSOLUTE.search(line) or any(p in line for p in local):
            hits.append(f"{i + 1}: {line.strip()[:160]}")
    return hits


def _local_roots() -> tuple[str, ...]:
    """This checkout's absolute path and its parent's (where the shared data sits), as prefixes
    followed by ``/``; only when specific (two components or more), never ``/``."""
    out = []
    for p in (REPO, REPO.parent):
        if len(p.parts) >= 3:
            out.append(str(p) + "/")
    return tuple(out)


def _tracked_text_files() -> list[Path]:
    try:
        res = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout (or no git)")
    files = []
    for name in res.stdout.decode().split("\0"):
        path = REPO / name
        if name and path.is_file():  # a tracked file deleted in the working tree is not there to read
            with open(path, "rb") as f:
                if b"\0" not in f.read(8192):
                    files.append(path)
    return files


def _planted(line: str) -> str:
    """A line with machine paths, written here with ``@`` for their leading ``/`` so that this file
    does not name any itself (the test below reads it too)."""
    return line.replace("@", "/")


def test_the_matcher_flags_machine_paths_and_nothing_else():
    flagged = [
        "1392 jobs to run, 0 already in @work/main/benchmarks/results/kodak/rows, 2 worker(s)",
        '  "images_dir": "@work/shared/kodak",',
        "python -m benchmarks.kodak_rd --out @tmp/kodak-quick",
        "--images=@home/alice/photos",
        "see (@Users/bob/inrcodec/README.md)",
        "cache in @root/.cache/inrcodec",
        "@mnt/data/kodak/kodim01.png",
    ]
    for line in map(_planted, flagged):
        assert machine_paths(line), line
    clean = [
        "https:@@example.org@home@index.html",
        "see http:@@host@tmp@file and github.com:org@work@repo",
        "benchmarks@results@kodak@rows",
        '  "images_dir": "..@shared@kodak",',
        "a@tmp@b, ~@work@x and ..@tmp@x",
        "file:@@@tmp@x",
        "the @tmp folder; mkdir @home",
        "kodak@work@index",
    ]
    for line in map(_planted, clean):
        assert not machine_paths(line), line
    assert machine_paths("x = 'C:/data/main/y'", ("C:/data/main/",))  # the local checkout, whatever its root


def test_no_committed_file_names_an_absolute_path_of_this_machine():
    local = _local_roots()
    bad = {}
    for path in _tracked_text_files():
        hits = machine_paths(path.read_text(encoding="utf-8", errors="replace"), local)
        if hits:
            bad[str(path.relative_to(REPO))] = hits[:3]
    assert not bad, f"absolute machine paths (record them relative to the repository root): {bad}"
