"""Reading a latent file's coded latents, and the encoder's rate lookups over them, with an earlier
revision's ``format/checkerboard.py`` against the working tree's, side by side in one process.

    python -m benchmarks.latent_read --inr kodim23-grid-medium.inr --before 5d07add \
        --out benchmarks/results/latent-read.json

The earlier module is read with ``git show`` and loaded beside the working tree's (it imports the
rest of the package from the working tree, which it shares unchanged). Each repeat runs both,
alternating (before, after, after, before, ...) so that a change of load falls on both:
``read``, decoding the LATENTS section (``decode_latents``: the context network, the tables, the
range decoder and the check that the words are the latents' one code; the block is the file's
latents coded again by the working tree, which is the file's own block, the code being one per
content); ``lookups``, the rates
the encoder's rate-distortion rounding asks for (``moved_bits`` of every pass of the three finest
levels, four times each with one ``PassCache`` a level, as ``encoder/latent_rdo.py`` does). Both
modules must give the file's latents at every repeat, and the same rates (the last repeat's).
Records each run's seconds, the medians and their ratio; the load average at start and end.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.runner import REPO, alternating, command_line, provenance

MOVES = (0, -1, 1)  # the deltas the rounding asks about (encoder/latent_rdo.py's 0 and its moves)


def _module(rev: str, folder: Path):
    """``inrcodec/format/checkerboard.py`` of git revision ``rev``, loaded as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{rev}:inrcodec/format/checkerboard.py"], cwd=REPO, check=True, capture_output=True
    ).stdout
    path = folder / f"checkerboard_{rev}.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _read(cb, block: bytes, sizes, channels: int, arm, scheme) -> tuple[float, list[np.ndarray]]:
    t = time.perf_counter()
    latents = cb.decode_latents(block, sizes, channels, arm, scheme)
    return time.perf_counter() - t, latents


def _lookups(cb, latents, arm, scheme) -> tuple[float, list[np.ndarray]]:
    t = time.perf_counter()
    rates = []
    for level in range(min(3, len(latents))):
        cache = cb.PassCache()
        for group in range(len(scheme.groups)):
            for _ in range(4):
                rates.append(cb.moved_bits(latents, arm, level, group, MOVES, scheme, cache))
    return time.perf_counter() - t, rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inr", type=Path, required=True, help="a latent file with a context model (versions 5, 7-9)")
    ap.add_argument("--before", default="HEAD", help="the earlier revision (git)")
    ap.add_argument("--repeats", type=int, default=15, help="runs of each module")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/latent-read.json"))
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats: at least 1")
    if not args.inr.is_file():
        ap.error(f"--inr: {args.inr}: no such file")

    from inrcodec.format import checkerboard, latent

    data = args.inr.read_bytes()
    f = latent.read(data)
    if f.context is None:
        raise SystemExit(f"{args.inr}: no context model (version 5, 7, 8 or 9 files with one only)")
    h = f.header
    sizes, channels = h.level_sizes(), h.latent_channels
    block = checkerboard.encode_latents(f.latents, f.context, h.scheme)  # the file's own block (one code)
    with tempfile.TemporaryDirectory() as tmp:
        old = _module(args.before, Path(tmp))
        mods = {"before": old, "after": checkerboard}
        schemes = {
            "before": old.FOUR_PASS if h.scheme is checkerboard.FOUR_PASS else old.CHECKERBOARD,
            "after": h.scheme,
        }
        runs: dict[str, dict[str, list[float]]] = {w: {"read_s": [], "lookups_s": []} for w in mods}
        load_start = [round(x, 2) for x in os.getloadavg()]
        for which in alternating(args.repeats):
            cb, scheme = mods[which], schemes[which]
            seconds, latents = _read(cb, block, sizes, channels, f.context, scheme)
            if not all(np.array_equal(a, b) for a, b in zip(latents, f.latents)):
                raise SystemExit(f"{which}: the latents read differ from the file's")
            runs[which]["read_s"].append(seconds)
            seconds, rates = _lookups(cb, f.latents, f.context, scheme)
            runs[which]["lookups_s"].append(seconds)
            if which == "after":
                mine = rates
            else:
                theirs = rates
        if not all(np.array_equal(a, b) for a, b in zip(mine, theirs)):
            raise SystemExit("the two modules' rates differ")
    medians = {w: {k: statistics.median(v) for k, v in r.items()} for w, r in runs.items()}
    doc = {
        "before": args.before,
        "inr": {"name": args.inr.name, "bytes": len(data), "version": h.version(), "levels": sizes},
        "command": " ".join(command_line()),
        "provenance": provenance(),
        "load_start": load_start,
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "median_s": medians,
        "speedup": {k: medians["before"][k] / medians["after"][k] for k in ("read_s", "lookups_s")},
        "identical": True,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    for k in ("read_s", "lookups_s"):
        print(f"{k}: {medians['before'][k] * 1e3:.1f} -> {medians['after'][k] * 1e3:.1f} ms "
              f"({doc['speedup'][k]:.2f}x)", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
