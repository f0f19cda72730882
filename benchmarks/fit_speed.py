"""Fit throughput: release 1.2's step against the fused step (issue 16), side by side in one run.

    python -m benchmarks.fit_speed [--widths 40,80,144] [--threads 1,2] [--reps 7] [--steps 30]
    python -m benchmarks.fit_speed --sampler importance ...   # the fused step with that sampler

Both steps run ``encoder.fit.train`` on the same image (photo001 of ../shared/photos, 768x512;
batch 8192, 6 Fourier levels, 3 sine layers: the presets' fit), one with ``FitConfig(fused=False)``
(release 1.2's step: ``Siren.forward`` and autograd, unchanged) and one with ``fused=True``
(encoder/fused.py; with ``--sampler``, drawing its batches with that sampler, so that its cost is
counted: the release 2.0 presets' step). The two are interleaved, in alternating order, ``--reps`` times per width and
thread count, so both see the same load; the figure is pixel-steps per second (batch x steps /
wall seconds of a ``train`` call) and the ratio is the median of the per-repetition ratios.

It also times the step's arithmetic alone, in the same rounds: the matrix products of the
forward and backward pass at their shapes and one sin and one cos of every hidden activation,
each into a preallocated buffer (``ceiling``): what a step costs with every other pass removed,
at the rates this CPU's BLAS and vectorised sin reach. The machine's load average is recorded
before and after (the project's machine has two cores shared with other jobs), and the OpenMP
wait policy (PASSIVE unless $OMP_WAIT_POLICY says otherwise: see main).

Where the native kernels build (encoder/native.py), the fused step with ``kernel="native"`` runs
in the same rounds too (``native``), and a second ceiling with their one-pass bias, sine and
cosine in place of torch's three passes (``ceiling_native``): the arithmetic floor of a step
that uses them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.runner import REPO, command_line
from inrcodec.image import atomic_write

OUT = REPO / "benchmarks" / "results" / "fit_speed"


def _arith(width: int, batch: int, pe_levels: int, layers: int, kernels=None):
    """A function that runs a step's products and sines/cosines once, on preallocated buffers
    (with ``kernels``, encoder/native.py's one pass of bias, sine and cosine instead)."""
    import torch

    g = torch.Generator().manual_seed(0)
    f = 2 * (1 + 2 * pe_levels)
    dims = [f] + [width] * layers + [3]
    acts = [torch.rand(batch, d, generator=g) for d in dims]
    ws = [torch.rand(dims[i + 1], dims[i], generator=g) / dims[i] for i in range(len(dims) - 1)]
    outs = [torch.empty(batch, d) for d in dims]
    cos = torch.empty(batch, width)
    bias = torch.zeros(width)

    def run() -> None:
        for i, w in enumerate(ws):  # forward: one product per layer, sin and cos per sine layer
            torch.mm(acts[i], w.t(), out=outs[i + 1])
            if i < layers and kernels is None:
                torch.sin(acts[i + 1], out=outs[i + 1])
                torch.cos(acts[i + 1], out=cos)
            elif i < layers:
                kernels.bias_sincos(acts[i + 1], bias, outs[i + 1])
        for i, w in enumerate(ws):  # backward: dW per layer, dh for every layer but the first
            torch.mm(acts[i + 1].t(), acts[i])
            if i > 0:
                torch.mm(acts[i + 1], w, out=outs[i])

    return run


def measure(
    width: int, threads: int, reps: int, steps: int, image, sampler: str = "uniform", with_native: bool = False
) -> dict:
    """One row: each mode's pixel-steps per second, rounds interleaved. ``with_native`` adds the
    native kernels' rows, with the kernels of ``native.load()``: the ones ``train`` runs."""
    import torch

    from inrcodec.config import PRESETS_1_2 as PRESETS  # release 1.2's step is the baseline
    from inrcodec.encoder import native
    from inrcodec.encoder.fit import Target, train
    from inrcodec.siren import Architecture, Siren

    torch.set_num_threads(threads)
    base = PRESETS["medium"]
    arch = Architecture(hidden=width, layers=base.arch.layers, pe_levels=base.arch.pe_levels)
    cfg = replace(base.fit, steps=steps)
    target = Target.of(image)
    kernels = native.load() if with_native else None
    modes = ["plain", "fused", "ceiling"] + (["native", "ceiling_native"] if kernels is not None else [])
    nets = {m: Siren(arch, torch.Generator().manual_seed(0)) for m in ("plain", "fused", "native")}
    arith = {"ceiling": _arith(width, cfg.batch, arch.pe_levels, arch.layers)}
    if kernels is not None:
        arith["ceiling_native"] = _arith(width, cfg.batch, arch.pe_levels, arch.layers, kernels)
    rates: dict[str, list[float]] = {m: [] for m in modes}

    def timed(mode: str) -> float:
        t = time.perf_counter()
        if mode in arith:
            for _ in range(steps):
                arith[mode]()
        else:
            fast = {"fused": True, "sampler": sampler, "kernel": "torch" if mode == "fused" else "native"}
            run = cfg if mode == "plain" else replace(cfg, **fast)
            train(nets[mode], target, run, steps, seed_offset=len(rates[mode]))
        return cfg.batch * steps / (time.perf_counter() - t)

    for mode in modes:  # warm-up: allocations, BLAS kernels chosen
        timed(mode)
        rates[mode].clear()
    for r in range(reps):
        for mode in modes if r % 2 == 0 else modes[::-1]:
            rates[mode].append(timed(mode))

    def ratio(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(rates[a], rates[b])]

    row = {
        "width": width,
        "threads": threads,
        "plain_px_steps_per_s": statistics.median(rates["plain"]),
        "fused_px_steps_per_s": statistics.median(rates["fused"]),
        "ceiling_px_steps_per_s": statistics.median(rates["ceiling"]),
        "speedup": statistics.median(ratio("fused", "plain")),
        "speedup_min_max": [min(ratio("fused", "plain")), max(ratio("fused", "plain"))],
        "fused_of_ceiling": statistics.median(ratio("fused", "ceiling")),
        "runs": rates,
    }
    if kernels is not None:
        row |= {
            "native_px_steps_per_s": statistics.median(rates["native"]),
            "ceiling_native_px_steps_per_s": statistics.median(rates["ceiling_native"]),
            "native_speedup": statistics.median(ratio("native", "plain")),
            "native_speedup_min_max": [min(ratio("native", "plain")), max(ratio("native", "plain"))],
            "native_over_fused": statistics.median(ratio("native", "fused")),
            "native_of_ceiling": statistics.median(ratio("native", "ceiling")),
            "native_of_ceiling_native": statistics.median(ratio("native", "ceiling_native")),
        }
    return row


def _load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"load_1min": one, "load_5min": five, "load_15min": fifteen}


def markdown(doc: dict) -> str:
    lines = [
        "# Fit throughput: release 1.2's step against the fused step",
        "",
        f"`{doc['command']}` ({doc['date']}, {doc['machine']['cpus']} CPUs, torch {doc['torch']}; "
        f"load average {doc['load_before']['load_1min']:.2f} before, {doc['load_after']['load_1min']:.2f} after). "
        f"Batch {doc['batch']}, the fused step's sampler {doc.get('fused_sampler', 'uniform')}, "
        f"{doc['steps']} steps per timed call, {doc['reps']} interleaved repetitions; "
        "M pixel-steps/s, medians. `ceiling`: the step's matrix products, sines and cosines alone "
        "(no other pass), timed in the same rounds. "
        f"OMP_WAIT_POLICY={doc['omp_wait_policy']}.",
        "",
        "| width | threads | release 1.2 | fused | speedup (min–max) | ceiling | fused / ceiling |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        lo, hi = r["speedup_min_max"]
        lines.append(
            f"| {r['width']} | {r['threads']} | {r['plain_px_steps_per_s'] / 1e6:.3f} | "
            f"{r['fused_px_steps_per_s'] / 1e6:.3f} | **{r['speedup']:.2f}×** ({lo:.2f}–{hi:.2f}) | "
            f"{r['ceiling_px_steps_per_s'] / 1e6:.3f} | {r['fused_of_ceiling']:.0%} |"
        )
    native = [r for r in doc["rows"] if "native_px_steps_per_s" in r]
    if native:
        lines += [
            "",
            f"The fused step with the native kernels (encoder/native.py; {doc['native']}), in the same rounds; "
            "`ceiling (native)`: the products with the kernels' one pass of bias, sine and cosine:",
            "",
            "| width | threads | native | speedup over 1.2 (min–max) | over fused | ceiling (native) "
            "| native / ceiling | native / ceiling (native) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in native:
            lo, hi = r["native_speedup_min_max"]
            lines.append(
                f"| {r['width']} | {r['threads']} | {r['native_px_steps_per_s'] / 1e6:.3f} | "
                f"**{r['native_speedup']:.2f}×** ({lo:.2f}–{hi:.2f}) | {r['native_over_fused']:.2f}× | "
                f"{r['ceiling_native_px_steps_per_s'] / 1e6:.3f} | {r['native_of_ceiling']:.0%} | "
                f"{r['native_of_ceiling_native']:.0%} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default=str(REPO.parent / "shared" / "photos" / "photo001.png"))
    p.add_argument("--widths", default="40,80,144")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--reps", type=int, default=7, help="interleaved repetitions (default 7)")
    p.add_argument("--steps", type=int, default=30, help="steps per timed train() call (default 30)")
    p.add_argument("--sampler", default="uniform", help="the fused step's pixel sampler (default uniform)")
    p.add_argument("--out", default=str(OUT), help="writes OUT.json and OUT.md")
    args = p.parse_args(argv)

    # Two OpenMP threads on a loaded machine spin in their barriers while the other core runs
    # someone else's job: with libgomp's default (active) wait a width-40 step ran 20x slower on
    # two threads than on one (0.016 against 0.325 M pixel-steps/s, load 4.7). The passive wait
    # makes the two-thread rows measurable; it has to be set before torch loads OpenMP.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from inrcodec import __version__, image
    from inrcodec.config import PRESETS_1_2 as PRESETS  # release 1.2's step is the baseline
    from inrcodec.encoder import native

    img = image.load(args.image)
    try:
        kernels = native.load()
        kernels_said = f"the {kernels.level}-bit path"
    except native.Unavailable as e:
        kernels, kernels_said = None, str(e)
        print(f"{e}: the native rows are left out", flush=True)
    doc = {
        "inrcodec": __version__,
        "torch": torch.__version__,
        "command": " ".join(command_line()),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "image": Path(args.image).name,
        "batch": PRESETS["medium"].fit.batch,
        "steps": args.steps,
        "fused_sampler": args.sampler,
        "reps": args.reps,
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "native": kernels_said,
        "load_before": _load(),
        "rows": [],
    }
    for threads in map(int, args.threads.split(",")):
        for width in map(int, args.widths.split(",")):
            row = measure(width, threads, args.reps, args.steps, img, args.sampler, kernels is not None)
            said = "" if kernels is None else (
                f"; native {row['native_px_steps_per_s'] / 1e6:.3f}: {row['native_speedup']:.2f}x "
                f"({row['native_of_ceiling']:.0%} of the ceiling)"
            )  # fmt: skip
            print(
                f"width {width:3d}, {threads} thread(s): 1.2 {row['plain_px_steps_per_s'] / 1e6:.3f}, fused "
                f"{row['fused_px_steps_per_s'] / 1e6:.3f} M px-steps/s: {row['speedup']:.2f}x; "
                f"ceiling {row['ceiling_px_steps_per_s'] / 1e6:.3f} ({row['fused_of_ceiling']:.0%}){said}; "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            doc["rows"].append(row)
    doc["load_after"] = _load()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in (
        (out.with_suffix(".json"), json.dumps(doc, indent=1) + "\n"),
        (out.with_suffix(".md"), markdown(doc)),
    ):
        atomic_write(path, lambda f, text=text: f.write(text.encode()))  # a kill leaves the last report whole
    return 0


if __name__ == "__main__":
    sys.exit(main())
