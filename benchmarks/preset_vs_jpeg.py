"""The default preset against JPEG on four Kodak images, from the committed benchmark results.

    python -m benchmarks.preset_vs_jpeg          # writes benchmarks/results/kodak/preset_vs_jpeg.{json,md}

The presets are ladder points of the benchmark (tests pin it), so the default preset's bpp (bytes of
its .inr file) and PSNR per image are rows of ``benchmarks/results/kodak/inrcodec.json``. JPEG
(Pillow, 4:2:0, optimize=True) gets, per image, the highest quality whose bpp is at or under
inrcodec's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks import markdown as md
from benchmarks.perf import jpeg_at_or_below
from benchmarks.runner import REPO, RESULTS
from inrcodec import config, image

IMAGES = ("kodim01", "kodim05", "kodim15", "kodim23")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS / "kodak")
    ap.add_argument("--images", type=Path, default=REPO.parent / "shared" / "kodak")
    ap.add_argument("--preset", default=config.SIREN_DEFAULT_PRESET)  # its committed rows: the SIREN's
    args = ap.parse_args()
    cfg = config.preset(args.preset)
    setting = f"h{cfg.arch.hidden}-d{cfg.prune.density:.2f}"
    rows = json.loads((args.results / "inrcodec.json").read_text())["rows"]
    out = []
    for name in IMAGES:
        row = next(r for r in rows if r["image"] == name and r["setting"] == setting)
        arr = image.load(args.images / f"{name}.png")
        out.append({"image": name, "bpp": row["bpp"], "psnr": row["psnr"], "jpeg": jpeg_at_or_below(arr, row["bpp"])})
    head = ("image", f"{args.preset} bpp", f"{args.preset} PSNR (dB)", "JPEG quality", "JPEG bpp", "JPEG PSNR (dB)")
    lines = md.table((*head, "Δ PSNR (dB)"))
    for r in out:
        j = r["jpeg"]
        ours = (r["image"], f"{r['bpp']:.3f}", f"{r['psnr']:.2f}")
        if j is None:
            lines.append(md.row((*ours, "—", "no JPEG this small", "—", "—")))
        else:
            d = r["psnr"] - j["psnr"]
            lines.append(md.row((*ours, j["quality"], f"{j['bpp']:.3f}", f"{j['psnr']:.2f}", f"{d:+.2f}")))
    (args.results / "preset_vs_jpeg.json").write_text(
        json.dumps({"preset": args.preset, "setting": setting, "rows": out}, indent=1) + "\n"
    )
    (args.results / "preset_vs_jpeg.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
