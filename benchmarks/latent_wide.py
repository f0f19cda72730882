"""Would a wider synthesis pay at the full-resolution points once it too starts from networks
trained across photographs? (issue 15's Left list: a synthesis a third wider measured about
+0.1 dB there from SIREN's random init, while the shipped 24-wide init, full-v1, is worth more;
this measures the two together.)

1. Trains one synthesis and context network of width ``--hidden`` across photo009 onwards by the
   recipe that made full-v1 (``benchmarks.shared_prior_probe.train_shared`` at the
   full-resolution points' middle settings, lambda 5e-4; 16 photos, 2,500 steps each), into
   ``OUT/shared-hHIDDEN.pt`` (kept: a rerun reuses it).
2. Fits photo001-photo004 (never trained on) at each of ``--presets`` with that width, starting
   from those networks, the presets' rounding and tuning included. Such a file codes its networks
   as plain integers (the format codes residuals only from a shipped init): against full-v1's
   residuals that costs these files about 0.3 % (the networks are 2-3 % of them).
3. Sets them against the presets' own files (24 wide, from full-v1), encoded by the CLI into
   ``OUT/files/PRESET/``: BD-rate over the presets' points, photo by photo and on the mean curve.

    python -m benchmarks.latent_wide [--hidden 32] [--presets grid-high,grid-xhigh,grid-max]
        [--images ../shared/photos --first 1 --last 4] [--workers 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from benchmarks import markdown as md
from benchmarks.runner import (
    RESULTS,
    append_jsonl,
    command_line,
    encode_batch,
    photo_options,
    photos,
    provenance,
    read_jsonl,
    repo_path,
    write_report,
)
from benchmarks.shared_prior_probe import compare  # (BD-rate, BD-PSNR) cells
from inrcodec import config

OUT = RESULTS / "latent" / "wide-probe"
TRAIN_IMAGES = 16  # photo009-photo024, as full-v1
STEPS_PER_IMAGE = 2500


def fit_one(job: tuple[str, str, int, str]) -> dict:
    """One held-out fit at a preset with the wider synthesis from the shared networks (in a
    process of its own: the patched model class stays there)."""
    import torch

    from benchmarks.shared_prior_probe import _shared_modules
    from inrcodec import image
    from inrcodec.encoder import latent

    path, preset, hidden, shared_path = job
    torch.set_num_threads(1)
    cfg = replace(config.LATENT_PRESETS[preset], hidden=hidden, init="")
    arr = image.load(Path(path))
    original = latent.LatentImage
    latent.LatentImage = _shared_modules(torch.load(shared_path, weights_only=True))
    try:
        fitted = latent.fit(arr, cfg)
    finally:
        latent.LatentImage = original
    return {
        "image": Path(path).stem,
        "preset": preset,
        "hidden": hidden,
        "bytes": len(fitted.data),
        "bpp": fitted.bpp,
        "psnr": fitted.psnr,
        "synthesis_bytes": fitted.synthesis_bytes,
        "context_bytes": fitted.context_bytes,
        "cpu_s": round(fitted.seconds, 1),
    }


def reference(images: list[Path], presets: list[str], out: Path, workers: int) -> list[dict]:
    """The presets' own files of ``images`` (encoded by the CLI where not done before)."""
    from inrcodec.decoder import decode
    from inrcodec.image import load, psnr

    rows = []
    for preset in presets:
        folder = out / "files" / preset
        encode_batch(images, preset, folder, workers)
        for image in images:
            data = (folder / f"{image.stem}.inr").read_bytes()
            arr = load(image)
            bpp = len(data) * 8 / (arr.shape[0] * arr.shape[1])
            rows.append(
                {"image": image.stem, "preset": preset, "bytes": len(data), "bpp": bpp, "psnr": psnr(decode(data), arr)}
            )
    return rows


def tables(ref: list[dict], wide: list[dict], presets: list[str], hidden: int) -> list[str]:
    """Per photo, the presets' points both ways and the BD-rate; then the mean curves."""
    by = {(r["image"], r["preset"]): r for r in ref}
    got = {(r["image"], r["preset"]): r for r in wide}
    images = sorted({i for i, p in got if all((i, q) in got and (i, q) in by for q in presets)})
    head = ["photo", "networks", *(f"`{p}`: bpp / dB" for p in presets), "BD-rate", "BD-PSNR"]
    body = []
    for i in images:
        a, b = [by[(i, p)] for p in presets], [got[(i, p)] for p in presets]
        body.append([i, "24 wide, full-v1 (the presets)", *(f"{r['bpp']:.3f} / {r['psnr']:.2f}" for r in a), "", ""])
        body.append([i, f"{hidden} wide, shared", *(f"{r['bpp']:.3f} / {r['psnr']:.2f}" for r in b), *compare(a, b)])
    if not images:
        return ["(no photo has every point yet)"]

    def mean(rows: dict) -> list[dict]:
        return [{k: statistics.mean(rows[(i, p)][k] for i in images) for k in ("bpp", "psnr")} for p in presets]

    a, b = mean(by), mean(got)
    body.append(["mean", "24 wide, full-v1", *(f"{r['bpp']:.3f} / {r['psnr']:.2f}" for r in a), "", ""])
    body.append(["mean", f"{hidden} wide, shared", *(f"{r['bpp']:.3f} / {r['psnr']:.2f}" for r in b), *compare(a, b)])
    return md.table(head, body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    photo_options(p, 1, 4)
    p.add_argument("--hidden", type=int, default=32, help="width of the synthesis (default 32; the presets': 24)")
    p.add_argument("--presets", default="grid-high,grid-xhigh,grid-max", help="full-resolution grid presets")
    p.add_argument("--workers", type=int, default=2, help="fits at once, one torch thread each")
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {repo_path(OUT)})")
    args = p.parse_args(argv)
    presets = args.presets.split(",")
    if any(n not in config.LATENT_PRESETS or config.LATENT_PRESETS[n].finest != 0 for n in presets):
        full = [n for n, c in config.LATENT_PRESETS.items() if c.finest == 0]
        p.error(f"--presets: full-resolution grid presets only ({', '.join(full)})")
    if not 8 <= args.hidden <= 128:
        p.error("--hidden: 8 to 128")
    if not 1 <= args.workers <= 64:
        p.error("--workers: 1 to 64")
    images = photos(p, args)
    train = [args.images / f"photo{i:03d}.png" for i in range(9, 9 + TRAIN_IMAGES)]
    if missing := [str(f) for f in train if not f.is_file()]:
        p.error(f"--images: no {missing[0]}")

    import torch

    from benchmarks.shared_prior_probe import GROUPS, train_shared

    args.out.mkdir(parents=True, exist_ok=True)
    shared_path = args.out / f"shared-h{args.hidden}.pt"
    if not shared_path.exists():
        cfg = replace(GROUPS["full"][1], hidden=args.hidden)  # full-v1's settings, this width
        print(f"training the {args.hidden}-wide networks on {len(train)} photos", flush=True)
        shared = train_shared(cfg, train, STEPS_PER_IMAGE, lambda msg: print(msg, flush=True))
        tmp = shared_path.with_suffix(".tmp")
        torch.save(shared, tmp)
        tmp.replace(shared_path)
    ref = reference(images, presets, args.out, args.workers)
    log = args.out / "wide.jsonl"
    rows = read_jsonl(log)
    done = {(r["image"], r["preset"], r["hidden"]) for r in rows}
    jobs = [
        (str(i), preset, args.hidden, str(shared_path))
        for preset in presets
        for i in images
        if (i.stem, preset, args.hidden) not in done
    ]
    print(f"{len(jobs)} fits to run ({len(done)} done before)", flush=True)
    t = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        for row in pool.imap_unordered(fit_one, jobs):
            append_jsonl(log, [row])  # one line a fit: a kill loses only the fits running
            rows.append(row)
            print(json.dumps(row), flush=True)
    mine = [r for r in rows if r["hidden"] == args.hidden and r["image"] in {i.stem for i in images}]
    doc = {
        "hidden": args.hidden,
        "presets": presets,
        "reference": ref,
        "train_images": [f.name for f in train],
        "steps_per_image": STEPS_PER_IMAGE,
        "seconds": time.perf_counter() - t,
        "command": " ".join(command_line()),
        "provenance": provenance(),
    }
    lines = [
        f"The full-resolution points with a {args.hidden}-wide synthesis from networks trained across "
        f"photo009–photo{8 + TRAIN_IMAGES:03d}, against the presets' own files (`{doc['command']}`; rows in "
        "`wide.jsonl`).",
        "",
        *tables(ref, mine, presets, args.hidden),
    ]
    write_report(args.out, f"wide-h{args.hidden}", doc, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
