"""RTL against one IMP mask at equal bytes, with the benchmark's Bjøntegaard measure.

    python -m benchmarks.rtl_rd        # reads docs/rtl/<image>/results.json, prints a markdown table

Each image's ``inrcodec rtl`` run gives two rate–distortion curves (one point per sparsity, the
rate from the bytes of each real ``.inr`` file, masks and label map included). BD-rate and
BD-PSNR are those of ``benchmarks.bd_rate``, RTL tested against IMP as the anchor; the mean curve
averages bpp and PSNR over images per sparsity (the benchmark's convention).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks import markdown as md
from benchmarks.bd_rate import bd_psnr, bd_rate, overlap
from benchmarks.runner import REPO


def _cell(fn, *curves) -> str:
    try:
        return f"{fn(*curves):+.1f}" if fn is bd_rate else f"{fn(*curves):+.2f}"
    except ValueError:
        return "–"


def table(folder: Path) -> str:
    lines = md.table(
        ("image", "IMP bpp range", "RTL bpp range", "BD-rate RTL vs IMP (%)", "BD-PSNR (dB)", "shared PSNR range (dB)")
    )
    curves = {}
    for path in sorted(folder.glob("*/results.json")):
        levels = json.loads(path.read_text())["levels"]
        imp = ([lv["imp"]["bpp"] for lv in levels], [lv["imp"]["psnr"] for lv in levels])
        rtl = ([lv["rtl"]["bpp"] for lv in levels], [lv["rtl"]["psnr"] for lv in levels])
        curves[path.parent.name] = (imp, rtl)
    mean_imp = tuple(np.mean([c[0][i] for c in curves.values()], axis=0).tolist() for i in (0, 1))
    mean_rtl = tuple(np.mean([c[1][i] for c in curves.values()], axis=0).tolist() for i in (0, 1))
    for name, (imp, rtl) in [*curves.items(), ("mean curve", (mean_imp, mean_rtl))]:
        rng = overlap(imp[1], rtl[1])
        ranges = [f"{min(c[0]):.3f}–{max(c[0]):.3f}" for c in (imp, rtl)]
        bd = (_cell(bd_rate, *imp, *rtl), _cell(bd_psnr, *imp, *rtl))
        lines.append(md.row((name, *ranges, *bd, "none" if rng is None else f"{rng[0]:.2f}–{rng[1]:.2f}")))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", type=Path, default=REPO / "docs" / "rtl")
    print(table(ap.parse_args().folder))


if __name__ == "__main__":
    main()
