"""What the four-pass context model (format version 9) costs the decoder, against the checkerboard
(version 8), side by side in one process.

    python -m benchmarks.context_decode --image ../shared/kodak/kodim23.png --presets grid-low,grid-max \
        --steps 2000 --out benchmarks/results/context-decode.json

Each preset's point is fitted twice on the image, once with each context model (``--steps``
shortens the fits: the decoder's work is set by the grids' sizes, not by how long the latents
trained, since the context network runs at every latent), and each file is then read
(``decoder.parse``: range decoding under the context model) and rendered at its native size
``--repeats`` times, the two files alternating (before, after, after, before, ...) so that a
change of load on this shared machine falls on both, on the decoder's default threads.
Records each run's seconds, the medians, their ratio and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.runner import REPO, alternating, command_line
from inrcodec import image
from inrcodec.config import LATENT_FOUR_PASS_TWINS as FOUR_PASS_TWINS
from inrcodec.format.latent import FOUR_PASS_VERSION


def _timed(data: bytes) -> tuple[float, float]:
    """Seconds to read ``data`` (parse) and to render it at its own size."""
    from inrcodec.decoder.render import decode_parsed, parse

    t0 = time.perf_counter()
    f = parse(data)
    t1 = time.perf_counter()
    decode_parsed(f, device="cpu")
    return t1 - t0, time.perf_counter() - t1


def measure(path: Path, preset: str, steps: int | None, repeats: int) -> dict:
    """The preset's point fitted with each context model on ``path``, each file's read and render timed."""
    from inrcodec import config
    from inrcodec.encoder import latent

    arr = image.load(path)
    base = config.LATENT_PRESETS[preset]
    base = replace(base, steps=steps) if steps else base
    files = {}
    back = {v: k for k, v in FOUR_PASS_TWINS.items()}
    for name, init in (
        ("checkerboard", back.get(base.init, base.init)),
        ("four-pass", FOUR_PASS_TWINS.get(base.init, base.init)),
    ):
        files[name] = latent.fit(arr, replace(base, context=name, init=init)).data
    if files["four-pass"][4] != FOUR_PASS_VERSION:  # the magic's four bytes, then the version
        raise RuntimeError(f"{preset}'s four-pass file is version {files['four-pass'][4]}, not {FOUR_PASS_VERSION}")
    runs = {name: {"read_s": [], "render_s": []} for name in files}
    for arm in alternating(repeats):
        name = "checkerboard" if arm == "before" else "four-pass"
        read, render = _timed(files[name])
        runs[name]["read_s"].append(round(read, 4))
        runs[name]["render_s"].append(round(render, 4))
    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in runs.items()}
    return {
        "image": path.stem,
        "preset": preset,
        "steps": steps or base.steps,
        "bytes": {n: len(d) for n, d in files.items()},
        "runs": runs,
        "median": med,
        "read_ratio": round(med["four-pass"]["read_s"] / med["checkerboard"]["read_s"], 3),
        "decode_ratio": round(
            sum(med["four-pass"].values()) / sum(med["checkerboard"].values()),
            3,
        ),
        "load_after": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=Path("../shared/kodak/kodim23.png"))
    ap.add_argument("--presets", default="grid-low,grid-max", help="latent-grid presets, comma-separated")
    ap.add_argument("--steps", type=int, default=None, help="shorter fits (default: each preset's own steps)")
    ap.add_argument("--repeats", type=int, default=5, help="runs of each file (default 5)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/context-decode.json")
    args = ap.parse_args(argv)
    from inrcodec import config

    presets = args.presets.split(",")
    if bad := [p for p in presets if p not in config.LATENT_PRESETS]:
        ap.error(f"--presets: {', '.join(bad)} not a latent-grid preset ({', '.join(config.LATENT_PRESETS)})")
    if not args.image.is_file():
        ap.error(f"--image: {args.image}: no such file")
    if args.steps is not None and not 0 < args.steps <= 10**6 or not 0 < args.repeats <= 100:
        ap.error("--steps: 1 to 10^6; --repeats: 1 to 100")
    results = []
    for preset in presets:
        r = measure(args.image, preset, args.steps, args.repeats)
        print(f"{preset}: read x{r['read_ratio']}, read + render x{r['decode_ratio']} ({r['median']})")
        results.append(r)
    doc = {"command": command_line(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.atomic_write(args.out, lambda f: f.write((json.dumps(doc, indent=1) + "\n").encode()))
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
