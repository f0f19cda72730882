"""Why C3's quantization proxy fails at a full-resolution grid, how that grid's latents learn,
and the lower points' long fit (issue 15): one photo, one point, the training changed one way at
a time, each fit in its own process.

    python -m benchmarks.proxy_probe --workers 2 --out benchmarks/results/latent/proxy-probe.jsonl
    python -m benchmarks.proxy_probe --workers 2 --variants uniform --lams 4e-3,3e-3,2e-3,1e-3 \
        --out benchmarks/results/latent/proxy-probe.jsonl     # the uniform curve around the point
    python -m benchmarks.proxy_probe --workers 2 --variants lr-finest3,lr-finest2,lr-finest0.3,lr-finest0.1 \
        --out benchmarks/results/latent/proxy-probe.jsonl     # the finest grid's learning rate
    python -m benchmarks.proxy_probe --workers 2 --preset grid-medium --variants long-fit --steps 11520 \
        --lams 4e-3,7e-4 --out benchmarks/results/latent/long-fit-probe.jsonl   # the lower points' latents

Each variant fits ``--image`` with ``--preset``'s configuration for ``--steps`` steps on one torch
thread and appends one JSON line: bytes, PSNR of the decoded file, the finest grid's
nonzero latents and mean |y|, CPU seconds. A diagnostic, not a codec: the variants other than the
two quantizers, ``lr-finest<F>`` (``LatentConfig.lr_finest``) and ``long-fit`` patch ``encoder.latent`` inside
their own process (a clipped derivative, uniform noise on the finest grid, uniform noise on what
the rate reads, lazy Adam), so nothing of those is reachable from the presets. A line already in
``--out`` for the same variant, photo, preset, lambda and steps is kept.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.runner import REPO, command_line, provenance
from inrcodec.config import LATENT_PRESETS

PHOTO = REPO.parent / "shared" / "photos" / "photo002.png"
# name: what the variant changes (the first two are the codec's own quantizers)
VARIANTS = {
    "uniform": "uniform noise, then straight-through rounding",
    "soft-fast": "C3's proxy (soft-fast)",
    "clip3": "soft-fast, each latent's proxy derivative clipped at 3",
    "clip1": "soft-fast, clipped at 1",
    "clip0.3": "soft-fast, clipped at 0.3",
    "finest-uniform": "the proxy on every grid but the finest (uniform noise, then straight-through rounding)",
    "rate-uniform": "the proxy for what the synthesis reads, uniform noise for what the rate reads",
    "uniform-lazy": "uniform noise; the latents' Adam moves only latents the step read (lazy Adam)",
    "soft-fast-lazy": "soft-fast; the latents' Adam moves only latents the step read (lazy Adam)",
    "lr-finest3": "uniform noise, the finest grid's learning rate 3x lr_latent",
    "lr-finest2": "uniform noise, the finest grid's learning rate 2x lr_latent",
    "lr-finest0.3": "uniform noise, the finest grid's learning rate 0.3x lr_latent",
    "lr-finest0.1": "uniform noise, the finest grid's learning rate 0.1x lr_latent",
    "long-fit": "the preset's quantizer, the latents at lr 0.1 and the finest grid at 0.1 of it (LATENT_LONG_FIT)",
}


def _lazy_adam():
    """torch.optim.Adam whose first parameter group (the latents) is updated lazily: a latent's
    moments, step count and value change only on a step whose gradient reached it (TensorFlow's
    LazyAdam), so that a latent read in a few per cent of the steps is not carried on by its
    momentum between them."""
    import torch

    class LazyAdam(torch.optim.Adam):
        def __init__(self, groups, **kwargs):
            super().__init__(groups, **{k: v for k, v in kwargs.items() if k != "fused"})

        @torch.no_grad()
        def step(self, closure=None):
            latents, *rest = self.param_groups
            self.param_groups = rest
            try:
                super().step()
            finally:
                self.param_groups = [latents, *rest]
            (beta1, beta2), eps, lr = latents["betas"], latents["eps"], latents["lr"]
            for p in latents["params"]:
                st = self.state[p]
                if not st:
                    st["m"], st["v"], st["t"] = torch.zeros_like(p), torch.zeros_like(p), torch.zeros_like(p)
                g = p.grad
                hit = g != 0
                st["t"] += hit
                st["m"] = torch.where(hit, beta1 * st["m"] + (1 - beta1) * g, st["m"])
                st["v"] = torch.where(hit, beta2 * st["v"] + (1 - beta2) * g * g, st["v"])
                t = st["t"].clamp_min(1)
                m_hat = st["m"] / (1 - beta1**t)
                v_hat = st["v"] / (1 - beta2**t)
                p.sub_(torch.where(hit, lr * m_hat / (v_hat.sqrt() + eps), torch.zeros_like(p)))

    return LazyAdam


def _patch(variant: str) -> None:
    """Change ``encoder.latent`` in this process as ``variant`` says."""
    import torch

    from inrcodec.encoder import latent as L

    if variant.endswith("-lazy"):
        torch.optim.Adam = _lazy_adam()  # fit() makes its optimizer with torch.optim.Adam
        return
    if variant.startswith("clip"):
        clip = float(variant[4:])

        def noisy(ctx, grad):
            (slope,) = ctx.saved_tensors
            return grad * slope.clamp(max=clip), None, None

        def rounded(ctx, grad):
            (slope,) = ctx.saved_tensors
            return grad * slope.clamp(max=clip)

        L._SoftNoise.backward = staticmethod(noisy)
        L._SoftRounded.backward = staticmethod(rounded)
        return
    tapped = [0]  # "rate-uniform": how many of a step's positions are the pixels' taps
    taps_at = L.PixelTaps.at

    def at(self, pixels):
        index, weight = taps_at(self, pixels)
        tapped[0] = index.numel()
        return index, weight

    # Step.read with a choice per position (keep in step with encoder.latent.Step.read)
    def read(self, index, done):
        cfg = self.model.cfg
        progress = done / cfg.noise_fraction if done < cfg.noise_fraction else 1.0
        values = self.model.flat.index_select(0, index)
        proxy = torch.ones_like(index, dtype=torch.bool)
        if variant == "finest-uniform":
            proxy = index >= self.model.pyramid.sizes[0]
        else:
            proxy[tapped[0] :] = False
        if done < cfg.noise_fraction:
            total = self.model.pyramid.total
            offset = int(torch.randint(total, (1,), generator=self.gen))
            uniform = self.noise[offset : offset + total].index_select(0, index)
            shaped = self.table(progress)[offset : offset + total].index_select(0, index)
            soft = L._SoftNoise.apply(values, shaped, L.proxy_schedule(progress)[0])
            return torch.where(proxy, soft, values + uniform)
        return torch.where(proxy, L._SoftRounded.apply(values), L._quantize(values, None))

    L.PixelTaps.at = at
    L.Step.read = read


def _probe(job: tuple) -> dict:
    return probe(*job)


def probe(variant: str, image: str, preset: str, steps: int, lam: float | None) -> dict:
    """One fit (in a process of its own: the patches stay there)."""
    import torch
    from PIL import Image

    from inrcodec.config import LATENT_LONG_FIT, LATENT_PRESETS
    from inrcodec.encoder import latent
    from inrcodec.format.latent import read

    torch.set_num_threads(1)
    quantizer = "uniform" if variant.startswith(("uniform", "lr-finest")) else "soft-fast"
    # the preset's point at the full learning rate, as the study began (the full-resolution
    # presets' finest grid has learnt at 0.1 since, and the three lower presets' networks start from
    # shipped inits: LatentConfig.init, not used here); --steps sets the steps
    cfg = replace(LATENT_PRESETS[preset], steps=steps, quantizer=quantizer, lr_finest=1.0, init="")
    cfg = replace(cfg, lam=cfg.lam if lam is None else lam)
    if variant == "long-fit":  # only the steps differ from LATENT_LONG_FIT's: --steps sets them
        long = {k: v for k, v in LATENT_LONG_FIT.items() if k != "steps"}
        cfg = replace(cfg, quantizer=LATENT_PRESETS[preset].quantizer, **long)
    elif variant.startswith("lr-finest"):
        cfg = replace(cfg, lr_finest=float(variant.removeprefix("lr-finest")))
    elif variant not in ("uniform", "soft-fast"):
        _patch(variant)
    arr = np.asarray(Image.open(image).convert("RGB"))
    t0 = time.process_time()
    fitted = latent.fit(arr, cfg)
    finest = read(fitted.data).latents[0]
    return {
        "variant": variant,
        "what": VARIANTS[variant],
        "image": Path(image).name,
        "preset": preset,
        "lam": cfg.lam,
        "lr_finest": cfg.lr_finest,
        "lr_latent": cfg.lr_latent,
        "quantizer": cfg.quantizer,
        "steps": steps,
        "bytes": len(fitted.data),
        "bpp": round(fitted.bpp, 4),
        "psnr": round(fitted.psnr, 3),
        "finest_nonzero": int(np.count_nonzero(finest)),
        "finest_mean_abs": round(float(np.abs(finest).mean()), 4),
        "cpu_s": round(time.process_time() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--image", type=Path, default=PHOTO, help=f"the photo (default {PHOTO.name})")
    p.add_argument("--preset", default="grid-xhigh", choices=list(LATENT_PRESETS), help="default grid-xhigh")
    p.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    p.add_argument("--lams", help="comma-separated lambdas, each variant at each (default: the preset's)")
    p.add_argument("--workers", type=int, default=1, help="fits at once, one torch thread each (default 1)")
    p.add_argument("--out", type=Path, required=True, help="JSON lines, appended")
    args = p.parse_args(argv)
    variants = args.variants.split(",")
    if unknown := [v for v in variants if v not in VARIANTS]:
        p.error(f"unknown variant(s): {', '.join(unknown)}")
    if not args.image.is_file():
        p.error(f"{args.image}: no such file")
    lams = [None] if args.lams is None else [float(x) for x in args.lams.split(",")]
    # (rows written before --lams have no lam: their preset's)
    key = lambda r: (r["variant"], r["image"], r["preset"], r.get("lam", LATENT_PRESETS[r["preset"]].lam), r["steps"])  # noqa: E731
    done = {key(json.loads(line)) for line in args.out.read_text().splitlines()} if args.out.exists() else set()
    preset_lam = LATENT_PRESETS[args.preset].lam
    todo = [
        (v, lam)
        for v in variants
        for lam in lams
        if (v, args.image.name, args.preset, preset_lam if lam is None else lam, args.steps) not in done
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    jobs = [(v, str(args.image), args.preset, args.steps, lam) for v, lam in todo]
    # a fresh process per fit (the patches stay in it); each row written as its fit ends
    with multiprocessing.get_context("spawn").Pool(max(1, args.workers), maxtasksperchild=1) as pool:
        for row in pool.imap_unordered(_probe, jobs):
            row |= {"command": command_line(), "provenance": provenance()}
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps({k: v for k, v in row.items() if k not in ("command", "provenance")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
