"""An encoder against an earlier revision's, side by side in one run: the latent-grid family's
training step, or the SIREN presets' whole encodes.

    python -m benchmarks.encode_speed --before HEAD --out benchmarks/results/encode-speed.json
    python -m benchmarks.encode_speed --before 1ca0114 --presets low,medium,high --runs 2 \
        --out benchmarks/results/encode-speed-siren.json     # release 2.0's SIREN presets vs 1.2's
    python -m benchmarks.encode_speed --before 6716842 --presets default --photo ../shared/kodak/kodim23.png \
        --out benchmarks/results/encode-speed-default.json   # today's default preset vs release 1.2's
    python -m benchmarks.encode_speed --quantizers soft,soft-fast \
        --out benchmarks/results/encode-speed-soft-fast.json  # two quantizers of the latent family

For each preset, each revision fits the same photo with the preset's configuration for
``--steps`` training steps in a fresh process, and the time of a step is read from the fit's own
progress calls (every 100 steps and at the last): process CPU seconds from step 100 to the last,
over the steps between, so that setting up, packing and measuring the file (several seconds,
varying with what was learnt) stay out of it; the noisy and the rounded phases of training are in
it in their proportions. The revisions alternate (before, after, after, before, ...) so that a
change of load on a shared machine falls on both; the load average is recorded with each run.
Each run also records the whole encode's CPU seconds and the file's bytes and PSNR, so a faster
step that trained a different function would show. One torch thread, as the benchmark's workers.
A SIREN preset (``low``, ``medium``, ``high``) is timed whole: each revision encodes the photo with
its own preset of that name (``inrcodec.encode_with_stats``; ``default``: each revision's own default
preset, whatever its name) and the figure is the encode's process CPU seconds, beside the file's
bytes, its decode's PSNR and the decode's seconds (in the same process, after the encode: of five
decodes of the file, the one with the median wall time, its wall and CPU seconds).
With ``--quantizers A,B`` the two arms are the working tree's latent presets trained with
quantizer A ("before") and B ("after") instead of two revisions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.runner import REPO, alternating, command_line, extract_revision, provenance, run_python

PHOTO = REPO.parent / "shared" / "photos" / "photo002.png"

_FIT = (
    "import json, sys, time\n"
    "from dataclasses import replace\n"
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "import inrcodec\n"
    "from inrcodec import image\n"
    "from inrcodec.config import LATENT_PRESETS\n"
    "from inrcodec.encoder import latent\n"
    "arr = image.load(sys.argv[1])\n"
    "quantizer = {'quantizer': sys.argv[4]} if len(sys.argv) > 4 else {}\n"
    "cfg = replace(LATENT_PRESETS[sys.argv[2]], steps=int(sys.argv[3]), **quantizer)\n"
    "marks = []\n"
    "t = time.process_time()\n"
    "f = latent.fit(arr, cfg, on_step=lambda done, total, psnr: marks.append((done, time.process_time())))\n"
    "out = {'cpu_s': time.process_time() - t, 'bpp': f.bpp, 'psnr': f.psnr, 'steps': f.steps, 'marks': marks}\n"
    "print(json.dumps(dict(out, module=inrcodec.__file__)))\n"
)


DECODES = 5  # decodes of each run's file, the median kept: one decode (a tenth of a second) is noise

_ENCODE = (
    f"DECODES = {DECODES}\n"
    "import json, sys, time\n"
    "import numpy as np\n"
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "import inrcodec\n"
    "from inrcodec import image\n"
    "from inrcodec import config\n"
    "arr = image.load(sys.argv[1])\n"
    "preset = config.DEFAULT_PRESET if sys.argv[2] == 'default' else sys.argv[2]\n"
    "t = time.process_time()\n"
    "data = inrcodec.encode_with_stats(arr, preset=preset).data\n"
    "cpu = time.process_time() - t\n"
    "decs = []\n"
    "for _ in range(DECODES):\n"
    "    t, w = time.process_time(), time.perf_counter()\n"
    "    decoded = inrcodec.decode(data)\n"
    "    decs.append((time.perf_counter() - w, time.process_time() - t))\n"
    "decs.sort()\n"
    "dec = {'decode_s': decs[len(decs) // 2][0], 'decode_cpu_s': decs[len(decs) // 2][1], 'decodes': len(decs)}\n"
    "err = np.mean((decoded.astype(np.float64) - arr) ** 2)\n"
    "out = {'preset': preset, 'cpu_s': cpu, 'bytes': len(data), 'bpp': len(data) * 8 / arr.shape[0] / arr.shape[1],\n"
    "       'psnr': 10 * np.log10(255.0 ** 2 / err), **dec}\n"
    "print(json.dumps(dict(out, module=inrcodec.__file__)))\n"
)


def measure(root: Path, photo: Path, preset: str, steps: int, quantizer: str | None = None) -> dict:
    """One fit by the revision at ``root`` (with ``quantizer`` if given): its time a step, whole
    CPU seconds, bytes and PSNR (a SIREN preset: its whole encode's CPU seconds, bytes and PSNR)."""
    whole = not preset.startswith("grid-")  # a SIREN preset or "default": the whole encode is timed
    args = [str(photo), preset] + ([] if whole else [str(steps)]) + ([quantizer] if quantizer else [])
    _, _, out, _ = run_python(_ENCODE if whole else _FIT, args, root)
    row = json.loads(out)
    if not Path(row.pop("module")).is_relative_to(root):
        raise SystemExit(f"{root}: the run imported another inrcodec")
    if whole:
        row["ms_per_step"] = None  # the whole encode is the figure
    else:
        (s0, t0), (s1, t1) = row["marks"][0], row["marks"][-1]
        row["ms_per_step"] = (t1 - t0) / (s1 - s0) * 1000
    row["load"] = [round(x, 2) for x in os.getloadavg()]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", help="the earlier revision (git; default HEAD)")
    ap.add_argument(
        "--quantizers",
        help="A,B: compare two quantizers of the latent family in the working tree instead of two revisions",
    )
    ap.add_argument("--presets", default="grid-low,grid-medium,grid-xhigh", help="comma-separated presets")
    ap.add_argument("--photo", type=Path, default=PHOTO, help=f"the image fitted ({PHOTO.name})")
    ap.add_argument("--steps", type=int, default=1000, help="training steps of each fit (at least 200)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each revision per preset")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/encode-speed.json"))
    args = ap.parse_args()
    args.photo = args.photo.resolve()  # the runs start in each revision's own folder
    if args.steps < 200:
        ap.error("--steps: at least 200 (the time a step is read from step 100 to the last)")
    quantizers = {"before": None, "after": None}
    if args.quantizers and args.before:
        ap.error("--quantizers compares two quantizers of the working tree: not with --before")
    args.before = args.before or "HEAD"
    if args.quantizers:
        pair = args.quantizers.split(",")
        if len(pair) != 2 or not all(q in ("uniform", "soft", "soft-fast") for q in pair):
            ap.error("--quantizers: two of uniform, soft, soft-fast, as A,B")
        if any(not p.startswith("grid-") for p in args.presets.split(",")):
            ap.error("--quantizers: the latent family's presets only (grid-*)")
        quantizers = dict(zip(("before", "after"), pair))
    tree = provenance()
    here = {"rev": "working tree", "commit": tree["git_commit"], "dirty": tree["git_dirty"]}
    if args.quantizers:  # both sides are this tree
        before = dict(here)
    else:
        sha = subprocess.run(["git", "rev-parse", args.before], cwd=REPO, check=True, capture_output=True, text=True)
        before = {"rev": args.before, "commit": sha.stdout.strip()}
    doc = {
        "before": before,
        "after": here,
        "photo": args.photo.name,
        "steps": args.steps,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(command_line()),
        "presets": {},
    }
    for which, q in quantizers.items():
        if q:
            doc[which] = dict(doc[which], quantizer=q)
    with tempfile.TemporaryDirectory() as tmp:
        before = REPO if args.quantizers else extract_revision(args.before, Path(tmp) / "before")
        roots = {"before": before, "after": REPO}
        for preset in args.presets.split(","):
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for which in alternating(args.runs):
                row = measure(roots[which], args.photo, preset, args.steps, quantizers[which])
                runs[which].append(row)
                step = "" if row["ms_per_step"] is None else f"{row['ms_per_step']:.2f} ms/step"
                print(preset, which, step, f"{row['cpu_s']:.1f} s", f"{row['bpp']:.4f} bpp",
                      f"{row['psnr']:.2f} dB", "load", row["load"], flush=True)  # fmt: skip
            cpu = {w: statistics.median(r["cpu_s"] for r in rs) for w, rs in runs.items()}
            whole = runs["after"][0]["ms_per_step"] is None
            med = cpu if whole else {w: statistics.median(r["ms_per_step"] for r in rs) for w, rs in runs.items()}
            doc["presets"][preset] = {
                "median_ms_per_step": None if whole else med,
                "speedup": med["before"] / med["after"],
                "median_encode_cpu_s": cpu,
                "runs": runs,
            }
            if whole:
                doc["presets"][preset]["median_decode_s"] = {
                    w: statistics.median(r["decode_s"] for r in rs) for w, rs in runs.items()
                }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    for preset, res in doc["presets"].items():
        m = res["median_ms_per_step"]
        c = res["median_encode_cpu_s"]
        if m is None:
            d = res["median_decode_s"]
            print(f"{preset}: the whole encode {c['before']:.1f} -> {c['after']:.1f} s of CPU ({res['speedup']:.2f}x); "
                  f"its decode {d['before']:.2f} -> {d['after']:.2f} s")  # fmt: skip
            continue
        print(f"{preset}: {m['before']:.2f} -> {m['after']:.2f} ms a step ({res['speedup']:.2f}x); "
              f"the {args.steps}-step encode {c['before']:.1f} -> {c['after']:.1f} s of CPU")  # fmt: skip


if __name__ == "__main__":
    main()
