"""How much of the full-resolution points' distance is compute: the grid presets fitted again with
their training steps times 2, 4, ... (issue 15; the SIREN's twin is docs/benchmark.md, "More fit
steps").

The full-resolution points train 11,520 steps of 4,096 random pixels (34,560 at the four middle
ones since config.LATENT_MID_LONG_STEPS: a factor scales the presets' steps of the day, and a
committed probe's rows record the steps they ran), so each latent of their
finest grid is read in about 4 % of the steps (some 480 times a fit), where Cool-chic and C3 take
ten thousand or more whole-image steps on a GPU. If more steps move a point's file much, a faster
step (or a GPU) is worth having; if not, the representation is the limit. Each row is a preset
with ``steps`` scaled (its schedules, the noise then rounded phase, stretched with it; rounding and
tuning after it as the preset does), packed by ``latent.fit`` and decoded: its bytes and PSNR are
the file's. The figure that decides is D + lambda R against the preset's own steps.

    python -m benchmarks.latent_steps [--images ../shared/photos --first 1 --last 2]
        [--presets grid-high,grid-xhigh] [--factors 1,2,4] [--scale steps|batch]
        [--device cpu|cuda] [--workers 2] [--ladder LADDER.json] [--out DIR]

``--presets`` takes the grid presets' names and the presets' ladder's unnamed points as
``lam=<lambda>`` (``lam=0.005``); ``--groups`` (with ``--ladder``) reads the curve with only
some of them scaled. ``--ladder`` names a committed run of the whole ladder on the
same photos (``benchmarks.latent_grid``'s ``latent-proto.json``): the report then adds each
factor's curve, the ladder's rows with the scaled points' rows in place of their own, and its
BD-rate against the ladder with this run's factor-1 rows in their place (the same machine on
both sides) and against JPEG. With ``--own-from-ladder`` the points' factor-1 rows this run lacks
are taken from that file instead of fitted again; such a row names its file in ``source``. That
stands only on the kind of machine that made the file: a fit repeats to the byte there (a lent GPU
machine's CPUs made two of them again exactly), not on every CPU (an AMD EPYC made other bytes).

``--scale batch`` scales the pixels a step instead (the same steps, each reading ``factor`` times
the pixels: what a GPU gives almost for free); ``--device cuda`` runs the training steps there
(``latent.fit(device=...)``; its rows are compared with the device's own factor-1 rows, and
timed in wall seconds). Rows go to ``OUT/latent-steps.jsonl`` as each fit ends (a rerun skips
those), the tables to ``OUT/latent-steps.md``. One torch thread a fit; the longest fits are
started first.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks import markdown as md
from benchmarks.bd_rate import NoOverlap, bd_rate
from benchmarks.latent_grid import setting
from benchmarks.runner import (
    RESULTS,
    append_jsonl,
    command_line,
    curve,
    photo_options,
    photos,
    provenance,
    read_jsonl,
    repo_path,
    write_report,
)
from inrcodec import config

OUT = RESULTS / "latent" / "steps-probe"
ANCHOR = RESULTS / "photos-first8"  # JPEG on the tuning photos


def point(name: str) -> config.LatentConfig:
    """A grid preset by name, or a point of the presets' ladder as ``lam=<lambda>``; KeyError else."""
    if name in config.LATENT_PRESETS:
        return config.LATENT_PRESETS[name]
    try:
        lam = float(name.removeprefix("lam=")) if name.startswith("lam=") else None
    except ValueError:
        lam = None
    for p in config.LATENT_PRESET_LADDER:
        if p.lam == lam:
            return p
    raise KeyError(name)


def canonical(name: str) -> str:
    """``name`` as rows record it: a preset's name, or the point's setting as latent_grid writes it
    (``lam=5e-3`` -> ``lam=0.005``), so that one point has one name in a run's rows."""
    return name if name in config.LATENT_PRESETS else setting(point(name).lam)


def key(r: dict) -> tuple:
    """What a row is of: image, preset, factor, what was scaled and where it ran (rows made before
    the two options: steps, on the CPU; a factor-1 row is the preset itself, whatever the scale)."""
    scale = r.get("scale", "steps") if r["factor"] != 1.0 else "steps"
    return r["image"], r["preset"], r["factor"], scale, r.get("device", "cpu")


def fit_one(job: tuple[str, str, float, str, str]) -> dict:
    """One fit (in a worker): the preset with its steps (or batch) times ``factor``; the file's figures."""
    import time

    from inrcodec.encoder import latent, latent_rdo
    from inrcodec.image import load

    image, preset, factor, scale, device = job
    cfg = point(preset)
    if scale == "steps":
        cfg = replace(cfg, steps=round(cfg.steps * factor))
    else:
        cfg = replace(cfg, batch=round(cfg.batch * factor))
    arr = load(Path(image))
    t = time.perf_counter()
    fitted = latent.fit(arr, cfg, device=device)
    wall = time.perf_counter() - t
    pixels = arr.shape[0] * arr.shape[1]
    err = 255.0**2 * 10 ** (-fitted.psnr / 10)
    return {
        "image": Path(image).stem,
        "preset": preset,
        "factor": factor,
        **({"scale": scale, "device": device, "batch": cfg.batch} if (scale, device) != ("steps", "cpu") else {}),
        "wall_s": wall,
        "steps": cfg.steps,
        "bytes": len(fitted.data),
        "bpp": fitted.bpp,
        "psnr": fitted.psnr,
        "cost": latent_rdo.file_cost(fitted.data, err, cfg.lam, pixels),
        "cpu_s": fitted.seconds,
    }


def slope(rows: list[dict], presets: list[str]) -> float | None:
    """dB per e-fold of rate between the lowest and highest presets' own files (factor 1, mean over
    the images both have), to read a PSNR change as a rate change at equal PSNR; None with one
    preset."""
    own = {(r["image"], r["preset"]): r for r in rows if r["factor"] == 1.0}
    lo, hi = presets[0], presets[-1]
    images = [i for i, p in own if p == lo and (i, hi) in own]
    if lo == hi or not images:
        return None
    bpp = [statistics.mean(own[(i, p)]["bpp"] for i in images) for p in (lo, hi)]
    psnr = [statistics.mean(own[(i, p)]["psnr"] for i in images) for p in (lo, hi)]
    return (psnr[1] - psnr[0]) / math.log(bpp[1] / bpp[0])


def equal_rate(r: dict, base: dict, s: float) -> float:
    """Per cent more rate than ``base`` at ``base``'s PSNR, along a line of ``s`` dB per e-fold."""
    return 100 * (r["bytes"] / base["bytes"] * math.exp(-(r["psnr"] - base["psnr"]) / s) - 1)


def tables(rows: list[dict], presets: list[str], factors: list[float], timer: str = "cpu_s") -> list[str]:
    """Per preset: each factor's mean change against the preset's own steps, then image by image;
    with two presets or more, each change read as a rate at equal PSNR along the presets' line."""
    out = []
    s = slope(rows, presets)
    if s is not None:
        out += [
            "",
            f"Rate at equal PSNR: the file's bytes times exp(−Δ PSNR / {s:.2f} dB), {s:.2f} dB per e-fold of "
            f"rate being the line through `{presets[0]}`'s and `{presets[-1]}`'s own files (a local estimate).",
        ]
    for preset in presets:
        mine = {(r["image"], r["factor"]): r for r in rows if r["preset"] == preset}
        images = sorted({i for i, f in mine if f == 1.0 and all((i, g) in mine for g in factors)})
        if not images:
            continue
        body = []
        for f in factors:
            got = [(mine[(i, f)], mine[(i, 1.0)]) for i in images]
            first = got[0][0]
            what = (
                f"batch {first['batch']:,}"
                if first.get("scale") == "batch" and f != 1.0
                else f"{first['steps']:,} steps"
            )
            body.append(
                [
                    f"×{f:g} ({what})",
                    f"{statistics.mean(r['bpp'] for r, _ in got):.3f}",
                    f"{statistics.mean(r['psnr'] for r, _ in got):.2f}",
                    f"{statistics.mean(100 * (r['bytes'] / b['bytes'] - 1) for r, b in got):+.1f}",
                    f"{statistics.mean(r['psnr'] - b['psnr'] for r, b in got):+.3f}",
                    f"{statistics.mean(100 * (r['cost'] / b['cost'] - 1) for r, b in got):+.2f}",
                    *([f"{statistics.mean(equal_rate(r, b, s) for r, b in got):+.1f}"] if s is not None else []),
                    " ".join(f"{100 * (r['cost'] / b['cost'] - 1):+.1f}" for r, b in got),
                    f"{statistics.mean(r[timer] for r, _ in got):.0f}",
                ]
            )
        lam = point(preset).lam
        out += ["", f"`{preset}` (λ {lam:g}; {len(images)} images: {', '.join(images)}):", ""]
        head = ["run", "bpp", "PSNR dB", "Δ bytes %", "Δ PSNR dB", "Δ (D + λR) %"]
        head += ["rate at equal PSNR %"] if s is not None else []
        out += md.table([*head, "Δ (D + λR) % image by image", "CPU s" if timer == "cpu_s" else "wall s"], body)
    return out


def own_rows(
    rows: list[dict], presets: list[str], images: list[Path], ladder: dict, path: Path, log: Path
) -> list[dict]:
    """The factor-1 rows missing from ``rows``, made from ``ladder``'s rows of the same points and
    images (appended to ``log``, each naming ``path`` in ``source``); ValueError, before anything
    is written, where a ladder row was made with other steps than the point has."""
    from inrcodec.encoder import latent_rdo

    have = {key(r) for r in rows}
    theirs = {(r["image"], r["setting"]): r for r in ladder["rows"]}
    new = []
    for name in presets:
        cfg = point(name)
        for image in images:
            r = theirs.get((image.stem, setting(cfg.lam)))
            if r is None or (image.stem, name, 1.0, "steps", "cpu") in have:
                continue
            if r.get("steps") != cfg.steps:
                raise ValueError(
                    f"{repo_path(path)}: its {setting(cfg.lam)} row of {image.stem} took {r.get('steps')} steps, "
                    f"the point {cfg.steps}"
                )
            err = 255.0**2 * 10 ** (-r["psnr"] / 10)
            cost = latent_rdo.file_cost(bytes(r["bytes"]), err, cfg.lam, round(r["bytes"] * 8 / r["bpp"]))
            new.append(
                {
                    "image": image.stem,
                    "preset": name,
                    "factor": 1.0,
                    "steps": r["steps"],
                    "bytes": r["bytes"],
                    "bpp": r["bpp"],
                    "psnr": r["psnr"],
                    "cost": cost,
                    "cpu_s": r["encode_s"],
                    "source": repo_path(path),
                }
            )
    if new:
        append_jsonl(log, new)
    return new


def ladder_curves(
    rows: list[dict], groups: list[list[str]], factors: list[float], ladder: dict, jpeg: dict
) -> list[str]:
    """Each group's curve at each factor on this run's images: ``ladder``'s rows (a latent_grid
    results file) with the group's points' rows from ``rows`` in place of theirs; its BD-rate
    against the curve with every point's factor-1 row from ``rows`` and against ``jpeg``. Where
    something is missing, one line that says what."""
    images = sorted({r["image"] for r in rows})
    mine = {(r["image"], setting(point(r["preset"]).lam), r["factor"]): r for r in rows}
    scaled = {setting(point(name).lam) for group in groups for name in group}
    have = {(r["image"], r["setting"]): r for r in ladder["rows"] if r["image"] in images}
    settings = [s for s in ladder["settings"] if all((i, s) in have for i in images)]
    lacking = [
        *(f"the ladder's {s}" for s in sorted(scaled - set(settings))),
        *(f"JPEG's {i}" for i in images if not any(r["image"] == i for r in jpeg["rows"])),
        *(f"this run's {s} ×{f:g} on {i}" for i in images for s in sorted(scaled) for f in factors
          if (i, s, f) not in mine),
    ]  # fmt: skip
    if lacking:
        return ["", f"No ladder curve: it lacks {', '.join(lacking[:4])}{' ...' if len(lacking) > 4 else ''}."]

    def curve_at(group: set[str], f: float) -> list[dict]:
        got = [
            dict(mine[(i, s, f if s in group else 1.0)] if s in scaled else have[(i, s)], image=i, setting=s)
            for i in images
            for s in settings
        ]
        return curve(got, settings)

    def bd(anchor: list[dict], test: list[dict]) -> str:
        a = sorted((c["bpp"], c["psnr"]) for c in anchor)
        t = sorted((c["bpp"], c["psnr"]) for c in test)
        try:
            return f"{bd_rate(*zip(*a), *zip(*t)):+.1f} %"
        except NoOverlap:
            return "—"

    anchor = curve([r for r in jpeg["rows"] if r["image"] in images], jpeg["settings"])
    base = curve_at(set(), 1.0)
    body = [["none", "×1", "+0.0 %", bd(anchor, base)]]
    for group in groups:
        names = {setting(point(name).lam) for name in group}
        body += [[", ".join(group), f"×{f:g}", bd(base, curve_at(names, f)), bd(anchor, curve_at(names, f))]
                 for f in factors if f != 1.0]  # fmt: skip
    return [
        "",
        f"The ladder's curve on {', '.join(images)}: its points' rows from the `--ladder` file, those of "
        f"{', '.join(sorted(scaled))} from this run (at ×1 where another group is scaled):",
        "",
        *md.table(["points scaled", "factor", "BD-rate against ×1", "BD-rate against JPEG 4:2:0"], body),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    photo_options(p, 1, 2)
    p.add_argument("--presets", default="grid-high,grid-xhigh", help="grid presets, comma-separated")
    p.add_argument("--factors", default="1,2,4", help="step factors, comma-separated (1, the preset's own, is added)")
    p.add_argument("--scale", choices=("steps", "batch"), default="steps", help="what the factors scale")
    p.add_argument("--device", default="cpu", help="where the training steps run: cpu (default) or cuda")
    p.add_argument("--workers", type=int, default=2, help="fits at once, one torch thread each")
    p.add_argument(
        "--ladder",
        type=Path,
        help="a latent_grid results file (latent-proto.json) of the presets' ladder on these photos: "
        "the report adds each factor's curve and its BD-rate",
    )
    p.add_argument(
        "--groups",
        help="with --ladder: points of --presets scaled together, comma-separated, groups separated by ';' "
        "(default: all of them, one group)",
    )
    p.add_argument(
        "--own-from-ladder",
        action="store_true",
        help="with --ladder (CPU): the points' own rows (factor 1) this run lacks from that file, not fitted again",
    )
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {repo_path(OUT)})")
    args = p.parse_args(argv)
    if args.own_from_ladder and (args.ladder is None or args.device != "cpu"):
        p.error("--own-from-ladder: needs --ladder, and rows on the CPU (the ladder's were made there)")
    try:
        presets = [canonical(name) for name in args.presets.split(",")]
    except KeyError as e:
        p.error(f"--presets: {e.args[0]} is neither a grid preset ({', '.join(config.LATENT_PRESETS)}) "
                "nor lam=<a lambda of the presets' ladder>")  # fmt: skip
    if len({point(name).lam for name in presets}) < len(presets):
        p.error("--presets: one point named twice")
    try:
        groups = [[canonical(n) for n in g.split(",")] for g in args.groups.split(";")] if args.groups else [presets]
    except KeyError as e:
        p.error(f"--groups: {e.args[0]} is not one of --presets")
    if stray := [n for g in groups for n in g if n not in presets]:
        p.error(f"--groups: {stray[0]} is not one of --presets")
    if args.groups and args.ladder is None:
        p.error("--groups: with --ladder")
    ladder = jpeg = None
    if args.ladder is not None:
        try:
            ladder = json.loads(args.ladder.read_text())
            ladder["rows"], ladder["settings"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            p.error(f"--ladder: {args.ladder}: not a latent_grid results file ({e})")
        try:
            jpeg = json.loads((ANCHOR / "jpeg420.json").read_text())
        except (OSError, ValueError) as e:
            p.error(f"--ladder: JPEG's rows on the tuning photos, {repo_path(ANCHOR / 'jpeg420.json')}: {e}")
    try:
        factors = sorted({1.0, *(float(f) for f in args.factors.split(","))})
    except ValueError:
        factors = []
    if not factors or not all(0 < f <= 16 and math.isfinite(f) for f in factors):
        p.error("--factors: numbers in (0, 16], comma-separated")
    if not 1 <= args.workers <= 64:
        p.error("--workers: 1 to 64")
    try:
        config.latent_device(args.device)
    except ValueError as e:
        p.error(f"--device: {e}")
    images = photos(p, args)

    from inrcodec.executors import executor

    log = args.out / "latent-steps.jsonl"
    rows = read_jsonl(log)
    if args.own_from_ladder:
        try:
            rows += own_rows(rows, presets, images, ladder, args.ladder, log)
        except ValueError as e:
            p.error(f"--own-from-ladder: {e}")
    done = {key(r) for r in rows}
    jobs = [
        (str(i), preset, f, args.scale, args.device)
        for f in sorted(factors, reverse=True)  # the longest first: the workers end together
        for preset in presets
        for i in images
        if key({"image": i.stem, "preset": preset, "factor": f, "scale": args.scale, "device": args.device}) not in done
    ]
    print(f"{len(jobs)} fits to run ({len(done)} done before)", flush=True)
    with executor(workers=args.workers) as ex:
        for row in ex.map(fit_one, jobs):
            append_jsonl(log, [row])  # one line a fit: a kill loses only the fits running
            rows.append(row)
            print(json.dumps(row), flush=True)
    doc = {"factors": factors, "command": " ".join(command_line()), "provenance": provenance()}
    stems = {i.stem for i in images}

    def this_run(r: dict) -> bool:
        """This run's scale on its device, and the preset's own rows (factor 1) there."""
        image, _, factor, scale, device = key(r)
        return image in stems and device == args.device and (factor == 1.0 or scale == args.scale)

    mine = [r for r in rows if this_run(r)]
    timed = "CPU s of one core a fit" if args.device == "cpu" else f"wall s a fit, its steps on {args.device}"
    lines = [
        f"The grid presets with their training {args.scale} scaled, against their own "
        f"(`{doc['command']}`; rows in `latent-steps.jsonl`; {timed}).",
        *tables(mine, presets, factors, "cpu_s" if args.device == "cpu" else "wall_s"),
        *(ladder_curves(mine, groups, factors, ladder, jpeg) if ladder is not None else []),
    ]
    if taken := [r for r in mine if r.get("source")]:
        lines[1:1] = [
            "",
            f"{len(taken)} factor-1 rows are {', '.join(sorted({r['source'] for r in taken}))}'s own "
            "(`--own-from-ladder`): their CPU s are that run's.",
        ]
    stem = "latent-steps" if args.scale == "steps" else "latent-batch"
    write_report(args.out, stem + ("" if args.device == "cpu" else f"-{args.device.replace(':', '')}"), doc, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
