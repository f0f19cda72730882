"""Magnitude pruning of the grid family's synthesis (issue 15, item 4: "IMP ... for its SIREN
part"), measured in real bytes before a format is built for it.

A grid file codes its synthesis as integer residuals from the shipped init the fit started from,
each tensor under its own Laplace model (format version 8). The nearest thing to the SIREN's
iterative magnitude pruning that this format can already carry is to send *nothing* for the
smallest residuals: set those weights back to their init (a residual of exactly 0, which the
decoder reads as the init's value) and let the rest of the network make up for them. Per image
and preset, the preset's own fit (``latent.fit``, every stage) is taken as it ends, and then

- ``tuned``: the control: its networks trained again for ``--tune-steps`` steps on the file's
  integer latents (``latent_tune.train``: the fit's loss), nothing pruned;
- ``pruned F``: the smallest fraction F of each weight matrix's residuals set to zero (biases
  kept), no training;
- ``IMP F``: iterative: the fractions in turn (0.25, then 0.5, ...), each round pruning the
  smallest of the kept residuals and training the survivors on from where they are for
  ``--tune-steps`` steps with the pruned ones held at the init (fine-tuning, as Han et al. 2015
  prune; not rewound as Frankle and Carbin do: here the init is what a pruned weight returns to).

Only presets whose file is the fit's last ``latent.pack`` are measured (no latent rounding, no
tuning stage: ``grid-low`` and ``grid-medium``); the script checks it.

Each variant is packed by the encoder's own ``latent.pack`` (bit depth chosen for D + lambda R,
residual or absolute coding, whichever is smaller) and decoded by the reference decoder: its bytes
and PSNR are the file's. The figure that decides is D + lambda R against the fit's own file.

    python -m benchmarks.latent_prune [--images ../shared/photos --first 1 --last 4]
        [--presets grid-low,grid-medium] [--fractions 0.25,0.5,0.75] [--tune-steps 500] [--out DIR]

Rows go to ``OUT/latent-prune.jsonl`` as each image is done (a rerun skips those), the tables to
``OUT/latent-prune.md``. One core; about 1.5 minutes an image at ``grid-low``, 2 at ``grid-medium``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from benchmarks import markdown as md
from benchmarks.runner import (
    RESULTS,
    append_jsonl,
    command_line,
    photo_options,
    photos,
    provenance,
    read_jsonl,
    repo_path,
    write_report,
)
from inrcodec import config
from inrcodec.encoder import latent, latent_rdo, latent_tune
from inrcodec.format.latent import read, synthesis_base
from inrcodec.image import load

OUT = RESULTS / "latent" / "prune-probe"


def zero_share(data: bytes) -> float:
    """The share of the file's synthesis weight integers that are coded as 0: equal to their
    init's (or 0 itself, in a file that codes them absolute)."""
    f = read(data)
    base = synthesis_base(f.header, f.steps) if f.header.init else [np.zeros_like(q) for q in f.tensors]
    coded = [q - b for q, b in zip(f.tensors, base)][0::2]  # the weight matrices (biases between)
    return float(sum(int((c == 0).sum()) for c in coded) / sum(c.size for c in coded))


@contextmanager
def last_model():
    """``latent.fit`` keeps its model to itself; this records the last one ``latent.pack`` packed
    (the fit's final state) in the yielded dict, under "model"."""
    seen: dict = {}
    pack = latent.pack

    def spy(model, cfg, arr):
        seen["model"] = model
        return pack(model, cfg, arr)

    latent.pack = spy
    try:
        yield seen
    finally:
        latent.pack = pack


def prune(model: latent.LatentImage, start: list[torch.Tensor], keep: list[torch.Tensor], frac: float) -> None:
    """Set the smallest ``frac`` of each weight matrix's residuals from ``start`` to zero (the
    weights to their init), counting the ones already pruned; ``keep`` (one bool mask per matrix)
    is updated in place."""
    with torch.no_grad():
        for w, w0, k in zip(model.coded()[0 : 2 * len(model.linears) : 2], start, keep):
            r = torch.where(k, (w - w0).abs(), torch.tensor(-1.0))  # pruned ones sort first
            n = int(frac * r.numel())
            if n:
                order = torch.argsort(r.reshape(-1), stable=True)
                k.view(-1)[order[:n]] = False
            w.copy_(torch.where(k, w, w0))


@contextmanager
def held(model: latent.LatentImage, start: list[torch.Tensor], keep: list[torch.Tensor]):
    """While inside, every Adam step of ``latent_tune.train`` ends with the pruned weights put
    back at their init (the mask of IMP's fine-tuning)."""
    step = torch.optim.Adam.step
    weights = model.coded()[0 : 2 * len(model.linears) : 2]

    def masked(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        with torch.no_grad():
            for w, w0, k in zip(weights, start, keep):
                w.copy_(torch.where(k, w, w0))
        return out

    torch.optim.Adam.step = masked
    try:
        yield
    finally:
        torch.optim.Adam.step = step


def measure(arr: np.ndarray, preset: str, fractions: list[float], tune_steps: int) -> list[dict]:
    """The rows of one image at one preset: the fit's file, the control, each pruned variant."""
    cfg = config.LATENT_PRESETS[preset]
    if cfg.rdo_levels or cfg.tune_steps:
        raise ValueError(f"{preset}: its file is not the fit's last pack (rounding or tuning after it)")
    pixels = arr.shape[0] * arr.shape[1]
    t0 = time.process_time()
    with last_model() as seen:
        fitted = latent.fit(arr, cfg)
    fit_err = 255.0**2 * 10 ** (-fitted.psnr / 10)
    fit_cost = latent_rdo.file_cost(fitted.data, fit_err, cfg.lam, pixels)
    base = seen["model"]
    if latent.pack(base, cfg, arr)[0] != fitted.data:
        raise RuntimeError(f"{preset}: the last packed model is not the fit's file")
    sizes = [t.numel() for t in base.coded()]
    start = [s.view_as(t) for s, t in zip(torch.split(base._start, sizes), base.coded())][0 : 2 * len(base.linears) : 2]

    def row(variant: str, frac: float, model: latent.LatentImage, seconds: float) -> dict:
        data, err = latent.pack(model, cfg, arr)
        psnr = 10 * math.log10(255.0**2 / err)
        return {
            "preset": preset,
            "variant": variant,
            "fraction": frac,
            "bytes": len(data),
            "synthesis_bytes": read(data).section_bytes["synthesis"],
            "zero_share": zero_share(data),
            "psnr": psnr,
            "d_bytes_pct": 100 * (len(data) / len(fitted.data) - 1),
            "d_psnr": psnr - fitted.psnr,
            "d_cost_pct": 100 * (latent_rdo.file_cost(data, err, cfg.lam, pixels) / fit_cost - 1),
            "cpu_s": seconds,
        }

    rows = [
        {
            "preset": preset,
            "variant": "fit",
            "fraction": 0.0,
            "bytes": len(fitted.data),
            "synthesis_bytes": fitted.synthesis_bytes,
            "zero_share": zero_share(fitted.data),
            "psnr": fitted.psnr,
            "d_bytes_pct": 0.0,
            "d_psnr": 0.0,
            "d_cost_pct": 0.0,
            "cpu_s": time.process_time() - t0,
        }
    ]
    t = time.process_time()
    control = copy.deepcopy(base)
    latent_tune.hold(control, fitted.data)
    latent_tune.train(control, arr, tune_steps, cfg.seed)
    rows.append(row("tuned", 0.0, control, time.process_time() - t))
    for frac in fractions:  # one shot: pruned, not trained
        t = time.process_time()
        once = copy.deepcopy(base)
        latent_tune.hold(once, fitted.data)
        prune(once, start, [torch.ones_like(w, dtype=torch.bool) for w in start], frac)
        rows.append(row("pruned", frac, once, time.process_time() - t))
    imp = copy.deepcopy(base)  # iterative: each round from the last one's network
    latent_tune.hold(imp, fitted.data)
    keep = [torch.ones_like(w, dtype=torch.bool) for w in start]
    for frac in fractions:
        t = time.process_time()
        prune(imp, start, keep, frac)
        with held(imp, start, keep):
            latent_tune.train(imp, arr, tune_steps, cfg.seed)
        rows.append(row("IMP", frac, imp, time.process_time() - t))
    return rows


def tables(rows: list[dict], presets: list[str]) -> list[str]:
    """Per preset: each variant's mean change against the fit's file, then image by image."""
    out = []
    for preset in presets:
        mine = [r for r in rows if r["preset"] == preset and r["variant"] != "fit"]
        if not mine:
            continue
        fits = [r for r in rows if r["preset"] == preset and r["variant"] == "fit"]
        share = statistics.mean(r["synthesis_bytes"] / r["bytes"] for r in fits)
        zeros = statistics.mean(r["zero_share"] for r in fits)
        out += [
            "",
            f"`{preset}` ({len(fits)} images; the synthesis {100 * share:.0f} % of the fit's file on the mean, "
            f"{100 * zeros:.0f} % of its weight integers already coded as 0):",
            "",
        ]
        keys = sorted({(r["variant"], r["fraction"]) for r in mine}, key=lambda k: (k[0] != "tuned", k[0], k[1]))
        body = []
        for variant, frac in keys:
            got = sorted(
                (r for r in mine if (r["variant"], r["fraction"]) == (variant, frac)), key=lambda r: r["image"]
            )
            name = variant if variant == "tuned" else f"{variant} {frac:g}"
            body.append(
                [
                    name,
                    f"{statistics.mean(r['d_bytes_pct'] for r in got):+.2f}",
                    f"{statistics.mean(r['d_psnr'] for r in got):+.3f}",
                    f"{statistics.mean(r['d_cost_pct'] for r in got):+.2f}",
                    " ".join(f"{r['d_cost_pct']:+.1f}" for r in got),
                    f"{100 * statistics.mean(r['zero_share'] for r in got):.0f} %",
                    f"{statistics.mean(r['cpu_s'] for r in got):.0f}",
                ]
            )
        names = ", ".join(sorted({r["image"] for r in mine}))
        head = ["variant", "Δ bytes %", "Δ PSNR dB", "Δ (D + λR) %", f"Δ (D + λR) % image by image ({names})"]
        head += ["weights at 0", "CPU s (one round)"]
        out += md.table(head, body)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    photo_options(p, 1, 4)
    p.add_argument("--presets", default="grid-low,grid-medium", help="grid presets, comma-separated")
    p.add_argument("--fractions", default="0.25,0.5,0.75", help="pruned fractions, ascending (IMP's rounds)")
    p.add_argument("--tune-steps", type=int, default=500, help="training steps after each round")
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {repo_path(OUT)})")
    args = p.parse_args(argv)
    presets = args.presets.split(",")
    plain = [n for n, c in config.LATENT_PRESETS.items() if not (c.rdo_levels or c.tune_steps)]
    if any(n not in plain for n in presets):
        p.error(f"--presets: grid presets without rounding or tuning stages only ({', '.join(plain)})")
    try:
        fractions = [float(f) for f in args.fractions.split(",")]
    except ValueError:
        fractions = []
    if not fractions or fractions != sorted(fractions) or not all(0 < f < 1 for f in fractions):
        p.error("--fractions: ascending numbers between 0 and 1, comma-separated")
    if not 1 <= args.tune_steps <= 100_000:
        p.error("--tune-steps: 1 to 100000")
    images = photos(p, args)
    torch.set_num_threads(1)
    setup = {"fractions": fractions, "tune_steps": args.tune_steps}
    log = args.out / "latent-prune.jsonl"
    rows = [r for r in read_jsonl(log) if r.get("setup") == setup]
    done = {(r["image"], r["preset"]) for r in rows}
    for preset in presets:
        for image in images:
            if (image.stem, preset) in done:
                continue
            measured = measure(load(image), preset, fractions, args.tune_steps)
            new = [{"image": image.stem, **r, "setup": setup} for r in measured]
            append_jsonl(log, new)  # one write per image: a kill loses at most that image
            rows += new
            for r in new:
                print(json.dumps(r), flush=True)
    doc = {"setup": setup, "command": " ".join(command_line()), "provenance": provenance()}
    lines = [
        "Magnitude pruning of the synthesis's residuals from its init, against each preset's own file "
        f"(`{doc['command']}`; rows in `latent-prune.jsonl`, photos {images[0].stem}–{images[-1].stem}).",
        *tables([r for r in rows if r["image"] in {i.stem for i in images}], presets),
    ]
    write_report(args.out, "latent-prune", doc, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
