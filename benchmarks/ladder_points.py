"""Which points belong on the grid ladder: BD-rates of ladders made of a run's points, from rows
already fitted.

A ladder's curve is the mean (bpp, PSNR) of each of its points over the images; a point that lies
under the curve its neighbours draw pulls the fitted cubic, and so the BD-rate, down. This reads
the rows of one or more latent_grid runs on the same images (a later run's row of a point replaces
an earlier one's), takes a base ladder (its settings, as the rows name them: ``lam=0.004``) and
variants of it (``+lam=0.015`` adds a point, ``-lam=0.004`` drops one; ``;`` between variants) and
reports each curve's BD-rate against JPEG 4:2:0 on the same images (the anchor's rows) and against
the base ladder, and each point's rate against JPEG's curve at its PSNR. Nothing is fitted.

    python -m benchmarks.ladder_points --run A/latent-proto.json [--run B/latent-proto.json] \\
        --base lam=0.032,lam=0.016,... --variants "-lam=0.004;+lam=0.015;-lam=0.004,+lam=0.015" \\
        [--anchor benchmarks/results/photos-first8] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks import markdown as md
from benchmarks.bd_rate import bd_rate
from benchmarks.runner import RESULTS, command_line, curve, provenance, repo_path, write_report

OUT = RESULTS / "latent" / "ladder-points"
ANCHOR = RESULTS / "photos-first8"


def merged_rows(runs: list[Path]) -> list[dict]:
    """The runs' rows, one per (image, setting): a later run's replaces an earlier one's."""
    rows: dict[tuple[str, str], dict] = {}
    for path in runs:
        for r in json.loads(path.read_text())["rows"]:
            rows[(r["image"], r["setting"])] = r
    return list(rows.values())


def variant(base: list[str], spec: str) -> list[str]:
    """``base`` with the points ``spec`` adds (``+s``) and drops (``-s``), comma-separated."""
    out = list(base)
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        sign, name = item[0], item[1:]
        if sign == "+" and name not in out:
            out.append(name)
        elif sign == "-" and name in out:
            out.remove(name)
        else:
            raise ValueError(f"{item!r}: +SETTING (not already on the ladder) or -SETTING (on it)")
    return out


def rate_against(anchor: list[dict], bpp: float, psnr: float) -> float:
    """The point's rate against the anchor's mean curve at its PSNR (log-rate linear in PSNR), in %."""
    q = np.array([c["psnr"] for c in anchor])
    lr = np.log([c["bpp"] for c in anchor])
    order = np.argsort(q)
    return float((bpp / np.exp(np.interp(psnr, q[order], lr[order])) - 1) * 100)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, action="append", required=True, help="a latent_grid latent-proto.json")
    p.add_argument("--base", required=True, help="the base ladder's settings, comma-separated")
    p.add_argument("--variants", required=True, help="variants: +SETTING,-SETTING,... separated by ';'")
    p.add_argument("--anchor", type=Path, default=ANCHOR, help=f"JPEG's rows (default {repo_path(ANCHOR)})")
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {repo_path(OUT)})")
    args = p.parse_args(argv)
    try:
        rows = merged_rows(args.run)
    except (OSError, ValueError, KeyError, TypeError) as e:
        p.error(f"--run: not a latent_grid results file ({e})")
    base = [s.strip() for s in args.base.split(",") if s.strip()]
    if not base:
        p.error("--base: the base ladder's settings, comma-separated")
    try:
        variants = {spec.strip(): variant(base, spec) for spec in args.variants.split(";") if spec.strip()}
    except ValueError as e:
        p.error(f"--variants: {e}")
    images = sorted({r["image"] for r in rows if r["setting"] == base[0]})
    wanted = sorted({s for v in (base, *variants.values()) for s in v})
    have = {(r["image"], r["setting"]) for r in rows}
    if lack := [f"{s} of {i}" for s in wanted for i in images if (i, s) not in have]:
        p.error(f"--run: no row for {lack[0]} ({len(lack)} missing)")
    try:
        jpeg_rows = [r for r in json.loads((args.anchor / "jpeg420.json").read_text())["rows"] if r["image"] in images]
    except (OSError, ValueError, KeyError) as e:
        p.error(f"--anchor: {args.anchor / 'jpeg420.json'}: {e}")
    if {r["image"] for r in jpeg_rows} != set(images):
        p.error(f"--anchor: {args.anchor / 'jpeg420.json'} lacks some of the runs' images")
    jpeg = curve(jpeg_rows, sorted({r["setting"] for r in jpeg_rows}))
    mine = [r for r in rows if r["image"] in images]
    points = {c["setting"]: c for c in curve(mine, wanted)}

    def bd(anchor: list[dict], settings: list[str]) -> float:
        test = [points[s] for s in settings]
        return bd_rate([c["bpp"] for c in anchor], [c["psnr"] for c in anchor],
                       [c["bpp"] for c in test], [c["psnr"] for c in test])  # fmt: skip

    base_curve = [points[s] for s in base]
    table = [["the base ladder", md.fmt(bd(jpeg, base)), "0.00"]]
    table += [[f"`{spec}`", md.fmt(bd(jpeg, v)), md.fmt(bd(base_curve, v))] for spec, v in variants.items()]
    per_point = [
        [
            s,
            f"{points[s]['bpp']:.4f}",
            f"{points[s]['psnr']:.2f}",
            md.fmt(rate_against(jpeg, points[s]["bpp"], points[s]["psnr"])),
        ]  # fmt: skip
        for s in sorted(wanted, key=lambda s: points[s]["bpp"])
    ]
    doc = {
        "runs": [repo_path(r) for r in args.run],
        "images": images,
        "base": base,
        "variants": variants,
        "points": points,
        "bd_jpeg": {spec: bd(jpeg, v) for spec, v in variants.items()} | {"base": bd(jpeg, base)},
        "bd_base": {spec: bd(base_curve, v) for spec, v in variants.items()},
        "command": " ".join(command_line()),
        "provenance": provenance(),
    }
    lines = [
        f"Ladders of the points of {', '.join(doc['runs'])} on {images[0]}–{images[-1]} ({len(images)} images; "
        f"`{doc['command']}`): BD-rate in % of each mean curve against JPEG 4:2:0 and against the base ladder.",
        "",
        *md.table(["ladder", "against JPEG 4:2:0", "against the base"], table),
        "",
        "Each point's mean rate against JPEG 4:2:0's mean curve at its PSNR (log-rate linear in PSNR):",
        "",
        *md.table(["point", "bpp", "PSNR dB", "rate against JPEG (%)"], per_point),
    ]
    write_report(args.out, "ladder-points", doc, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
