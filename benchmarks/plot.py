"""The RD plot: measured curves solid with markers, published curves dashed and thin.

Published curves are read at run time from ``../shared/published/kodak.json`` (never copied into
the repository) and drawn only next to results on the full Kodak images.

    python -m benchmarks.plot [benchmarks/results/kodak] [-o docs/kodak_rd.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.runner import REPO, RESULTS  # noqa: E402

PUBLISHED = REPO.parent / "shared" / "published" / "kodak.json"
# The published INR codecs every Kodak report reads its curves against (BD-rate and BD-PSNR).
PUBLISHED_INR = (
    "COIN",
    "COIN++",
    "Struempler et al. 2022 (basic, 8-bit)",
    "Struempler et al. 2022 (meta-learned, 7-bit)",
    "C3",
    "Cool-chic 5.0",
)
# Colour per family, so a measured codec and its published counterpart match.
COLOURS = {
    "jpeg420": "tab:blue",
    "JPEG (Pillow 7.1.2)": "tab:blue",
    "jpeg444": "tab:cyan",
    "webp": "tab:orange",
    "WebP (Pillow 7.1.2)": "tab:orange",
    "jpeg2000": "tab:green",
    "JPEG2000 (ffmpeg)": "tab:green",
    "avif": "tab:purple",
    "inrcodec": "black",
    "latent-proto": "tab:red",  # the latent-grid family (benchmarks.latent_grid), beside release 1.2's black
}
OTHER = ["yellowgreen", "saddlebrown", "tab:pink", "tab:gray", "tab:olive", "goldenrod", "teal", "navy", "magenta"]


def load_results(folder: Path, kind: str = "rd") -> list[dict]:
    """Every results JSON of that kind in ``folder``, sorted by name."""
    docs = []
    for path in sorted(Path(folder).glob("*.json")):
        doc = json.loads(path.read_text())
        if doc.get("kind") == kind:
            docs.append(doc)
    return docs


def load_published(path: Path = PUBLISHED) -> dict | None:
    """The published curves, or None when the file is not there."""
    return json.loads(path.read_text())["curves"] if path.is_file() else None


def front(curve: list[dict]) -> list[dict]:
    """The settings no other setting beats (at most the bits, more PSNR), by increasing rate.

    A codec's curve is the best it offers at each rate: inrcodec's settings come from several
    networks and pruning rounds, and a pruned point below a dense one of fewer bytes is not an
    operating point anyone would pick (the tables still list every setting).
    """
    out: list[dict] = []
    for c in sorted(curve, key=lambda c: (c["bpp"], -c["psnr"])):
        if not out or c["psnr"] > out[-1]["psnr"]:
            out.append(c)
    return out


def points(doc: dict, settings: set[str] | None = None) -> tuple[list[float], list[float]]:
    """(bpp, PSNR) of a measured codec's front, by increasing rate; ``settings`` restricts it to those."""
    pts = front([c for c in doc["curve"] if settings is None or c["setting"] in settings])
    return [c["bpp"] for c in pts], [c["psnr"] for c in pts]


def plot(docs: list[dict], published: dict | None, path: Path, title: str, max_bpp: float = 2.0) -> Path:
    fig, ax = plt.subplots(figsize=(12, 6.5), dpi=110)
    spare = iter(OTHER)
    if published:
        for name, c in published.items():
            colour = COLOURS.get(name) or next(spare, "gray")
            ax.plot(c["bpp"], c["psnr_rgb"], "--", lw=1, color=colour, alpha=0.8, label=f"{name} (published)")
    for doc in docs:
        bpp, psnr = points(doc)
        colour = COLOURS.get(doc["name"]) or next(spare, "gray")
        lw = 2.2 if doc["name"] == "inrcodec" else 1.6
        label = doc["label"] + ("" if doc.get("complete") else " (incomplete)")
        ax.plot(bpp, psnr, "-o", lw=lw, ms=4, color=colour, label=label)
        on = {c["setting"] for c in front(doc["curve"])}
        off = [c for c in doc["curve"] if c["setting"] not in on]
        if off:  # settings off the front: drawn, hollow, so nothing measured is hidden
            ax.plot(
                [c["bpp"] for c in off],
                [c["psnr"] for c in off],
                "o",
                ms=5,
                mfc="none",
                color=colour,
                label=f"{doc['label']}: settings below its curve",
            )
    ax.set_xlim(0, max_bpp)
    ax.set_xlabel("bits per pixel (mean over images)")
    ax.set_ylabel("RGB PSNR, dB (mean over images)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def is_full_kodak(docs: list[dict]) -> bool:
    """Published numbers are for the 24 uncropped Kodak images; draw them only next to those."""
    if not docs:
        return False
    prov = docs[0]["provenance"]
    return prov.get("dataset") == "kodak" and prov.get("crop") is None and len(docs[0]["images"]) == 24


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="RD plot of measured results (and published curves on Kodak)")
    p.add_argument("results", nargs="?", type=Path, default=RESULTS / "kodak")
    p.add_argument("-o", "--output", type=Path, help="PNG path (default <results>/rd.png)")
    args = p.parse_args(argv)
    docs = load_results(args.results)
    if not docs:
        print(f"error: no results JSON in {args.results}", file=sys.stderr)
        return 2
    published = load_published() if is_full_kodak(docs) else None
    out = plot(docs, published, args.output or args.results / "rd.png", f"{args.results.name}: rate–distortion")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
