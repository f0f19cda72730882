"""A probe for the latent-grid family (issue 15): a learned nonlinear 3x3 filter on each latent
grid, applied at the grid's own resolution before the continuous interpolation, so the file would
still decode at any size. Does the spatial context it gives the synthesis (Cool-chic's and C3's
synthesis has 3x3 convolutions; ours is per pixel) pay for its weights and its cost?

    python -m benchmarks.latent_filter --n-images 2 --workers 2      # about 8 minutes here

Both arms train with the same plain step (noise on the whole pyramid, every latent rated by the
per-level Laplace model, grid_sample at the batch's pixels): the gather step and the context
model of the presets do not know the filter, so neither arm uses them, and the comparison is
between the arms only. Bytes: the latents coded by the format's own per-level coder (a complete
version 5 file with a zero synthesis, so a few bytes of header too) plus the synthesis and filter
weights at 8 bits, Brotli-compressed; PSNR from the rounded latents and the float synthesis in
torch. A probe, not a codec: format version 5 cannot hold the filter.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks import markdown as md
from benchmarks.runner import REPO, RESULTS, dataset, provenance
from inrcodec.executors import Pool
from inrcodec.image import atomic_write

PHOTOS = REPO.parent / "shared" / "photos"
OUT = RESULTS / "latent" / "filter-probe"


def probe(path: str, preset: str, filters: int, steps: int) -> dict:
    """Fit one image with ``filters`` filter channels per level (0: the plain synthesis)."""
    import torch

    from inrcodec import coords, image
    from inrcodec.config import LATENT_PRESETS
    from inrcodec.encoder.latent import LatentImage, _LaplaceBits, header
    from inrcodec.format.latent import LatentFile, write
    from inrcodec.pixels import to_unit

    torch.set_num_threads(1)
    # as the probe ran (its own training loop: plain Adam steps, no lr_finest)
    cfg = replace(LATENT_PRESETS[preset], context="none", steps=steps, quantizer="uniform", lr_finest=1.0, init="")
    if (cfg.channels, cfg.omega, cfg.activation) != (1, 1.0, "sine"):  # what the filter arm rebuilds
        raise ValueError(f"{preset}: the probe takes one latent channel and a sine synthesis at omega 1")
    arr = image.load(path)
    h, w, c = arr.shape
    torch.manual_seed(0)
    model = LatentImage(h, w, cfg, c)
    levels = cfg.levels
    convs = torch.nn.ModuleList(
        torch.nn.Conv2d(1, filters, 3, padding=1, padding_mode="replicate") for _ in range(levels if filters else 0)
    )
    if filters:  # the synthesis sees each level's latent and its filter channels
        dims = [levels * (1 + filters) + 4 * cfg.pe_levels] + [cfg.hidden] * cfg.layers + [c]
        model.linears = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        with torch.no_grad():
            for i, lin in enumerate(model.linears):
                bound = 1.0 / lin.in_features if i == 0 else math.sqrt(6.0 / lin.in_features)
                lin.weight.uniform_(-bound, bound)
                lin.bias.uniform_(-bound, bound)

    def colours(lat: list, at: torch.Tensor) -> torch.Tensor:
        if not filters:
            return model(at, lat)  # the family's own model
        maps = [torch.cat([y, torch.sin(conv(y))], 1) for y, conv in zip(lat, convs)]
        return model(at, maps)  # the same interpolation and synthesis, over latents and filter channels

    xy = coords.grid(h, w)
    target = torch.from_numpy(to_unit(arr).reshape(-1, c))
    weights = list(model.linears.parameters()) + list(convs.parameters())
    groups = [{"params": [model.flat], "lr": cfg.lr_latent}, {"params": weights, "lr": cfg.lr_synthesis}]
    opt = torch.optim.Adam(groups)
    base = [cfg.lr_latent, cfg.lr_synthesis]
    gen = torch.Generator().manual_seed(0)
    t0 = time.process_time()
    for step in range(steps):
        done = step / steps
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * done)))
        idx = torch.randint(h * w, (cfg.batch,), generator=gen)
        flat = model.flat
        if done < cfg.noise_fraction:
            q = flat + (torch.rand(flat.shape, generator=gen) - 0.5)
        else:
            q = flat + (torch.round(flat) - flat).detach()
        pred = colours(model.pyramid.views(q), xy.index_select(0, idx))
        mse = torch.mean((pred - target.index_select(0, idx)) ** 2) / 4
        bits = sum(_LaplaceBits.apply(y) for y in q.split(model.pyramid.sizes))
        loss = mse + cfg.lam * bits / (h * w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.process_time() - t0
    with torch.no_grad():
        lat = [torch.round(y) for y in model.latents]
        err = 0.0
        for a in range(0, h * w, 65536):
            pix = torch.round((colours(lat, xy[a : a + 65536]).clamp(-1, 1) + 1) * 127.5)
            ref = torch.from_numpy(arr.reshape(-1, c)[a : a + 65536].astype(np.float32))
            err += float(((pix - ref) ** 2).sum())
        head = header(cfg, h, w, c)
        zeros = [np.zeros(s, np.int64) for s in head.shapes()]
        ints = [y[0].numpy().astype(np.int64) for y in lat]
        latent_file = len(write(LatentFile(head, ints, [1.0] * len(zeros), zeros)))
        params = torch.cat([p.detach().flatten() for p in weights]).numpy()
        import brotli

        q8 = np.round(params / (np.abs(params).max() / 127)).astype(np.int8)
        weight_bytes = len(brotli.compress(q8.tobytes(), quality=11))
    return {
        "image": Path(path).stem,
        "preset": preset,
        "filters": filters,
        "lam": cfg.lam,
        "steps": steps,
        "bpp": (latent_file + weight_bytes) * 8 / (h * w),
        "psnr": 10 * math.log10(255**2 / (err / (h * w * c))),
        "latent_file_bytes": latent_file,
        "weight_bytes": weight_bytes,
        "seconds": round(seconds, 1),
    }


def _probe(task: tuple[str, str, int, int]) -> dict:
    return probe(*task)


def table(rows: list[dict]) -> str:
    lines = md.table(("image", "filter channels per level", "bpp", "PSNR (dB)", "Δ dB", "Δ bytes", "train s (CPU)"))
    plain = {r["image"]: r for r in rows if r["filters"] == 0}
    for r in sorted(rows, key=lambda r: (r["image"], r["filters"])):
        p = plain.get(r["image"])
        dp = md.fmt(None if p is None else r["psnr"] - p["psnr"], "+.2f")
        db = md.fmt(None if p is None else 100 * (r["bpp"] / p["bpp"] - 1), "+.1f")
        cells = (r["image"], r["filters"] or "none", f"{r['bpp']:.4f}", f"{r['psnr']:.2f}", dp, db + "%", r["seconds"])
        lines.append(md.row(cells))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, default=PHOTOS, help=f"folder with SHA256SUMS ({PHOTOS})")
    p.add_argument("--n-images", type=int, default=2, help="the first N images (default 2)")
    p.add_argument("--preset", default="grid-medium", help="the latent preset whose point both arms train")
    p.add_argument("--filters", default="0,4", help="filter channels per level to compare (0: none)")
    p.add_argument("--steps", type=int, default=4800, help="training steps of every arm")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    refs = dataset(args.images)[: args.n_images]
    tasks = [(r.path, args.preset, int(k), args.steps) for r in refs for k in args.filters.split(",")]
    rows = list(Pool(args.workers).map(_probe, tasks))  # as they finish; the table sorts them
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"rows": rows, "provenance": provenance()}
    atomic_write(args.out / "results.json", lambda f: f.write(json.dumps(doc, indent=1).encode()))
    text = table(rows)
    atomic_write(args.out / "table.md", lambda f: f.write(text.encode()))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
