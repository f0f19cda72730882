"""What learned upsampling filters could buy the grid family (issue 15's last untried item:
Cool-chic 3.4's learned upsampling, here as a kernel defined at every fractional position, so that
a file would still decode at any size).

Post hoc, on each preset file: its integer latents (and so its LATENTS and CONTEXT bytes) held,
its synthesis trained again for ``--steps`` Adam steps on the image, twice from the file's own
networks and with the same batches: (a) with the file's bilinear sampling, the control; (b) with a
learned separable kernel per level, k_l(d) for a tap at distance d (in the level's samples)
piecewise linear on ``--knots`` knots per unit over [0, 2) and zero from 2 on, started at
bilinear's triangle, a pixel's four taps per axis normalised to sum to one (border padding). Each
arm's synthesis is then quantized as ``pack`` does (the bit depth by D + lambda R, the file
written by the format's writer: real SYNTHESIS bytes); (b)'s knots are rounded to multiples of
2^-6 and counted as one byte each, the size of a plain block of them. (a) is decoded by the NumPy
decoder, (b) by this script's sampler (checked against the decoder: with the triangle it gives
the file's pixels). A filter trained with the latents could add more than this probe shows.

    python -m benchmarks.latent_upsample [--images ../shared/photos --first 1 --last 4]
        [--presets grid-high,grid-xhigh] [--steps 500] [--knots 4] [--workers 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks import markdown as md
from benchmarks.runner import (
    RESULTS,
    command_line,
    encode_batch,
    photo_options,
    photos,
    provenance,
    repo_path,
    write_report,
)
from inrcodec import config, coords
from inrcodec.decoder.latent import render
from inrcodec.encoder.latent import SYNTHESIS_BITS, LatentImage, quantized_synthesis, smallest
from inrcodec.encoder.latent_rdo import file_cost
from inrcodec.encoder.latent_tune import LR_FACTOR
from inrcodec.format.latent import LatentFile, read
from inrcodec.image import load, psnr
from inrcodec.pixels import from_unit, to_unit
from inrcodec.siren import fourier_features

OUT = RESULTS / "latent" / "upsample-probe"
BATCH = 16384  # pixels a step (latent_tune's)
KNOT_STEP = 2.0**-6  # the knots as the file would hold them: 8-bit multiples of this
CHUNK = 1 << 15  # pixels rendered at once


class Sampler(torch.nn.Module):
    """The latents at pixel centres of the image's own grid through a separable kernel per level
    (four taps per axis at distances t + 1, t, 1 - t, 2 - t, as bicubic's), learned or held at
    bilinear's triangle."""

    def __init__(self, f: LatentFile, knots: int) -> None:
        super().__init__()
        h, w = f.header.height, f.header.width
        grids = [torch.from_numpy(q[0].astype(np.float32)) for q in f.latents]
        self.flat = torch.cat([g.reshape(-1) for g in grids])
        offsets = np.cumsum([0] + [g.numel() for g in grids])[:-1]
        self.knots = knots
        # knot k of level l is k(k / knots); the triangle to start, the last knot (d = 2) fixed at 0
        d = torch.arange(2 * knots, dtype=torch.float32) / knots
        self.values = torch.nn.Parameter(torch.clamp(1 - d, min=0).repeat(len(grids), 1))
        self.axes = [
            self._axis(coords.axis_np(h), [g.shape[0] for g in grids]),
            self._axis(coords.axis_np(w), [g.shape[1] for g in grids]),
        ]
        self.offsets = torch.from_numpy(offsets)
        self.widths = torch.tensor([g.shape[1] for g in grids])
        self.heights = torch.tensor([g.shape[0] for g in grids])

    @staticmethod
    def _axis(centres: np.ndarray, sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(lo, t) per centre and level: the sample below the centre's position and its fraction
        (grid_sample's convention, align_corners=False, the position unclamped)."""
        lo, t = [], []
        for n in sizes:
            pos = ((centres.astype(np.float64) + 1) * n - 1) / 2
            lo.append(np.floor(pos))
            t.append(pos - np.floor(pos))
        return torch.from_numpy(np.stack(lo, 1).astype(np.int64)), torch.from_numpy(np.stack(t, 1).astype(np.float32))

    def kernel(self, d: torch.Tensor, quantized: bool) -> torch.Tensor:
        """k_l(d) for d of shape (n, taps, levels) in [0, 2]."""
        values = self.values
        if quantized:
            values = torch.round(values / KNOT_STEP) * KNOT_STEP
        table = torch.cat([values, torch.zeros(values.shape[0], 1)], dim=1)  # (levels, 2 knots + 1)
        u = d * self.knots
        i = u.floor().clamp(max=2 * self.knots - 1).long()
        frac = u - i
        level = torch.arange(values.shape[0]).expand_as(i)
        return table[level, i] * (1 - frac) + table[level, i + 1] * frac

    def _weights(
        self, axis: int, at: torch.Tensor, size: torch.Tensor, quantized: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lo, t = self.axes[axis]
        lo, t = lo.index_select(0, at), t.index_select(0, at)  # (n, levels)
        shift = torch.tensor([-1, 0, 1, 2])[None, :, None]
        d = (t[:, None] - shift).abs()  # (n, 4, levels)
        k = self.kernel(d, quantized)
        k = k / k.sum(1, keepdim=True)
        index = (lo[:, None] + shift).clamp(min=0)
        index = torch.minimum(index, (size - 1)[None, None])
        return index, k

    def forward(self, pixels: torch.Tensor, width: int, quantized: bool = False) -> torch.Tensor:
        """(n, levels) latents at the flat pixel indices ``pixels``."""
        r_at, r_w = self._weights(0, pixels // width, self.heights, quantized)
        c_at, c_w = self._weights(1, pixels % width, self.widths, quantized)
        index = self.offsets + r_at[:, :, None] * self.widths + c_at[:, None, :]  # (n, 4, 4, levels)
        g = self.flat[index]
        return torch.einsum("nalv,nav,nlv->nv", g, r_w, c_w)


def model_of(f: LatentFile, cfg: config.LatentConfig) -> LatentImage:
    """The file's synthesis as a :class:`LatentImage` (its latents unused: the sampler holds them)."""
    hd = f.header
    model = LatentImage(
        hd.height, hd.width, replace(cfg, context="none", init="", rdo_levels=0, tune_steps=0), hd.channels
    )
    with torch.no_grad():
        for t, v in zip([t for lin in model.linears for t in (lin.weight, lin.bias)], f.synthesis(), strict=True):
            t.copy_(torch.from_numpy(v))
    return model


def train(
    model: LatentImage,
    sampler: Sampler,
    arr: np.ndarray,
    cfg: config.LatentConfig,
    steps: int,
    learn: bool,
    lr_knots: float,
) -> None:
    """``steps`` Adam steps of the synthesis (and with ``learn`` the kernels) on the image's MSE."""
    h, w, c = arr.shape
    xy = coords.grid(h, w)
    colours = torch.from_numpy(to_unit(arr).reshape(-1, c))
    groups = [{"params": list(model.linears.parameters()), "lr": cfg.lr_synthesis * LR_FACTOR}]
    if learn:
        groups.append({"params": [sampler.values], "lr": lr_knots})
    base = [g["lr"] for g in groups]
    opt = torch.optim.Adam(groups)
    gen = torch.Generator().manual_seed(cfg.seed)
    for step in range(steps):
        scale = 0.5 * (1 + math.cos(math.pi * step / steps))
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * scale
        idx = torch.randint(h * w, (min(BATCH, h * w),), generator=gen)
        feats = sampler(idx, w)
        pred = model.synthesis(torch.cat([feats, fourier_features(xy.index_select(0, idx), cfg.pe_levels)[:, 2:]], 1))
        loss = torch.mean((pred - colours.index_select(0, idx)) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def rendered(f: LatentFile, sampler: Sampler, cfg: config.LatentConfig) -> np.ndarray:
    """(H, W, C) uint8 of ``f``'s synthesis over ``sampler``'s (quantized) kernels at native size."""
    hd = f.header
    xy = coords.grid(hd.height, hd.width)
    weights = [torch.from_numpy(t) for t in f.synthesis()]
    out = []
    with torch.no_grad():
        for at in range(0, hd.height * hd.width, CHUNK):
            idx = torch.arange(at, min(at + CHUNK, hd.height * hd.width))
            a = torch.cat([sampler(idx, hd.width, quantized=True), fourier_features(xy[idx], cfg.pe_levels)[:, 2:]], 1)
            for wt, b in zip(weights[0:-2:2], weights[1:-2:2]):
                a = torch.sin(cfg.omega * (a @ wt.T + b))
            out.append((a @ weights[-2].T + weights[-1]).numpy())
    return from_unit(np.concatenate(out)).reshape(hd.height, hd.width, hd.channels)


def packed(
    f: LatentFile, model: LatentImage, arr: np.ndarray, lam: float, sampler: Sampler | None, cfg: config.LatentConfig
) -> tuple[int, float]:
    """(bytes, MSE) of the best bit depth (6..10) for the trained synthesis, as ``pack`` picks it:
    the file written by the format's writer, plus a byte a knot when ``sampler`` is learned."""
    h, w, _ = arr.shape
    target = arr.astype(np.float64)
    extra = 0 if sampler is None else sampler.values.numel()
    best = None
    for bits in SYNTHESIS_BITS:
        steps, tensors = quantized_synthesis([t for lin in model.linears for t in (lin.weight, lin.bias)], bits)
        g = replace(f, steps=steps, tensors=tensors)
        data = smallest(g)
        pixels = render(g, w, h) if sampler is None else rendered(g, sampler, cfg)
        err = float(np.mean((pixels.astype(np.float64) - target) ** 2))
        cost = file_cost(data, err, lam, h * w) + lam * extra * 8 / (h * w)
        if best is None or cost < best[0]:
            best = (cost, len(data) + extra, err)
    return best[1], best[2]


def probe(data: bytes, arr: np.ndarray, cfg: config.LatentConfig, steps: int, knots: int, lr_knots: float) -> dict:
    """The file, the control (a) and the learned kernels (b) on one image."""
    f = read(data)
    if any(q.shape[0] != 1 for q in f.latents):
        raise SystemExit("the probe samples one latent channel per level")
    n = arr.shape[0] * arr.shape[1]
    check = rendered(f, Sampler(f, knots), cfg)
    off = int(np.abs(check.astype(int) - render(f, f.header.width, f.header.height).astype(int)).max())
    if off > 1:
        raise SystemExit(f"the probe's sampler is {off} grey levels off the decoder at the triangle")
    row = {"bytes": len(data), "psnr": psnr(render(f, f.header.width, f.header.height), arr), "sampler_off": off}
    for arm, learn in (("control", False), ("learned", True)):
        model, sampler = model_of(f, cfg), Sampler(f, knots)
        train(model, sampler, arr, cfg, steps, learn, lr_knots)
        size, err = packed(f, model, arr, cfg.lam, sampler if learn else None, cfg)
        row[f"{arm}_bytes"] = size
        row[f"{arm}_psnr"] = 10 * math.log10(255.0**2 / err)
        row[f"{arm}_cost"] = err / 255.0**2 + cfg.lam * size * 8 / n
        if learn:
            row["knots"] = np.round(sampler.values.detach().numpy() / KNOT_STEP).astype(int).tolist()
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    photo_options(p, 1, 4)
    p.add_argument("--presets", default="grid-high,grid-xhigh", help="grid presets, comma-separated")
    p.add_argument("--steps", type=int, default=500, help="Adam steps of each arm (default 500)")
    p.add_argument("--knots", type=int, default=4, help="knots per unit of tap distance (default 4)")
    p.add_argument("--lr-knots", type=float, default=2e-3, help="Adam learning rate of the knots")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {repo_path(OUT)})")
    args = p.parse_args(argv)
    presets = args.presets.split(",")
    if any(n not in config.LATENT_PRESETS for n in presets):
        p.error(f"--presets: grid presets only ({', '.join(config.LATENT_PRESETS)})")
    if args.steps < 1 or args.knots < 1 or args.lr_knots <= 0:
        p.error("--steps and --knots: at least 1; --lr-knots: above 0")
    images = photos(p, args)
    torch.set_num_threads(1)
    rows = []
    for preset in presets:
        cfg = config.LATENT_PRESETS[preset]
        folder = args.out / "files" / preset
        encode_batch(images, preset, folder, args.workers)
        for image in images:
            arr = load(image)
            row = {"image": image.stem, "preset": preset}
            row |= probe((folder / f"{image.stem}.inr").read_bytes(), arr, cfg, args.steps, args.knots, args.lr_knots)
            rows.append(row)
            print({k: v for k, v in row.items() if k != "knots"}, flush=True)
    head = [
        "preset",
        "image",
        "file bpp, dB",
        "(a) bilinear, tuned: Δ bytes, Δ dB",
        "(b) learned: Δ bytes, Δ dB",
        "(b) − (a): D + λR",
    ]
    table = []
    for r in rows:
        px = np.prod(load(args.images / f"{r['image']}.png").shape[:2])
        table.append(
            [
                r["preset"],
                r["image"],
                f"{r['bytes'] * 8 / px:.3f}, {r['psnr']:.2f}",
                f"{r['control_bytes'] - r['bytes']:+d}, {r['control_psnr'] - r['psnr']:+.3f}",
                f"{r['learned_bytes'] - r['bytes']:+d}, {r['learned_psnr'] - r['psnr']:+.3f}",
                f"{r['learned_cost'] / r['control_cost'] - 1:+.2%}",
            ]
        )
    for preset in presets:
        mine = [r for r in rows if r["preset"] == preset]
        gain = statistics.mean(r["learned_psnr"] - r["control_psnr"] for r in mine)
        cost = statistics.mean(r["learned_cost"] / r["control_cost"] - 1 for r in mine)
        table.append([preset, "mean", "", "", f"(b) − (a): {gain:+.3f} dB", f"{cost:+.2%}"])
    doc = {
        "rows": rows,
        "steps": args.steps,
        "knots": args.knots,
        "lr_knots": args.lr_knots,
        "command": " ".join(command_line()),
        "provenance": provenance(),
    }
    lines = [
        "Learned upsampling kernels against the file's bilinear sampling, post hoc on each preset file"
        f" (`{doc['command']}`).",
        "",
        *md.table(head, table),
    ]
    write_report(args.out, "upsample-probe", doc, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
