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
module reports are those of :func:`pack`, a complete stream that :func:`unpack` reads back and
:func:`render` decodes: nothing is estimated.

This is the prototype the issue gates on; it is not yet a format version of the codec.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from inrcodec import coords
from inrcodec.encoder.latent_context import FRAC, ContextModel, arm_shapes, decode_latents, encode_latents
from inrcodec.format.entropy import LAPLACE, Laplace, fit_laplace, range_decode, range_encode
from inrcodec.format.errors import FormatError
from inrcodec.pixels import from_unit, to_unit
from inrcodec.siren import fourier_features


@dataclass(frozen=True)
class LatentConfig:
    """One operating point of the latent-grid prototype."""

    lam: float = 1e-3  # lambda of D + lambda * R: D the MSE of [0,1] colours, R in bits per pixel
    levels: int = 7  # latent grids, each half the side of the one before
    finest: int = 0  # the first grid is 1/2^finest of the image side (1: no full-resolution grid)
    channels: int = 1  # latent channels per level
    pe_levels: int = 4  # Fourier-feature octaves of the coordinates fed beside the latents (0: none)
    hidden: int = 24  # width of the synthesis network
    layers: int = 2  # hidden sine layers of the synthesis
    omega: float = 1.0  # frequency factor of the synthesis' sine layers
    activation: str = "sine"  # "sine" (SIREN synthesis) or "relu" (Cool-chic's), for the ablation
    interpolation: str = "bilinear"  # of the latents at a pixel: "bilinear" or "bicubic"
    context: str = "none"  # latents' entropy model: "none" (one Laplace per level) or "checkerboard"
    context_hidden: int = 16  # width of the checkerboard context model's two hidden layers
    rate_sample: int = 2048  # latents whose rate under the context model a step estimates from (0: all)
    batch: int = 16384  # pixels per training step
    steps: int = 3000  # training steps (the last one may come earlier: see ``seconds``)
    seconds: float | None = None  # stop training after this much process CPU time (equal-time runs)
    lr_latent: float = 1e-2  # Adam learning rate of the latents (cosine to 1 % of it)
    lr_synthesis: float = 2e-3  # Adam learning rate of the synthesis
    lr_context: float = 1e-2  # Adam learning rate of the context model (when there is one)
    noise_fraction: float = 0.75  # share of the steps with additive noise; straight-through after
    weight_bits: int = 8  # unused: pack() picks the synthesis' bit depth (6..10) by D + lambda R
    seed: int = 0  # torch seed of the synthesis init and the batch order

    def __post_init__(self) -> None:
        if self.levels < 1 or self.channels < 1 or self.hidden < 1 or self.layers < 1:
            raise ValueError("levels, channels, hidden and layers must be at least 1")
        if self.activation not in ("sine", "relu"):
            raise ValueError(f"activation must be sine or relu, not {self.activation!r}")
        if self.interpolation not in ("bilinear", "bicubic"):
            raise ValueError(f"interpolation must be bilinear or bicubic, not {self.interpolation!r}")
        if self.context not in ("none", "checkerboard"):
            raise ValueError(f"context must be none or checkerboard, not {self.context!r}")
        if not 1 <= self.context_hidden < 256:
            raise ValueError("context_hidden must be in 1..255")
        if not (0 <= self.finest < 16 and self.levels < 16 and self.channels < 256):
            raise ValueError("finest and levels must be below 16, channels below 256")
        if not (self.pe_levels < 128 and self.hidden < 256 and self.layers < 128):
            raise ValueError("the stream holds pe_levels and layers below 128, hidden below 256")
        if not 0.0 <= self.noise_fraction <= 1.0:
            raise ValueError("noise_fraction must be in [0, 1]")


def level_sizes(height: int, width: int, levels: int, finest: int = 0) -> list[tuple[int, int]]:
    """Level l holds ceil(H / 2^(finest + l)) x ceil(W / 2^(finest + l)) latents."""
    return [(-(-height // (1 << i)), -(-width // (1 << i))) for i in range(finest, finest + levels)]


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
    latent_bytes: list[int]  # coded bytes per level
    synthesis_bytes: int  # coded bytes of the synthesis weights and biases


def fit(arr: np.ndarray, cfg: LatentConfig, on_step: Callable[[int, float], None] | None = None) -> Fitted:
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
        if on_step is not None and step % 100 == 0:
            on_step(step, float(mse))
    data, sizes, synth, err = pack(model, cfg, arr)
    psnr = 10 * math.log10(255.0**2 / max(err, 1e-12))
    return Fitted(data, psnr, len(data) * 8 / n, time.process_time() - t0, step, sizes, synth)


# --- the prototype's stream: every byte the decoder needs ------------------------------------------

# height, width, channels out, levels, finest | 0x80 if checkerboard context, latent channels,
# pe | 0x80 if bicubic, hidden, layers | 0x80 if relu, omega (the flags ride on bytes whose
# values stay below 128, so a sine, bilinear, context-free stream has no byte for them). A context
# stream then has the context model's width (u8), the bits k of its weights' fixed point (u8;
# they are multiples of 2^-k), those integers as one coded block, and the
# latents as one block (u32 length, then latent_context.encode_latents' bytes).
HEAD = struct.Struct("<HHBBBBBBBf")
BICUBIC = RELU = CONTEXT = 0x80
WIDTH = struct.Struct("<BB")
BLOCK = struct.Struct("<I")  # byte length of a range-coded block
STEP = struct.Struct("<f")  # a synthesis tensor's quantization step


def _coded(q: np.ndarray) -> bytes:
    model = fit_laplace(q)
    words = range_encode(q, model)
    return model.pack() + BLOCK.pack(len(words)) + words


def _read_coded(data: memoryview, at: int, count: int) -> tuple[np.ndarray, int]:
    model = Laplace.parse(data[at:])
    at += LAPLACE.size
    (size,) = BLOCK.unpack_from(data, at)
    at += BLOCK.size
    return range_decode(data[at : at + size], model, count), at + size


def _synthesis_tensors(model: LatentImage) -> list[torch.Tensor]:
    return [t for lin in model.linears for t in (lin.weight, lin.bias)]


def pack(model: LatentImage, cfg: LatentConfig, arr: np.ndarray) -> tuple[bytes, list[int], int, float]:
    """The stream: header, each level's latents range-coded under its fitted Laplace, then each
    synthesis tensor quantized to the bit depth (6..10) that gives the lowest D + lambda * R.
    Returns it with its latent blocks' and synthesis' bytes and the MSE of its own decode."""
    h, w, c = arr.shape
    if not (h < 1 << 16 and w < 1 << 16 and c < 256):
        raise ValueError(f"the prototype's stream holds images up to 65535 pixels a side, not {w}x{h}")
    pe = cfg.pe_levels | (BICUBIC if cfg.interpolation == "bicubic" else 0)
    layers = cfg.layers | (RELU if cfg.activation == "relu" else 0)
    finest = cfg.finest | (CONTEXT if model.arm is not None else 0)
    head = HEAD.pack(h, w, c, cfg.levels, finest, cfg.channels, pe, cfg.hidden, layers, cfg.omega)
    with torch.no_grad():
        lat = [y[0].numpy().astype(np.int64) for y in model.quantized(None)]
        if model.arm is None:
            latent_blocks = [_coded(y.reshape(-1)) for y in lat]
        else:
            # The context model's precision: whichever codes it and the latents in the fewest bytes.
            best_arm = None
            for bits in range(4, FRAC + 1):
                arm = model.arm.integers(bits)
                coded = encode_latents(lat, arm)
                block = _coded(np.concatenate([a.reshape(-1) >> (FRAC - bits) for a in arm]))
                size = len(block) + len(coded)
                if best_arm is None or size < best_arm[0]:
                    best_arm = (size, WIDTH.pack(cfg.context_hidden, bits) + block, coded)
            head += best_arm[1]
            latent_blocks = [BLOCK.pack(len(best_arm[2])) + best_arm[2]]
        target = arr.astype(np.float64)
        best = None
        for bits in range(6, 11):
            blocks = []
            for t in _synthesis_tensors(model):
                top = float(t.abs().max())
                step = np.float32(2 * top / (2**bits - 1) if top > 0 else 1.0)
                blocks.append(STEP.pack(step) + _coded(np.round(t.numpy() / step).astype(np.int64).reshape(-1)))
            data = head + b"".join(latent_blocks) + b"".join(blocks)
            err = np.mean((render(unpack(data), h, w).astype(np.float64) - target) ** 2)
            cost = err / 255.0**2 + cfg.lam * len(data) * 8 / (h * w)
            if best is None or cost < best[0]:
                best = (cost, data, sum(len(b) for b in blocks), float(err))
    return best[1], [len(b) for b in latent_blocks], best[2], best[3]


@dataclass(frozen=True)
class Stream:
    """A parsed prototype stream."""

    size: tuple[int, int]
    out_channels: int
    cfg: LatentConfig
    latents: list[np.ndarray]  # per level (channels, h, w) integers
    tensors: list[np.ndarray]  # synthesis weights and biases, dequantized (float32)


def unpack(data: bytes) -> Stream:
    view = memoryview(data)
    h, w, c, levels, finest, channels, pe, hidden, layers, omega = HEAD.unpack_from(view)
    interpolation = "bicubic" if pe & BICUBIC else "bilinear"
    activation = "relu" if layers & RELU else "sine"
    context = "checkerboard" if finest & CONTEXT else "none"
    pe, layers, finest = pe & ~BICUBIC, layers & ~RELU, finest & ~CONTEXT
    cfg = LatentConfig(
        levels=levels,
        finest=finest,
        channels=channels,
        pe_levels=pe,
        hidden=hidden,
        layers=layers,
        omega=omega,
        activation=activation,
        interpolation=interpolation,
        context=context,
    )
    at = HEAD.size
    sizes = level_sizes(h, w, levels, finest)
    latents = []
    if context == "none":
        for lh, lw in sizes:
            q, at = _read_coded(view, at, channels * lh * lw)
            latents.append(q.reshape(channels, lh, lw))
    else:
        width, bits = WIDTH.unpack_from(view, at)
        if width == 0 or not 1 <= bits <= FRAC:
            raise FormatError("context model of width 0 or weights of more than 8 fractional bits")
        shapes = arm_shapes(width, levels)
        flat, at = _read_coded(view, at + WIDTH.size, sum(int(np.prod(s)) for s in shapes))
        arm, k = [], 0
        for s in shapes:
            arm.append(flat[k : k + int(np.prod(s))].reshape(s) << (FRAC - bits))
            k += int(np.prod(s))
        (size,) = BLOCK.unpack_from(view, at)
        at += BLOCK.size
        latents = decode_latents(view[at : at + size], sizes, channels, arm)
        at += size
    dims = [levels * channels + 4 * pe] + [hidden] * layers + [c]
    tensors = []
    for a, b in zip(dims[:-1], dims[1:]):
        for shape in ((b, a), (b,)):
            (step,) = STEP.unpack_from(view, at)
            q, at = _read_coded(view, at + STEP.size, int(np.prod(shape)))
            tensors.append((q.astype(np.float32) * np.float32(step)).reshape(shape))
    if at != len(data):
        raise ValueError("trailing bytes after the stream")
    return Stream((h, w), c, cfg, latents, tensors)


def render(stream: Stream, height: int, width: int) -> np.ndarray:
    """The decoded (height, width, C) uint8 image, at any size."""
    model = LatentImage(*stream.size, replace(stream.cfg, context="none"), stream.out_channels)
    with torch.no_grad():
        for p, t in zip(_synthesis_tensors(model), stream.tensors):
            p.copy_(torch.from_numpy(t))
        lat = [torch.from_numpy(q.astype(np.float32))[None] for q in stream.latents]
        xy = coords.grid(height, width)
        out = torch.cat([model(xy[i : i + 65536], lat) for i in range(0, xy.shape[0], 65536)])
    return from_unit(out.numpy().reshape(height, width, -1))
