"""The grid family's rate control (``--bpp``; inrcodec/encoder/latent_rate.py), replayed on a
committed ladder run: for each image and cap, which points the search fits, which file it keeps,
and how that compares with the best of the ladder's files under the cap.

The search is a function of the files' sizes only, and every file it fits is that ladder point's
own file, byte for byte (tests/test_latent_rate.py pins both), so the ladder run's rows are the
files it would make: this runs :func:`latent_rate.fit_to_cap` itself with a ``fit`` that returns
the committed row's figures instead of fitting. What that cannot show (that a real fit gives the
row's bytes on this machine) ``--check IMAGE:CAP`` shows for one image and cap: the real search,
its bytes and PSNR set beside the replay's (the rows of a run that reused older runs' rows were
fitted by older commits, and an encoder's floats may differ by machine: a file a few bytes apart
is that, not the search).

The search's first guess reads the image (its detail, ``latent_rate.detail``), so the replay
reads the run's images from ``--images``; it replays the search with and without that guess.

    python -m benchmarks.grid_rate_control [--run benchmarks/results/latent/kodak-steps-x1.5/latent-proto.json]
        [--images ../shared/kodak] [--caps 0.1,0.2,...] [--check kodim05:0.3] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import markdown as md
from benchmarks.runner import RESULTS, command_line, provenance, repo_path, write_report
from inrcodec.config import LATENT_PRESET_LADDER, LATENT_RATE_SLACK, LatentConfig, latent_cap, latent_preset_name
from inrcodec.encoder import latent, latent_rate

DEFAULT_RUN = RESULTS / "latent" / "kodak-steps-x1.5" / "latent-proto.json"
DEFAULT_CAPS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0)
OUT = RESULTS / "latent" / "grid-rate-control"


def load_rows(run: Path) -> dict[str, dict[float, dict]]:
    """image -> lambda -> the committed row, checked to hold every point of the presets' ladder."""
    doc = json.loads(run.read_text())
    if not doc.get("complete"):
        raise ValueError(f"{run}: an incomplete run; replay a complete one")
    rows: dict[str, dict[float, dict]] = {}
    for r in doc["rows"]:
        rows.setdefault(r["image"], {})[float(r["setting"].removeprefix("lam="))] = r
    want = {p.lam for p in LATENT_PRESET_LADDER}
    for image, by_lam in rows.items():
        if set(by_lam) != want:
            raise ValueError(f"{run}: {image} lacks the presets' points {sorted(want - set(by_lam))}")
    return rows


def image_details(images: Path, names: list[str]) -> dict[str, float]:
    """Each image's detail (the search's first guess reads it), from its file in ``images``."""
    from inrcodec.image import load

    files = {p.stem: p for p in sorted(images.iterdir()) if p.suffix.lower() == ".png"}
    missing = [n for n in names if n not in files]
    if missing:
        raise ValueError(f"{images}: no {missing[0]}.png (the run's images are needed for the first guess)")
    return {n: latent_rate.detail(load(files[n])) for n in names}


def replay(
    rows: dict[float, dict], bpp: float, detail: float, slack: float = LATENT_RATE_SLACK, guess: bool = True
) -> dict:
    """The search under a cap of ``bpp`` on one image's committed files (its detail ``detail``;
    without the first guess unless ``guess``), and the best file under it."""
    any_row = next(iter(rows.values()))
    pixels = round(any_row["bytes"] * 8 / any_row["bpp"])
    shape = (1, pixels, 3)  # fit_to_cap reads the pixel count only

    def committed(_arr: np.ndarray, point: LatentConfig, *_callbacks) -> latent.Fitted:
        r = rows[point.lam]
        return latent.Fitted(bytes(r["bytes"]), r["psnr"], r["bpp"], r["encode_s"], r["steps"], 0, 0, 0)

    cap = latent_cap(bpp, slack=slack) if guess else latent_cap(bpp, slack=slack, guess=(0.0, 0.0))
    limit = latent_rate.cap_bytes(cap, 1, pixels)
    under = [(r["psnr"], lam) for lam, r in rows.items() if r["bytes"] <= limit]
    best = max(under) if under else None
    out = {"cap": bpp, "best_lam": best and best[1], "best_psnr": best and best[0]}
    fitted: list[float] = []

    def counted(arr: np.ndarray, point: LatentConfig, *callbacks) -> latent.Fitted:
        fitted.append(point.lam)
        return committed(arr, point, *callbacks)

    try:
        got = latent_rate.fit_to_cap(np.empty(shape, np.uint8), cap, fit=counted, image_detail=detail)
    except ValueError:  # no point fits: the cap is under the lowest point's file
        return out | {"lam": None, "psnr": None, "bpp": None, "fits": len(fitted), "cpu_s": None}
    return out | {
        "lam": got.point.lam,
        "preset": latent_preset_name(got.point),
        "psnr": got.fitted.psnr,
        "bpp": got.fitted.bpp,
        "fits": len(got.tried),
        "tried": [t["lam"] for t in got.tried],
        "cpu_s": sum(rows[t["lam"]]["encode_s"] for t in got.tried),
        "chosen_cpu_s": rows[got.point.lam]["encode_s"],
    }


def summary(results: list[dict], caps: list[float]) -> list[list]:
    """Per cap: images with a file under it, fits (mean, most), best chosen, PSNR gap, CPU time."""
    out = []
    for c in caps:
        rs = [r for r in results if r["cap"] == c and r["lam"] is not None]
        if not rs:
            out.append([f"{c:g}", 0, "–", "–", "–", "–", "–", "–"])
            continue
        gaps = [r["best_psnr"] - r["psnr"] for r in rs]
        out.append(
            [
                f"{c:g}",
                len(rs),
                md.fmt(statistics.mean(r["fits"] for r in rs)),
                max(r["fits"] for r in rs),
                f"{sum(g == 0 for g in gaps)}/{len(rs)}",
                md.fmt(statistics.mean(gaps)),
                md.fmt(max(gaps)),
                f"{statistics.mean(r['cpu_s'] for r in rs):.0f} "
                f"({statistics.mean(r['cpu_s'] / r['chosen_cpu_s'] for r in rs):.2f}×)",
            ]
        )
    return out


def totals(results: list[dict]) -> str:
    """Over every image and cap with a file under it: fits, the best kept, CPU time."""
    rs = [r for r in results if r["lam"] is not None]
    best = sum(r["psnr"] == r["best_psnr"] for r in rs)
    slow = sum(r["cpu_s"] > 300 for r in rs)
    return (
        f"{statistics.mean(r['fits'] for r in rs):.2f} fits on the mean, the best file kept in {best} of "
        f"{len(rs)}, {statistics.mean(r['cpu_s'] for r in rs):.0f} CPU s on the mean, {slow} searches over 5 minutes"
    )


def check(images: Path, image: str, bpp: float, rows: dict[float, dict]) -> dict:
    """The real search on one image: its kept file's bytes and PSNR against the replay's."""
    import torch

    from inrcodec.image import load

    torch.set_num_threads(1)  # as the ladder run's jobs
    arr = load(next(p for p in sorted(images.iterdir()) if p.stem == image))
    t = time.process_time()
    got = latent_rate.fit_to_cap(arr, latent_cap(bpp))
    seconds = time.process_time() - t
    want = replay(rows, bpp, latent_rate.detail(arr))
    return {
        "image": image,
        "cap": bpp,
        "real": {
            "lam": got.point.lam,
            "bytes": len(got.data),
            "psnr": got.fitted.psnr,
            "tried": [t["lam"] for t in got.tried],
        },
        "replay": {
            "lam": want["lam"],
            "bytes": rows[want["lam"]]["bytes"],
            "psnr": want["psnr"],
            "tried": want["tried"],
        },
        "cpu_s": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=DEFAULT_RUN, help="a complete latent-proto.json of the presets' ladder")
    p.add_argument("--caps", default=",".join(map(str, DEFAULT_CAPS)), help="bpp caps, comma-separated")
    p.add_argument("--check", help="IMAGE:CAP: also run the real search on that image (minutes)")
    p.add_argument("--images", type=Path, default=Path("../shared/kodak"), help="the run's images (PNG)")
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {repo_path(OUT)})")
    args = p.parse_args(argv)
    try:
        caps = [float(c) for c in args.caps.split(",")]
        if not all(c > 0 for c in caps):
            raise ValueError
    except ValueError:
        p.error("--caps: positive numbers, comma-separated")
    try:
        rows = load_rows(args.run)
    except (OSError, ValueError) as e:
        p.error(str(e))
    if args.check:
        image, _, cap = args.check.partition(":")
        try:
            if image not in rows or not float(cap) > 0:
                raise ValueError
        except ValueError:
            p.error(f"--check: IMAGE:CAP, an image of {args.run} and a cap in bpp above 0")
    if not args.images.is_dir():
        p.error(f"--images: {args.images} is not a folder")
    try:
        details = image_details(args.images, sorted(rows))
    except ValueError as e:
        p.error(str(e))
    results, plain = (
        [
            {"image": i, "detail": details[i]} | replay(by_lam, c, details[i], guess=g)
            for i, by_lam in sorted(rows.items())
            for c in caps
        ]
        for g in (True, False)
    )
    doc = {
        "run": repo_path(args.run),
        "caps": caps,
        "results": results,
        "results_without_guess": plain,
        "command": " ".join(command_line()),
        "provenance": provenance(),
    }
    if args.check:
        doc["check"] = check(args.images, image, float(cap), rows[image])
    head = ["cap bpp", "images", "fits (mean)", "fits (most)", "best file kept", "dB below best (mean)",
            "dB below best (most)", "CPU s (× the kept point's)"]  # fmt: skip
    lines = [
        f"Rate control replayed on {repo_path(args.run)} ({len(rows)} images; `{doc['command']}`).",
        "",
        "With the first guess from the image's detail (the search as it is):",
        "",
        *md.table(head, summary(results, caps)),
        "",
        "Without it (every image first taken as typical, the search before the guess):",
        "",
        *md.table(head, summary(plain, caps)),
        "",
        f"All caps: {totals(results)} with the guess; {totals(plain)} without.",
    ]
    if args.check:
        c = doc["check"]
        same = c["real"]["tried"] == c["replay"]["tried"]
        verdict = "the same points fitted, the same one kept" if same else "DIFFERENT points"
        verdict += f"; the kept file {c['real']['bytes'] - c['replay']['bytes']:+d} bytes against the row's"
        lines += ["", f"Real search on {c['image']} at {c['cap']:g} bpp: {json.dumps(c['real'])}, replay "
                  f"{json.dumps(c['replay'])}: {verdict} ({c['cpu_s']} s CPU)."]  # fmt: skip
    write_report(args.out, "grid-rate-control", doc, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
