"""Where the four-pass context model (format version 9) loses at the middle full-resolution points
(issue 15): stage by stage, against the checkerboard, on the same photos and points.

Plain fits gave the four-pass model 1-3 % smaller files at the full-resolution points, but the
presets' whole ladder with it everywhere lost +0.8 % BD-rate: the five middle full-resolution
points came out 2-5 % larger or 0.1 dB lower (docs/benchmark.md, "Format version 9"). Those
points train on noise to the end for 23,040 steps, are packed, have their latents rounded for
D + lambda R (``latent_rdo``), their networks tuned on the integers (``latent_tune``) and rounded
again. Each fit here reports every stage's file (``latent.fit(on_file=...)``): its bytes by
section, its PSNR and D + lambda R, so the table says which stage undoes the model's gain. Three
arms a point: the presets' (checkerboard, ``full-v1``), four passes from ``full-4p-v1`` (what
``--context four-pass`` ran) and four passes from ``full-v1`` widened (the format's widening: the
init predicts as the checkerboard's did, so the init's training is taken out).

    python -m benchmarks.four_pass_stages [--images ../shared/photos --first 1 --last 2]
        [--lams 5e-3] [--arms checkerboard,four-pass,four-pass-widened] [--workers 1] [--out DIR]

Rows go to ``OUT/stages.jsonl`` as each fit ends (a rerun skips those); the table to
``OUT/stages.md``. One torch thread a fit.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import time
from dataclasses import replace
from pathlib import Path

from benchmarks import markdown as md
from benchmarks.runner import (
    RESULTS,
    append_jsonl,
    command_line,
    photo_options,
    photos,
    provenance,
    read_jsonl,
    repo_path,
    write_report,
)
from inrcodec import config

OUT = RESULTS / "latent" / "four-pass-stages"
ARMS = {  # name -> (context model, init of the presets' full-resolution points, as it becomes)
    "checkerboard": ("checkerboard", config.LATENT_FULL_INIT),
    "four-pass": ("four-pass", config.LATENT_FOUR_PASS_TWINS[config.LATENT_FULL_INIT]),
    "four-pass-widened": ("four-pass", config.LATENT_FULL_INIT),
}
STAGES = ("code", "round", "tune", "round again", "file")


def point(lam: float, arm: str) -> config.LatentConfig:
    """The point at ``lam`` of the ladder the committed rows ran (LATENT_FOUR_PASS_LADDER: 23,040 steps
    at the middle points) with the arm's context model and init."""
    context, init = ARMS[arm]
    return replace(next(p for p in config.LATENT_FOUR_PASS_LADDER if p.lam == lam), context=context, init=init)


def fit_one(job: tuple[str, float, str]) -> dict:
    """One fit (in a worker): every stage's file measured."""
    import torch

    from inrcodec import image
    from inrcodec.encoder import latent, latent_rdo
    from inrcodec.format.latent import read

    torch.set_num_threads(1)
    path, lam, arm = job
    arr = image.load(Path(path))
    pixels = arr.shape[0] * arr.shape[1]
    stages, files = {}, {}

    def heard(stage: str, data: bytes, err: float) -> None:
        sections = read(data).section_bytes
        stages[stage] = {
            "bytes": len(data),
            "psnr": 10 * math.log10(255.0**2 / max(err, 1e-12)),
            "cost": latent_rdo.file_cost(data, err, lam, pixels),
            **{f"{k}_bytes": v for k, v in sections.items()},
        }
        files[stage] = data

    fitted = latent.fit(arr, point(lam, arm), on_file=heard)
    # the file written is the rounded one or the tuned one rounded again, as that stage measured it
    written = [stage for stage, data in files.items() if data == fitted.data]
    if not written:
        raise RuntimeError(f"{path} at lambda {lam:g} ({arm}): no stage reported the file the fit wrote")
    stages["file"] = stages[written[-1]]
    return {"image": Path(path).stem, "lam": lam, "arm": arm, "stages": stages, "cpu_s": round(fitted.seconds, 1)}


def _rows(jobs: list[tuple[str, float, str]], workers: int):
    """The fits' rows as they end: in this process with one worker, else in a pool of fresh ones."""
    if workers == 1:
        yield from map(fit_one, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=1) as pool:
        yield from pool.imap_unordered(fit_one, jobs)


def tables(rows: list[dict], lams: list[float], arms: list[str]) -> list[str]:
    """Per point: each stage's mean bytes, PSNR and D + lambda R, and each four-pass arm's change
    against the checkerboard at that stage (bytes %, dB, D + lambda R %), photo by photo."""
    lines = []
    for lam in lams:
        got = {(r["image"], r["arm"]): r for r in rows if r["lam"] == lam}
        images = sorted({i for i, _ in got if all((i, a) in got for a in arms)})
        if not images:
            continue
        lines += [f"λ {lam:g} ({len(images)} photos: {', '.join(images)}):", ""]
        head = ["stage", *(f"{a}: bytes / dB / latents, context, synthesis" for a in arms)]
        head += [f"{a} against {arms[0]}: Δ bytes, Δ dB, Δ (D + λR) (photo by photo)" for a in arms[1:]]
        body = []
        for stage in STAGES:
            if not all(stage in got[(i, a)]["stages"] for i in images for a in arms):
                continue

            def mean(arm: str, key: str, stage: str = stage, got: dict = got, images: list = images) -> float:
                return statistics.mean(got[(i, arm)]["stages"][stage].get(key, 0) for i in images)

            cells = [
                f"{mean(a, 'bytes'):,.0f} / {mean(a, 'psnr'):.2f} / "
                f"{mean(a, 'latents_bytes'):,.0f}, {mean(a, 'context_bytes'):,.0f}, {mean(a, 'synthesis_bytes'):,.0f}"
                for a in arms
            ]
            for a in arms[1:]:
                per = [
                    100 * (got[(i, a)]["stages"][stage]["cost"] / got[(i, arms[0])]["stages"][stage]["cost"] - 1)
                    for i in images
                ]
                db = mean(a, "psnr") - mean(arms[0], "psnr")
                cells.append(
                    f"{100 * (mean(a, 'bytes') / mean(arms[0], 'bytes') - 1):+.1f} %, {db:+.3f} dB, "
                    f"{statistics.mean(per):+.2f} % ({' '.join(f'{x:+.1f}' for x in per)})"
                )
            body.append([stage, *cells])
        lines += [*md.table(head, body), ""]
    return lines or ["(no point has every arm on a photo yet)"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    photo_options(p, 1, 2)
    p.add_argument("--lams", default="5e-3", help="the presets' full-resolution points, by lambda, comma-separated")
    p.add_argument("--arms", default=",".join(ARMS), help=f"of {', '.join(ARMS)} (the first is the reference)")
    p.add_argument("--workers", type=int, default=1, help="fits at once, one torch thread each")
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {repo_path(OUT)})")
    args = p.parse_args(argv)
    full = sorted({pt.lam for pt in config.LATENT_FOUR_PASS_LADDER if pt.finest == 0}, reverse=True)
    try:
        lams = [float(x) for x in args.lams.split(",")]
    except ValueError:
        p.error(f"--lams: lambdas separated by commas, not {args.lams!r}")
    if stray := [lam for lam in lams if lam not in full]:
        p.error(f"--lams: {stray[0]:g} is none of the presets' full-resolution points ({', '.join(map(str, full))})")
    arms = args.arms.split(",")
    if any(a not in ARMS for a in arms) or len(set(arms)) < len(arms) or len(arms) < 2:
        p.error(f"--arms: two or more of {', '.join(ARMS)}, each once")
    if not 1 <= args.workers <= 64:
        p.error("--workers: 1 to 64")
    images = photos(p, args)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "stages.jsonl"
    rows = read_jsonl(log)
    done = {(r["image"], r["lam"], r["arm"]) for r in rows}
    jobs = [(str(i), lam, a) for i in images for lam in lams for a in arms if (i.stem, lam, a) not in done]
    print(f"{len(jobs)} fits to run ({len(done)} done before)", flush=True)
    t = time.perf_counter()
    for row in _rows(jobs, args.workers):
        append_jsonl(log, [row])  # one line a fit: a kill loses only the fits running
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "stages"}), flush=True)
    mine = [r for r in rows if r["image"] in {i.stem for i in images}]
    doc = {
        "lams": lams,
        "arms": {a: ARMS[a] for a in arms},
        "seconds": time.perf_counter() - t,
        "command": " ".join(command_line()),
        "provenance": provenance(),
    }
    lines = [
        "The presets' middle full-resolution points stage by stage, the checkerboard against the four-pass "
        f"model (`{doc['command']}`; rows in `stages.jsonl`). Each cell: mean bytes / PSNR dB / the "
        "latents', context network's and synthesis' sections in bytes; each comparison: the four-pass "
        "arm against the first at the same stage (D + λR as the rounding counts it: MSE on [0, 1] plus λ "
        'times bits a pixel). "tune" is the tuned file before the fit keeps it or the rounded one; '
        '"file" is what the fit writes.',
        "",
        *tables(mine, lams, arms),
    ]
    write_report(args.out, "stages", doc, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
