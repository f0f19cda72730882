"""The latent-grid family, stage 1 (issue 15): a SIREN synthesis over a coded pyramid of latents.

A pyramid of small grids (level l is the image downsampled by 2^l on each side) is interpolated
bilinearly at each pixel's coordinates, concatenated with the pixel's Fourier features and turned
into colour by a small sine network. Because the latents are sampled at continuous coordinates,
the picture still decodes at any size, which is what sets this member of the Cool-chic / C3 family
apart from theirs (their latents are upsampled on a fixed grid).

Training minimises D + lambda * R over random pixel batches: the latents are interpolated only
at the sampled pixels, the rate of *every* latent comes from the same per-level Laplace model the
file uses (or, with ``context="checkerboard"``, from :mod:`latent_context`'s model of each latent
given its decoded neighbours, estimated on a random sample of latents each step), quantization is
simulated by additive uniform noise and then by straight-through rounding. The bytes this
module reports are those of :func:`pack`: a complete format version 5 file
(:mod:`inrcodec.format.latent`), whose PSNR is that of the NumPy decoder's render
(:mod:`inrcodec.decoder.latent`): nothing is estimated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from inrcodec import coords
from inrcodec.config import LatentConfig
from inrcodec.decoder.latent import render as decode_latent
from inrcodec.encoder.latent_context import ContextModel
from inrcodec.format.checkerboard import FRAC, encode_latents
from inrcodec.format.latent import LatentFile, LatentHeader, context_block, level_sizes, read, write
from inrcodec.pixels import to_unit
from inrcodec.siren import fourier_features


class LatentImage(torch.nn.Module):
    """The latents, the per-level rate model and the synthesis network of one image."""

    def __init__(self, height: int, width: int, cfg: LatentConfig, out_channels: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.size = (height, width)
        self.latents = torch.nn.ParameterList(
            torch.nn.Parameter(torch.zeros(1, cfg.channels, h, w))
            for h, w in level_sizes(height, width, cfg.levels, cfg.finest)
        )
        dims = [cfg.levels * cfg.channels + 4 * cfg.pe_levels] + [cfg.hidden] * cfg.layers + [out_channels]
        self.linears = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        with torch.no_grad():  # SIREN's init: first layer 1/fan_in, later sqrt(6/fan_in)/omega
            for i, lin in enumerate(self.linears):
                bound = 1.0 / lin.in_features if i == 0 else math.sqrt(6.0 / lin.in_features) / cfg.omega
                if cfg.activation == "relu":
                    bound = math.sqrt(6.0 / lin.in_features) / 2
                lin.weight.uniform_(-bound, bound)
                lin.bias.uniform_(-bound, bound)
        self.arm = ContextModel(cfg.levels, cfg.context_hidden) if cfg.context == "checkerboard" else None

    def quantized(self, done: float | None) -> list[torch.Tensor]:
        """The latents as the decoder will see them at ``done`` (0..1) of training: noisy early
        on, rounded (straight-through) late, exactly rounded when ``done`` is None."""
        out = []
        for y in self.latents:
            if done is None:
                out.append(torch.round(y))
            elif done < self.cfg.noise_fraction:
                out.append(y + torch.empty_like(y).uniform_(-0.5, 0.5))
            else:
                out.append(y + (torch.round(y) - y).detach())
        return out

    def rate_bits(self, lat: list[torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        """Bits of every latent under its level's Laplace (centre 0, scale the level's mean
        magnitude, the maximum-likelihood fit): -log2 P(k), P the mass of [k - 1/2, k + 1/2], the
        model family the file's range coder uses; or under the context model when there is one."""
        if self.arm is not None:
            return self.arm.bits(lat, self.cfg.rate_sample, generator)
        return sum(_LaplaceBits.apply(y) for y in lat)

    def synthesis(self, features: torch.Tensor) -> torch.Tensor:
        h = features
        for lin in self.linears[:-1]:
            h = lin(h)
            h = torch.sin(self.cfg.omega * h) if self.cfg.activation == "sine" else torch.relu(h)
        return self.linears[-1](h)

    def forward(self, xy: torch.Tensor, lat: list[torch.Tensor]) -> torch.Tensor:
        """Colours in [-1, 1] (unclamped) at (N, 2) coordinates from the given latents."""
        grid = xy[None, None]  # (1, 1, N, 2): grid_sample's (x, y) in [-1, 1], pixel centres
        feats = [
            F.grid_sample(y, grid, mode=self.cfg.interpolation, padding_mode="border", align_corners=False)[0, :, 0].T
            for y in lat
        ]
        return self.synthesis(torch.cat([*feats, fourier_features(xy, self.cfg.pe_levels)[:, 2:]], dim=1))


class _LaplaceBits(torch.autograd.Function):
    """Sum of -log2 P(y) over a tensor, P the discretised Laplace of scale b = mean |y|, with its
    gradient computed in the same pass (autograd's graph of the same formula costs three times
    as much here, where the rate is most of a training step). Beyond |y| = 1/2 the bits are
    linear in |y|; inside, P = 1 - e^(-1/(2b)) cosh(|y|/b)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor) -> torch.Tensor:
        a = y.detach().abs()
        b = max(float(a.mean()), 0.05)
        c = math.exp(-0.5 / b)
        k1 = 1.0 / (b * math.log(2.0))  # bits per unit of |y| beyond 1/2
        k0 = -math.log2(math.sinh(0.5 / b))
        z = torch.exp(a * (-1.0 / b))
        iz = z.reciprocal()
        p = (iz + z).mul_(-0.5 * c).add_(1.0).clamp_min_(2.0**-24)
        inside = a < 0.5
        bits = torch.where(inside, -torch.log2(p), a * k1 + k0)
        slope = torch.where(inside, (iz - z).mul_(0.5 * c * k1).div_(p), k1)
        ctx.save_for_backward(slope.mul_(torch.sign(y)))
        return bits.sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (slope,) = ctx.saved_tensors
        return grad * slope


@dataclass(frozen=True)
class Fitted:
    """What one encode measured."""

    data: bytes  # the packed stream
    psnr: float  # of the decoded stream against the image, in dB
    bpp: float  # len(data) * 8 / pixels
    seconds: float  # process CPU time of training and coding
    steps: int  # training steps done
    latent_bytes: int  # bytes of the LATENTS section
    synthesis_bytes: int  # bytes of the SYNTHESIS section (weights and biases)
    context_bytes: int  # bytes of the CONTEXT section (0 without the context model)


def fit(arr: np.ndarray, cfg: LatentConfig, on_step: Callable[[int, int, float], None] | None = None) -> Fitted:
    """Fit, quantize and pack one (H, W, C) uint8 image."""
    t0 = time.process_time()
    torch.manual_seed(cfg.seed)
    h, w, c = arr.shape
    model = LatentImage(h, w, cfg, c)
    xy = coords.grid(h, w)
    colours = torch.from_numpy(to_unit(arr).reshape(-1, c))
    latent_params = list(model.latents)
    synthesis = [p for n, p in model.named_parameters() if n.startswith("linears")]
    groups = [{"params": latent_params, "lr": cfg.lr_latent}, {"params": synthesis, "lr": cfg.lr_synthesis}]
    if model.arm is not None:
        groups.append({"params": list(model.arm.parameters()), "lr": cfg.lr_context})
    opt = torch.optim.Adam(groups)
    base = [g["lr"] for g in groups]
    gen = torch.Generator().manual_seed(cfg.seed)
    n = h * w
    order, at, step = torch.randperm(n, generator=gen), 0, 0
    while step < cfg.steps:
        # Progress through the schedule: by steps, or by CPU time when a budget is set.
        done = step / cfg.steps
        if cfg.seconds is not None:
            done = max(done, (time.process_time() - t0) / cfg.seconds)
        if done >= 1.0:
            break
        if at + cfg.batch > n:
            order, at = torch.randperm(n, generator=gen), 0
        idx = order[at : at + cfg.batch]
        at += cfg.batch
        scale = 0.5 * (1 + math.cos(math.pi * done))
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * (0.01 + 0.99 * scale)
        lat = model.quantized(done)
        pred = model(xy[idx], lat)
        mse = torch.mean((pred - colours[idx]) ** 2) / 4.0  # on [0, 1] colours
        loss = mse + cfg.lam * model.rate_bits(lat, gen) / n
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if on_step is not None and (step % 100 == 0 or step == cfg.steps):  # (done, of, batch PSNR dB)
            on_step(step, cfg.steps, -10 * math.log10(max(float(mse.detach()), 1e-12)))
    data, err = pack(model, cfg, arr)
    psnr = 10 * math.log10(255.0**2 / max(err, 1e-12))
    sections = read(data).section_bytes  # the file read back, as a decoder will
    return Fitted(
        data,
        psnr,
        len(data) * 8 / n,
        time.process_time() - t0,
        step,
        sections["latents"],
        sections["synthesis"],
        sections.get("context", 0),
    )


# --- the file: format version 5 (inrcodec/format/latent.py) ----------------------------------------


def header(cfg: LatentConfig, height: int, width: int, channels: int) -> LatentHeader:
    """The version 5 header of an image fitted with ``cfg``."""
    return LatentHeader(
        width=width,
        height=height,
        channels=channels,
        levels=cfg.levels,
        finest=cfg.finest,
        latent_channels=cfg.channels,
        pe_levels=cfg.pe_levels,
        hidden=cfg.hidden,
        layers=cfg.layers,
        omega=cfg.omega,
        interpolation=int(cfg.interpolation == "bicubic"),
        activation=int(cfg.activation == "relu"),
        context=int(cfg.context == "checkerboard"),
    )


def _synthesis_tensors(model: LatentImage) -> list[torch.Tensor]:
    return [t for lin in model.linears for t in (lin.weight, lin.bias)]


def pack(model: LatentImage, cfg: LatentConfig, arr: np.ndarray) -> tuple[bytes, float]:
    """The file and the MSE of its decode (by the NumPy decoder, the reference). The latents are
    rounded; the context network (if any) takes the precision 2^-4..2^-8 that codes it and the
    latents in the fewest bytes; each synthesis tensor is quantized to the bit depth (6..10) that
    gives the lowest D + lambda * R."""
    h, w, c = arr.shape
    head = header(cfg, h, w, c)
    with torch.no_grad():
        lat = [y[0].numpy().astype(np.int64) for y in model.quantized(None)]
        context: dict = {}
        if model.arm is not None:
            best = None
            for bits in range(4, FRAC + 1):
                arm = model.arm.integers(bits)
                trial = LatentFile(head, lat, [], [], arm, cfg.context_hidden, bits)
                size = len(context_block(trial)) + len(encode_latents(lat, arm))
                if best is None or size < best[0]:
                    best = (size, arm, bits)
            context = {"context": best[1], "context_width": cfg.context_hidden, "context_bits": best[2]}
        target = arr.astype(np.float64)
        best = None
        for bits in range(6, 11):
            steps, tensors = [], []
            for t in _synthesis_tensors(model):
                top = float(t.abs().max())
                step = np.float32(2 * top / (2**bits - 1) if top > 0 else 1.0)
                steps.append(float(step))
                tensors.append(np.round(t.numpy() / step).astype(np.int64))
            f = LatentFile(head, lat, steps, tensors, **context)
            data = write(f)
            err = float(np.mean((decode_latent(f, w, h).astype(np.float64) - target) ** 2))
            cost = err / 255.0**2 + cfg.lam * len(data) * 8 / (h * w)
            if best is None or cost < best[0]:
                best = (cost, data, err)
    return best[1], best[2]
