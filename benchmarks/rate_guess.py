"""The grid family's rate control's first guess (``config.LATENT_RATE_GUESS``), fitted on
photographs that are neither the tuning photos nor Kodak.

Encodes the images at each preset with ``inrcodec encode`` (a batch per preset into
``OUT/files/PRESET``: resumable, a rerun skips what is done), then fits
log(bpp / config.LATENT_RATE_BPP[point]) = a + b log(detail) by least squares over every image and
point (detail: ``encoder.latent_rate.detail``) and writes ``rate-guess.json`` and ``.md``: a, b,
the spread left, image by image. ``--fit-only`` refits the committed batch lines without encoding.

    python -m benchmarks.rate_guess [--images ../shared/photos --first 9 --last 20]
        [--presets grid-medium,grid-high] [--workers 2] [--fit-only] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from benchmarks import markdown as md
from benchmarks.runner import (
    RESULTS,
    command_line,
    encode_batch,
    photo_options,
    photos,
    provenance,
    repo_path,
    write_report,
)
from inrcodec import config
from inrcodec.encoder.latent_rate import DETAIL_FLOOR, detail
from inrcodec.image import load

OUT = RESULTS / "latent" / "rate-guess"


def rows(folder: Path) -> dict[str, float]:
    """image stem -> bpp, from a batch's lines (its latest line per output)."""
    out = {}
    for line in (folder / "inrcodec-batch.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[Path(r["source"]).stem] = r["bpp"]
    return out


def fit(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(a, b, the residuals' standard deviation) of y = a + b x by least squares."""
    x, y = np.array(samples).T
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b), float(np.std(y - (a + b * x)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    photo_options(p, 9, 20, "first photo number, never a tuning photo's")
    p.add_argument(
        "--presets",
        default="grid-medium,grid-high",
        help="grid presets, comma-separated (default: the two that config.LATENT_RATE_GUESS was fitted on)",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--fit-only", action="store_true", help="refit the batches' lines in OUT/files, encode nothing")
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {repo_path(OUT)})")
    args = p.parse_args(argv)
    presets = args.presets.split(",")
    unknown = [n for n in presets if n not in config.LATENT_PRESETS]
    if unknown:
        p.error(f"--presets: {unknown[0]} is not a grid preset ({', '.join(config.LATENT_PRESETS)})")
    if args.first < 9 and args.images.resolve().name == "photos":
        p.error("--first: photo001-photo008 are the tuning photos; the guess is learned on photo009 and up")
    images = photos(p, args)
    if not args.fit_only:
        for preset in presets:
            encode_batch(images, preset, args.out / "files" / preset, args.workers)
    for preset in presets:
        if not (args.out / "files" / preset / "inrcodec-batch.jsonl").is_file():
            p.error(f"--fit-only: no batch of {preset} in {args.out / 'files'}; run without it first")
    details = {i.stem: detail(load(i)) for i in images}
    table, samples = [], []
    for i in images:
        line = [i.stem, md.fmt(details[i.stem])]
        for preset in presets:
            done = rows(args.out / "files" / preset)
            if i.stem not in done:
                p.error(f"{args.out / 'files' / preset}: no line for {i.stem}; run without --fit-only")
            bpp = done[i.stem]
            typical = config.LATENT_RATE_BPP[config.LATENT_PRESETS[preset].lam]
            # the floor, as the encoder's guess applies it (a flat image has detail 0)
            samples.append((math.log(max(details[i.stem], DETAIL_FLOOR)), math.log(bpp / typical)))
            line.append(f"{bpp:.4f} ({bpp / typical:.2f}×)")
        table.append(line)
    a, b, spread = fit(samples)
    raw = float(np.std([y for _, y in samples]))
    doc = {
        "a": a,
        "b": b,
        "residual_sd": spread,
        "sd_without_guess": raw,
        "presets": presets,
        "details": details,
        "samples": samples,
        "command": " ".join(command_line()),
        "provenance": provenance(),
    }
    lines = [
        f"The rate control's first guess fitted on {images[0].stem}–{images[-1].stem} (`{doc['command']}`):",
        f"log(bpp / typical) = {a:.4f} + {b:.4f} log(detail); the spread of log(bpp / typical) left "
        f"{spread:.3f} (without the guess {raw:.3f}).",
        "",
        *md.table(["image", "detail", *(f"{n} bpp (× typical)" for n in presets)], table),
    ]
    write_report(args.out, "rate-guess", doc, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
