"""The rate–distortion benchmark: every codec at fixed settings on every image of a verified folder.

    python -m benchmarks.kodak_rd                      # all codecs, ../shared/kodak, 1 worker
    python -m benchmarks.kodak_rd --workers 2          # the full run (docs/benchmark.md: time)
    python -m benchmarks.kodak_rd --quick              # 3 images, 256x256 crops, short fits
    python -m benchmarks.kodak_rd --ray auto           # the jobs as Ray tasks on a cluster (docs/batch.md)
    python -m benchmarks.kodak_rd --codecs jpeg420,webp --images DIR --out DIR

Writes ``<out>/<codec>.json`` (per-image rows and provenance) and keeps ``<out>/rows/`` as the
resume cache: rerun the same command after a kill and only the missing results are computed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import codecs
from benchmarks.runner import REPO, RESULTS, DatasetError, dataset, dataset_meta, ray_option, run

DEFAULT_IMAGES = REPO.parent / "shared" / "kodak"
QUICK_IMAGES = 3  # --quick: the first three images of the folder
QUICK_CROP = 256  # --quick: their central 256x256 pixels


def parser(description: str, default_images: Path, default_codecs: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--images", type=Path, default=default_images, help=f"folder with SHA256SUMS ({default_images})")
    if default_codecs is not None:
        p.add_argument("--codecs", default=default_codecs, help=f"comma-separated, from: {', '.join(codecs.CODECS)}")
    p.add_argument("--workers", type=int, default=1, help="processes, one torch thread each (default 1)")
    ray_option(p)
    quick = f"{QUICK_IMAGES} images, {QUICK_CROP}x{QUICK_CROP} crops, short fits (a smoke test)"
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--n-images", type=int, help="only the first N images of the folder (results: <dataset>-first<N>)")
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results/<dataset>)")
    p.add_argument("--device", default="cpu", help="torch device of the inrcodec encoder and decoder (default cpu)")
    return p


def images_for(args) -> tuple[list, str, int | None]:
    """The verified images (a subset with --quick), the dataset name and the crop."""
    refs = dataset(args.images)
    name = args.images.resolve().name
    if args.n_images is not None:
        if args.n_images < 1:
            raise DatasetError("--n-images must be at least 1")
        refs, name = refs[: args.n_images], f"{name}-first{args.n_images}"
    if args.quick:
        return refs[:QUICK_IMAGES], f"{name}-quick", QUICK_CROP
    return refs, name, None


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0], DEFAULT_IMAGES, ",".join(codecs.CODECS)).parse_args(argv)
    try:
        refs, name, crop = images_for(args)
        chosen = codecs.make([c.strip() for c in args.codecs.split(",") if c.strip()], args.quick, args.device)
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or RESULTS / name
    meta = dataset_meta(args.images, name, args.quick)
    ok = run(chosen, refs, out, workers=args.workers, crop=crop, meta=meta, ray=args.ray, device=args.device)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
