"""What a residual filter over the decoded picture could buy the grid family (issue 15's Left list:
Cool-chic's synthesis ends in 3x3 residual convolutions over its output, ours is per pixel).

An upper-bound-style probe with no training: each preset file is decoded by the reference
decoder, then a linear residual filter (k x k taps of every colour channel into each, and a bias:
3 (3 k^2 + 1) coefficients) is fitted to that file's own picture by least squares (the Wiener
filter, as VVC's adaptive loop filter), its coefficients rounded to ``--bits`` bits, applied and
rounded to 8 bits. The PSNR it adds is what a post-filter sent in the file would add for about
its coefficients' bytes; a filter trained with the networks could add more (docs/benchmark.md
says what a one-off joint check measured).

    python -m benchmarks.latent_postfilter [--images ../shared/photos --first 1 --last 4]
        [--presets grid-high,grid-xhigh] [--sizes 3,5] [--workers 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
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
from inrcodec.decoder import decode
from inrcodec.image import load, psnr

OUT = RESULTS / "latent" / "postfilter-probe"


def neighbourhoods(img: np.ndarray, k: int) -> np.ndarray:
    """(H W, 3 k^2 + 1) float64: every pixel's k x k neighbours' colours (edges repeated), and 1."""
    r = k // 2
    h, w, c = img.shape
    padded = np.pad(img.astype(np.float64), ((r, r), (r, r), (0, 0)), mode="edge")
    cols = [padded[i : i + h, j : j + w].reshape(-1, c) for i in range(k) for j in range(k)]
    return np.concatenate([*cols, np.ones((h * w, 1))], axis=1)


def wiener(decoded: np.ndarray, original: np.ndarray, k: int, bits: int) -> tuple[np.ndarray, int]:
    """The decoded picture plus its least-squares k x k residual filter (coefficients rounded to
    ``bits`` bits of their largest), rounded to 8 bits; and the coefficients' count."""
    x = neighbourhoods(decoded, k)
    target = (original.astype(np.float64) - decoded).reshape(-1, decoded.shape[2])
    coef, *_ = np.linalg.lstsq(x, target, rcond=None)
    top = np.abs(coef).max()
    if top > 0:  # all zero (the decoded picture is the original): nothing to round
        step = top / (2 ** (bits - 1) - 1)
        coef = np.round(coef / step) * step
    out = decoded.reshape(-1, decoded.shape[2]) + x @ coef
    return np.clip(np.round(out), 0, 255).astype(np.uint8).reshape(decoded.shape), coef.size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    photo_options(p, 1, 4)
    p.add_argument("--presets", default="grid-high,grid-xhigh", help="grid presets, comma-separated")
    p.add_argument("--sizes", default="3,5", help="filter sizes k (odd), comma-separated")
    p.add_argument("--bits", type=int, default=10, help="bits of each coefficient")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {repo_path(OUT)})")
    args = p.parse_args(argv)
    presets = args.presets.split(",")
    if any(n not in config.LATENT_PRESETS for n in presets):
        p.error(f"--presets: grid presets only ({', '.join(config.LATENT_PRESETS)})")
    try:
        sizes = [int(k) for k in args.sizes.split(",")]
    except ValueError:
        sizes = [0]
    if any(k < 1 or k % 2 == 0 for k in sizes):
        p.error("--sizes: odd filter sizes, comma-separated")
    if args.bits < 2:
        p.error("--bits: at least 2 (a sign and a magnitude)")
    images = photos(p, args)
    rows = []
    for preset in presets:
        folder = args.out / "files" / preset
        encode_batch(images, preset, folder, args.workers)
        for image in images:
            data = (folder / f"{image.stem}.inr").read_bytes()
            original, decoded = load(image), decode(data)
            base = psnr(decoded, original)
            row = {"image": image.stem, "preset": preset, "bytes": len(data), "psnr": base}
            for k in sizes:
                filtered, n = wiener(decoded, original, k, args.bits)
                row[f"gain_{k}x{k}"] = psnr(filtered, original) - base
                row[f"coefficients_{k}x{k}"] = n
            rows.append(row)
            print(json.dumps(row), flush=True)
    head = [
        "preset",
        "image",
        "bpp",
        "PSNR dB",
        *(f"{k}×{k} ({rows[0][f'coefficients_{k}x{k}']} coefficients) dB" for k in sizes),
    ]
    table = []
    for r in rows:
        bpp = r["bytes"] * 8 / np.prod(load(args.images / f"{r['image']}.png").shape[:2])
        table.append(
            [r["preset"], r["image"], f"{bpp:.3f}", f"{r['psnr']:.2f}", *(f"{r[f'gain_{k}x{k}']:+.3f}" for k in sizes)]
        )
    for preset in presets:
        mine = [r for r in rows if r["preset"] == preset]
        table.append(
            [preset, "mean", "", "", *(f"{statistics.mean(r[f'gain_{k}x{k}'] for r in mine):+.3f}" for k in sizes)]
        )
    doc = {"rows": rows, "bits": args.bits, "command": " ".join(command_line()), "provenance": provenance()}
    lines = [
        f"PSNR added by a least-squares residual filter over each preset file's decoded picture (`{doc['command']}`).",
        "",
        *md.table(head, table),
    ]
    write_report(args.out, "postfilter-probe", doc, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
