"""Regenerate docs/benchmark.md's tables, BD-rates and plot from the results in benchmarks/results/.

    python -m benchmarks.report  # results/kodak, results/photos-first8, results/kodak-upscale, results/ablations

Only the blocks between ``<!-- generated:NAME begin -->`` and ``<!-- generated:NAME end -->``
markers are rewritten; the prose around them is left alone. Nothing here measures anything.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from benchmarks import ablations
from benchmarks import markdown as md
from benchmarks.bd_rate import bd_psnr, bd_rate, overlap
from benchmarks.plot import PUBLISHED_INR, is_full_kodak, load_published, load_results, plot, points
from benchmarks.runner import REPO, RESULTS, repo_path

DOC = REPO / "docs" / "benchmark.md"
ANCHOR = "jpeg420"  # every codec's BD-rate is against this one
INR = "inrcodec"
INR_ANCHORS = ("webp", "avif")  # and inrcodec's against these measured ones too
# The same comparison on tuning photos, so a gain tuned to Kodak would show (docs/benchmark.md).
PHOTOS = "photos-first8"
PHOTOS_COMMAND = (
    "python -m benchmarks.kodak_rd --images ../shared/photos --n-images 8 --codecs jpeg420,inrcodec --workers 2"
)
# The release whose inrcodec results "what changed" compares against (results/archive/<release>/).
PREVIOUS = "1.2.0"
# Release 2.0's first ladder (torch's kernels in the fused step, 1.15x 1.2's steps), which the
# presets' native kernels (1.4x the steps) replaced: "what the native step bought".
TORCH_KERNELS = "2.0.0-torch-kernels"
# The native step's ladder with every layer Brotli-packed, before the presets took entropy coder
# "auto": "what range coding bought".
BROTLI = "2.0.0-native-brotli"


def _link(path: Path, doc: Path) -> str:
    """``path`` relative to the folder of ``doc`` (for links in the markdown)."""
    import os

    return os.path.relpath(path.resolve(), doc.resolve().parent)


def _source(docs: list[dict], folder: Path) -> str:
    prov = docs[0]["provenance"]
    v = prov["versions"]
    m = prov["machine"]
    incomplete = [d["name"] for d in docs if not d["complete"]]
    commits = sorted({c for d in docs for c in d["provenance"].get("row_commits", [])})
    crop = "full size" if prov.get("crop") is None else f"central {prov['crop']}x{prov['crop']} crops"
    return (
        f"From `{repo_path(folder)}/`: {len(docs[0]['images'])} images of `{prov['dataset']}` ({crop}); rows made at "
        f"commit(s) {', '.join(c[:8] for c in commits)}; written {prov['date']} on {m['platform']} "
        f"({m['cpu_count']} CPUs, one torch thread per worker); Pillow {v['pillow']}, torch {v['torch']}, "
        f"numpy {v['numpy']}, libjpeg {v.get('jpg')}, libwebp {v.get('webp')}, OpenJPEG {v.get('jpg_2000')}, "
        f"libavif {v.get('avif')}."
        + (f" **Incomplete: {', '.join(incomplete)}** (rerun the benchmark to finish)." if incomplete else "")
    )


def _mean(rows: list[dict], setting: str, key: str) -> float:
    return float(np.mean([r[key] for r in rows if r["setting"] == setting]))


def _bd_cells(anchor: tuple[list, list], test: tuple[list, list]) -> list[str]:
    """BD-rate, BD-PSNR and the shared PSNR range of ``test`` against ``anchor``: three table cells."""
    cells = []
    try:
        cells.append(f"{bd_rate(*anchor, *test):+.1f}%")
    except ValueError:
        cells.append("–")
    try:
        cells.append(f"{bd_psnr(*anchor, *test):+.2f} dB")
    except ValueError:
        cells.append("–")
    rng = overlap(anchor[1], test[1])
    cells.append("none" if rng is None else f"{rng[0]:.2f}–{rng[1]:.2f} dB")
    return cells


def per_image_bd(anchor: dict, test: dict) -> tuple[list[float], int]:
    """BD-rate of ``test`` against ``anchor`` image by image (each over its own shared PSNR
    range): the rates, and how many images had no shared range (images with fewer than two rows
    on either side are left out). The mean curves average images whose rates differ between
    codecs, so this view can disagree with the headline."""
    rates, none = [], 0
    for name in test["images"]:
        a = sorted((r["bpp"], r["psnr"]) for r in anchor["rows"] if r["image"] == name)
        t = sorted((r["bpp"], r["psnr"]) for r in test["rows"] if r["image"] == name)
        if len(a) < 2 or len(t) < 2:
            continue  # an incomplete run (the source line says so), not a missing overlap
        try:
            rates.append(bd_rate(*zip(*a), *zip(*t)))
        except ValueError:
            none += 1
    return rates, none


def _inr(folder: Path) -> dict | None:
    return next((d for d in load_results(folder) if d["name"] == INR), None)


def _fit(doc: dict, setting: str) -> str:
    """'steps, peak lr' of a setting's dense fit (``h144-d1.00``), from the run's own recorded config,
    and its step and sampler where they are not release 1.2's (``fused``, ``importance``)."""
    cfgs = doc["provenance"].get("config", {}).get("encode_configs", {})
    cfg = cfgs.get(setting.split("-")[0])
    if cfg is None:
        return "?"
    fit = cfg["fit"]
    ran = sorted({str(r.get("kernel")) for r in doc.get("rows", []) if r.get("setting") == setting})
    kernel = f"kernel {fit.get('kernel', 'torch')}"
    kernel += f" ({', '.join(ran)} ran)" if fit.get("kernel") == "auto" else ""  # what the rows say ran
    extra = ("fused" if fit.get("fused") else "", fit.get("sampler", ""), kernel)
    extra = extra if fit.get("kernel") else extra[:2]  # the field is recorded only when not torch's
    return ", ".join([f"{fit['steps']}", f"{fit['lr']:g}", *(e for e in extra if e)])


def release_block(old_folder: Path, new_folder: Path, old_label: str = PREVIOUS, name: str | None = None) -> str:
    """inrcodec now against an earlier release's run on the same images, paired image by image:
    per setting both ran, the change in PSNR and in bytes; then the two curves' BD-rate. ``name``:
    how the text calls the earlier run (default "release OLD_LABEL")."""
    name = name or f"release {old_label}"
    old, new = _inr(old_folder), _inr(new_folder)
    if old is None or new is None:
        return f"Needs inrcodec results in both `{repo_path(old_folder)}/` and `{repo_path(new_folder)}/`."
    key = lambda d: {(r["image"], r["setting"]): r for r in d["rows"]}  # noqa: E731
    a, b = key(old), key(new)
    out = [
        f"inrcodec now (`{repo_path(new_folder)}/`) against {name} (`{repo_path(old_folder)}/`), image by"
        " image: each row compares the same image at the same width.",
        "",
        *md.table(
            (
                "setting",
                f"fit steps, peak lr: {old_label} → now",
                "images",
                "Δ PSNR (dB), mean (min … max)",
                "Δ bytes, mean",
            )
        ),
    ]
    for setting in [s for s in new["settings"] if s in old["settings"]]:
        pairs = [(a[k], b[k]) for k in b if k[1] == setting and k in a]
        if not pairs:
            continue
        dp = [y["psnr"] - x["psnr"] for x, y in pairs]
        db = [100 * (y["bytes"] / x["bytes"] - 1) for x, y in pairs]
        steps = f"{_fit(old, setting)} → {_fit(new, setting)}"
        spread = f"{np.mean(dp):+.2f} ({min(dp):+.2f} … {max(dp):+.2f})"
        out.append(md.row((setting, steps, len(pairs), spread, f"{np.mean(db):+.1f}%")))
    only_old = [s for s in old["settings"] if s not in new["settings"]]
    rates, _none = per_image_bd(old, new)
    cells = " | ".join(_bd_cells(points(old), points(new)))
    out += [
        "",
        f"BD-rate of the current curve against {name}'s: {cells} on the mean"
        " curves"
        + (f"; image by image, median {np.median(rates):+.1f}% ({len(rates)} images)" if rates else "")
        + (f"; settings only {old_label} ran: {', '.join(only_old)}" if only_old else "")
        + ".",
    ]
    return "\n".join(out)


def rd_block(folder: Path, doc_path: Path, command: str = "python -m benchmarks.kodak_rd") -> str:
    docs = load_results(folder)
    if not docs:
        return f"No results in `{repo_path(folder)}/` yet: run `{command}`."
    by = {d["name"]: d for d in docs}
    published = load_published() if is_full_kodak(docs) else None
    png = plot(docs, published, folder / "rd.png", f"{docs[0]['provenance']['dataset']}: rate–distortion")
    out = [_source(docs, folder), "", f"![RD plot]({_link(png, doc_path)})", ""]

    out += ["Mean over images per setting (CompressAI convention); times are per image, one thread.", ""]
    out += md.table(("codec", "setting", "bpp", "PSNR (dB)", "encode s", "decode s"))
    for d in docs:
        for c in d["curve"]:
            enc, dec = _mean(d["rows"], c["setting"], "encode_s"), _mean(d["rows"], c["setting"], "decode_s")
            n = "" if c["n"] == len(d["images"]) else f" ({c['n']} images)"
            cells = (f"{c['bpp']:.3f}", f"{c['psnr']:.2f}", f"{enc:.2f}", f"{dec:.3f}")
            out.append(md.row((d["label"], c["setting"] + n, *cells)))

    out += [
        "",
        "BD-rate (negative: fewer bits for the same PSNR) over the PSNR range both curves share; a"
        " codec's curve is its front (the settings no other of its settings beats at fewer bits).",
        "",
    ]
    out += md.table(("test", "anchor", "BD-rate", "BD-PSNR", "PSNR range"))
    pairs = [(ANCHOR, d["name"]) for d in docs if d["name"] != ANCHOR]
    pairs += [(a, INR) for a in INR_ANCHORS if a in by and INR in by]
    for a, t in pairs:
        if a in by and t in by:
            out.append(md.row((by[t]["label"], by[a]["label"], *_bd_cells(points(by[a]), points(by[t])))))
    if INR in by:
        # What pruning buys or costs: inrcodec's dense fits and its pruned (IMP) points as curves of their own.
        inr = by[INR]
        dense = {c["setting"] for c in inr["curve"] if c["setting"].endswith("-d1.00")}
        pruned = {c["setting"] for c in inr["curve"]} - dense
        subsets = [("dense networks only", dense), ("pruned (IMP) points only", pruned)] if pruned else []
        for label, keep in subsets:
            if len(keep) >= 2 and ANCHOR in by:
                cells = _bd_cells(points(by[ANCHOR]), points(inr, keep))
                out.append(md.row((f"{inr['label']}, {label}", by[ANCHOR]["label"], *cells)))
        if len(dense) >= 2 and len(pruned) >= 2:
            cells = _bd_cells(points(inr, dense), points(inr, pruned))
            out.append(md.row((f"{inr['label']}, pruned (IMP) points", f"{inr['label']}, dense networks", *cells)))
    if published and INR in by:
        for name in PUBLISHED_INR:
            if name in published:
                c = published[name]
                cells = _bd_cells((c["bpp"], c["psnr_rgb"]), points(by[INR]))
                out.append(md.row((by[INR]["label"], f"{name} (published)", *cells)))
    if INR in by and ANCHOR in by:
        rates, none = per_image_bd(by[ANCHOR], by[INR])
        if rates:
            out += [
                "",
                f"Image by image (each image's own {by[INR]['label']} and {by[ANCHOR]['label']} curves, over the PSNR"
                f" range they share): median BD-rate {np.median(rates):+.1f}%, from {min(rates):+.1f}% to"
                f" {max(rates):+.1f}%; {sum(r < 0 for r in rates)} of {len(rates)} images below zero"
                + (f"; {none} image(s) with no shared range." if none else "."),
            ]
    return "\n".join(out)


def upscale_block(folder: Path, options: str = "") -> str:
    docs = load_results(folder, "upscale")
    if not docs:
        command = " ".join(["python -m benchmarks.upscale --workers 2", options]).strip()
        return f"No results in `{repo_path(folder)}/` yet: run `{command}`."
    d = docs[0]
    cfg = d["provenance"]["config"]
    rows = d["rows"]
    out = [_source(docs, folder), "", f"inrcodec preset `{cfg['preset']}`, downscale x{cfg['factor']} (Lanczos).", ""]
    out += md.table(
        ("method", "bpp (per full-size pixel)", "PSNR vs original (dB)", "decode s"),
        (
            (c["setting"], md.fmt(c["bpp"], ".3f"), f"{c['psnr']:.2f}", f"{_mean(rows, c['setting'], 'decode_s'):.3f}")
            for c in d["curve"]
        ),
    )
    per = {}
    for r in rows:
        per.setdefault(r["image"], {})[r["setting"]] = r["psnr"]
    full = [p for p in per.values() if len(p) == len(d["settings"])]
    native = float(np.mean([r["native_psnr"] for r in rows if r["setting"] == "inr-render"]))
    wins = {
        other: sum(p["inr-render"] > p[other] for p in full)
        for other in ("inr-native+bicubic", "inr-native+lanczos", "bicubic", "lanczos")
    }
    out += [
        "",
        f"The codec's PSNR at its native (downscaled) size: {native:.2f} dB. Images where rendering at full "
        "size beats the alternative: " + ", ".join(f"{k} {v}/{len(full)}" for k, v in wins.items()) + ".",
    ]
    return "\n".join(out)


def ablations_block(folder: Path) -> str:
    docs = load_results(folder, "ablation")
    if not docs:
        return f"No results in `{repo_path(folder)}/` yet: run `python -m benchmarks.ablations`."
    order = list(ablations.ABLATIONS)
    docs.sort(key=lambda d: order.index(d["name"]) if d["name"] in order else len(order))
    return f"From `{repo_path(folder)}/`.\n\n" + "\n".join(ablations.markdown(d) for d in docs)


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- generated:{name} begin[^>]*-->\n).*?(<!-- generated:{name} end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no '<!-- generated:{name} begin -->' ... end block in the document")
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rd", type=Path, default=RESULTS / "kodak", help="RD results folder")
    p.add_argument("--photos", type=Path, default=RESULTS / PHOTOS, help="RD results on the tuning photos")
    p.add_argument("--upscale", type=Path, default=RESULTS / "kodak-upscale", help="upscaling results folder")
    p.add_argument("--ablations", type=Path, default=RESULTS / "ablations", help="ablation results folder")
    p.add_argument("--doc", type=Path, default=DOC, help="the markdown file to update")
    args = p.parse_args(argv)
    text = args.doc.read_text()
    try:
        text = replace_block(text, "rd", rd_block(args.rd, args.doc))
        text = replace_block(text, "rd-photos", rd_block(args.photos, args.doc, PHOTOS_COMMAND))
        for name, folder in (("release-kodak", args.rd), ("release-photos", args.photos)):
            text = replace_block(text, name, release_block(RESULTS / "archive" / PREVIOUS / folder.name, folder))
        for name, folder in (("kernels-kodak", args.rd), ("kernels-photos", args.photos)):
            old = RESULTS / "archive" / TORCH_KERNELS / folder.name
            text = replace_block(text, name, release_block(old, folder, "2.0 (torch's)", "the first 2.0 ladder"))
        for name, folder in (("coder-kodak", args.rd), ("coder-photos", args.photos)):
            old = RESULTS / "archive" / BROTLI / folder.name
            text = replace_block(text, name, release_block(old, folder, "2.0 (Brotli)", "the Brotli-packed ladder"))
        text = replace_block(text, "upscale", upscale_block(args.upscale))
        grid = args.upscale.with_name(f"{args.upscale.name}-grid-medium")  # the latent-grid family's
        text = replace_block(text, "upscale-grid", upscale_block(grid, "--preset grid-medium"))
        text = replace_block(text, "ablations", ablations_block(args.ablations))
    except ValueError as e:
        print(f"error: {args.doc}: {e}", file=sys.stderr)
        return 2
    args.doc.write_text(text)
    print(f"updated {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
