"""Issue 16, item 2: the error-driven pixel sampler against uniform batches, at equal CPU time.

    python -m benchmarks.sampler                    # photo001-photo008, the medium preset's fit
    python -m benchmarks.sampler --sampler importance --fused   # release 2.0's step against 1.2's
    python -m benchmarks.sampler --sampler importance --fused --kernel native   # with the native step

For each held-out photo, release 1.2's medium preset's dense fit (width 80, batch 8192, its cosine
schedule, its seed) runs once with uniform batches for the preset's 2000 steps and once with the
error-driven sampler (inrcodec/encoder/sampling.py; with ``--fused``, on the fused step: the
release 2.0 presets' fit) for as many steps as take the same CPU time:
the two samplers' step costs are measured side by side in the same process just before (40 steps
each after a warm-up, interleaved twice, the faster kept), and the error sampler's step count is
2000 times their ratio. Both full runs are timed too, so the table shows how equal the times came
out. PSNR is that of the fitted network on the full image, rounded to 8 bits as a decoder would
(no quantization of weights: the sampler acts on the fit alone).

Writes ``<out>/sampler.json`` (rows per image, config, provenance; rows already there with the same
config are kept, so a killed run resumes) and ``<out>/sampler.md`` (the table).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from benchmarks import markdown as md
from benchmarks.runner import REPO, RESULTS, dataset, load, provenance, repo_path

PHOTOS = REPO.parent / "shared" / "photos"
OUT = RESULTS / "sampler"
CALIBRATION_STEPS = 40  # per sampler, after as many warm-up steps


def _cpu_per_step(net_factory, target, fit, steps: int) -> float:
    from inrcodec.encoder.fit import train

    net = net_factory()
    train(net, target, fit, steps)  # warm-up (allocator, caches)
    t = time.process_time()
    train(net, target, fit, steps)
    return (time.process_time() - t) / steps


def measure(arr: np.ndarray, challenger: str = "error", fused: bool = False, kernel: str = "torch") -> dict:
    import torch

    from inrcodec.config import PRESETS_1_2 as PRESETS
    from inrcodec.encoder.fit import Target, evaluate, train
    from inrcodec.siren import Siren

    torch.set_num_threads(1)
    preset = PRESETS["medium"]
    arch = replace(preset.arch, out_features=arr.shape[2])
    target = Target.of(arr)
    uniform, error = preset.fit, replace(preset.fit, sampler=challenger, fused=fused, kernel=kernel)

    def factory():
        return Siren(arch, torch.Generator().manual_seed(uniform.seed))

    # Interleaved twice, the faster of each kept: a load change on this shared machine then
    # shifts both samplers rather than one.
    costs: dict[str, list[float]] = {"uniform": [], "error": []}
    for _ in range(2):
        costs["uniform"].append(_cpu_per_step(factory, target, uniform, CALIBRATION_STEPS))
        costs["error"].append(_cpu_per_step(factory, target, error, CALIBRATION_STEPS))
    ratio = min(costs["uniform"]) / min(costs["error"])
    row = {"cost_ratio": round(ratio, 4)}
    for name, fit, steps in (("uniform", uniform, uniform.steps), (challenger, error, round(uniform.steps * ratio))):
        net = factory()
        t = time.process_time()
        train(net, target, fit, steps)
        cpu = round(time.process_time() - t, 2)
        row[name] = {"steps": steps, "cpu_s": cpu, "psnr": round(evaluate(net, target), 4)}
    return row


def table(doc: dict) -> str:
    rows = doc["rows"]
    ch = doc["config"].get("sampler", "error")
    body = [
        [
            r["image"],
            f"{r['uniform']['psnr']:.2f}",
            f"{r[ch]['psnr']:.2f}",
            f"{r[ch]['psnr'] - r['uniform']['psnr']:+.2f}",
            f"{r['uniform']['steps']} / {r[ch]['steps']}",
            f"{r['uniform']['cpu_s']:.0f} / {r[ch]['cpu_s']:.0f}",
        ]
        for r in rows
    ]
    if rows:
        mean = lambda k, f: float(np.mean([r[k][f] for r in rows]))  # noqa: E731
        body.append(
            [
                "**mean**",
                f"{mean('uniform', 'psnr'):.2f}",
                f"{mean(ch, 'psnr'):.2f}",
                f"{mean(ch, 'psnr') - mean('uniform', 'psnr'):+.2f}",
                f"{mean('uniform', 'steps'):.0f} / {mean(ch, 'steps'):.0f}",
                f"{mean('uniform', 'cpu_s'):.0f} / {mean(ch, 'cpu_s'):.0f}",
            ]
        )
    label = {"error": "error-driven"}.get(ch, ch) + (" + fused step" if doc["config"].get("fused") else "")
    label += " (native)" if doc["config"].get("kernel") == "native" else ""
    head = ["photo", "uniform dB", f"{label} dB", "gain", f"steps (uniform / {ch})", f"CPU s (uniform / {ch})"]
    lines = md.table(head, body)
    lines += ["", f"Command: `{' '.join(doc['provenance']['command'])}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, default=PHOTOS, help=f"folder with SHA256SUMS ({PHOTOS})")
    p.add_argument("--n-images", type=int, default=8, help="the first N images (default 8)")
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {repo_path(OUT)})")
    p.add_argument("--sampler", choices=("error", "importance"), default="error", help="the sampler against uniform")
    p.add_argument("--fused", action="store_true", help="the challenger on the fused step (encoder/fused.py)")
    p.add_argument(
        "--kernel", choices=("torch", "native"), default="torch", help="the fused step's (encoder/native.py)"
    )
    args = p.parse_args(argv)
    if args.kernel == "native" and not args.fused:
        p.error("--kernel native is the fused step's: add --fused")
    from inrcodec.config import PRESETS_1_2 as PRESETS
    from inrcodec.encoder.sampling import Importance

    if args.sampler != "error" and args.out == OUT:
        args.out = OUT / (
            args.sampler + ("-fused" if args.fused else "") + ("-native" if args.kernel == "native" else "")
        )
    config = {
        "preset": "medium",
        "fit": asdict(PRESETS["medium"].fit),
        "calibration_steps": CALIBRATION_STEPS,
        "calibration": "interleaved x2, min",
    }
    if args.sampler != "error":  # the committed error-sampler run's config predates this key
        config["sampler"] = args.sampler
    if args.sampler == "importance":  # its error-proportional half is drawn by tiles (issue 16, item 3)
        config["tile"] = Importance.TILE
    if args.fused:
        config["fused"] = True
    if args.kernel == "native":  # earlier runs' configs predate this key
        config["kernel"] = "native"
    path = args.out / "sampler.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    done = {r["image"]: r for r in old.get("rows", [])} if old.get("config") == config else {}
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for ref in dataset(args.images)[: args.n_images]:
        if ref.name not in done:
            done[ref.name] = {"image": ref.name, **measure(load(ref), args.sampler, args.fused, args.kernel)}
            print(json.dumps(done[ref.name]), flush=True)
        rows.append(done[ref.name])
        doc = {"config": config, "rows": rows, "provenance": provenance()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(path)
    (args.out / "sampler.md").write_text(table(doc))
    print(table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
