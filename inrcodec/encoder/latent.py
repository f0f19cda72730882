"""The latent-grid family, stage 1 (issue 15): a SIREN synthesis over a coded pyramid of latents.

A pyramid of small grids (level l is the image downsampled by 2^l on each side) is interpolated
bilinearly at each pixel's coordinates, concatenated with the pixel's Fourier features and turned
into colour by a small sine network. Because the latents are sampled at continuous coordinates,
the picture still decodes at any size, which is what sets this member of the Cool-chic / C3 family
apart from theirs (their latents are upsampled on a fixed grid).

Training minimises D + lambda * R over random pixel batches: the latents are interpolated only
at the sampled pixels, the rate of *every* latent comes from the same per-level Laplace model the
file uses (or, with ``context="checkerboard"`` or ``"four-pass"``, from :mod:`latent_context`'s model of each latent
given its decoded neighbours, estimated on a random sample of latents each step), quantization is
simulated by additive uniform noise and then by straight-through rounding (or, with
``quantizer="soft"`` or the cheaper ``"soft-fast"``, by C3's soft-rounding around Kumaraswamy
noise, then rounding). A step (:class:`Step`)
reads everything it needs, the taps of its pixels, the rated latents and their contexts, from the
one flat vector of latents in a single gather and quantizes only those: work in proportion to the
batch, not to the pyramid (a full-resolution grid has 400 k latents; a step reads about 130 k
positions, many of them twice), and a backward that is one scatter. The bytes this
module reports are those of :func:`pack`: a complete format version 8 (9: four passes) file
(:mod:`inrcodec.format.latent`), whose PSNR is that of the NumPy decoder's render
(:mod:`inrcodec.decoder.latent`): nothing is estimated. At the points that ask for it
(``LatentConfig.rdo_levels``) :mod:`latent_rdo` then moves latents by +-1 where the file's own
D + lambda R goes down, measured the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from inrcodec import coords
from inrcodec.config import LatentConfig
from inrcodec.decoder.latent import render as decode_latent
from inrcodec.decoder.latent import taps
from inrcodec.encoder import latent_init, latent_rdo, latent_tune, sampling
from inrcodec.encoder.latent_context import SCHEMES, ContextModel, Pyramid
from inrcodec.format.checkerboard import ARM_NAMES, FRAC, encode_latents
from inrcodec.format.errors import FormatError
from inrcodec.format.latent import (
    CONTEXTS,
    LatentFile,
    LatentHeader,
    context_block,
    level_sizes,
    read,
    synthesis_payload,
    write,
)
from inrcodec.pixels import to_unit
from inrcodec.siren import fourier_features


class LatentImage(torch.nn.Module):
    """The latents (all levels in one flat parameter), the rate model and the synthesis network
    of one image."""

    def __init__(self, height: int, width: int, cfg: LatentConfig, out_channels: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.size = (height, width)
        self.pyramid = Pyramid([(cfg.channels, h, w) for h, w in level_sizes(height, width, cfg.levels, cfg.finest)])
        self.flat = torch.nn.Parameter(torch.zeros(self.pyramid.total))
        dims = cfg.synthesis_dims(out_channels)
        self.linears = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        with torch.no_grad():  # SIREN's init: first layer 1/fan_in, later sqrt(6/fan_in)/omega
            for i, lin in enumerate(self.linears):
                bound = 1.0 / lin.in_features if i == 0 else math.sqrt(6.0 / lin.in_features) / cfg.omega
                if cfg.activation == "relu":
                    bound = math.sqrt(6.0 / lin.in_features) / 2
                lin.weight.uniform_(-bound, bound)
                lin.bias.uniform_(-bound, bound)
        self.scheme = SCHEMES.get(cfg.context)  # the context model's, or None
        self.arm = None if self.scheme is None else ContextModel(cfg.levels, cfg.context_hidden, self.scheme.features)
        # after the random init, so the seeded draws of everything else are the same
        if init := latent_init.used(cfg, out_channels):
            latent_init.apply(self, init)
        # where the file's network integers are counted from (network_bits): the init, or zero;
        # the coded tensors flat, each one a segment
        # (buffers, so that ``to(device)`` moves them with the parameters; not in a state_dict)
        coded = self.coded()
        with torch.no_grad():
            start = torch.cat([t.reshape(-1) if init else torch.zeros(t.numel()) for t in coded])
        sizes = torch.tensor([t.numel() for t in coded])
        self.register_buffer("_start", start, persistent=False)
        self.register_buffer("_segment", torch.repeat_interleave(torch.arange(len(coded)), sizes), persistent=False)
        self.register_buffer("_count", sizes.to(torch.float32), persistent=False)
        # the synthesis' tensors; the others are the context network's
        self.register_buffer("_synthesis", torch.arange(len(coded)) < 2 * len(self.linears), persistent=False)

    def coded(self) -> list[torch.Tensor]:
        """The networks' tensors as the file codes them: the synthesis' maps (weight, bias), then
        the context network's in CONTEXT's order."""
        tensors = [t for lin in self.linears for t in (lin.weight, lin.bias)]
        if self.arm is not None:
            named = dict(self.arm.named_parameters())
            tensors += [named[k] for k in ARM_NAMES]
        return tensors

    def network_bits(self) -> torch.Tensor:
        """The networks' bits as the file would code them, estimated smoothly: each tensor's n
        integers under a Laplace of their mean size m in steps, n log2(1 + 2e m) (about n log2(2e m)
        bits when m is large, none when the steps cannot resolve the change), the step that of 8 bits
        for a synthesis tensor (2 max |w| / 255: pack tries 6 to 10) and 2^-5 for the context
        network's (pack tries 2^-4 to 2^-8). m counts from the init, which the file codes from."""
        flat = torch.cat([t.reshape(-1) for t in self.coded()])  # one pass for all (a loop was 2 ms a step)
        k = len(self._count)
        distance = flat.new_zeros(k).index_add(0, self._segment, (flat - self._start).abs())
        with torch.no_grad():
            top = flat.new_zeros(k).scatter_reduce(0, self._segment, flat.abs(), "amax")
            step = torch.where(self._synthesis, 2 * top / 255, 2.0**-5).clamp_min(1e-12)
        m = distance / (self._count * step)
        return (self._count * torch.log2(1 + 2 * math.e * m)).sum()

    @property
    def latents(self) -> list[torch.Tensor]:
        """The levels, finest first, as (1, C, h, w) views of the flat parameter."""
        return self.pyramid.views(self.flat)

    def rounded(self) -> list[torch.Tensor]:
        """The latents as the file stores them (training quantizes only what a step reads: :class:`Step`)."""
        return [torch.round(y) for y in self.latents]

    def synthesis(self, features: torch.Tensor) -> torch.Tensor:
        h = features
        for lin in self.linears[:-1]:
            h = lin(h)
            h = torch.sin(self.cfg.omega * h) if self.cfg.activation == "sine" else torch.relu(h)
        return self.linears[-1](h)

    def forward(self, xy: torch.Tensor, lat: list[torch.Tensor]) -> torch.Tensor:
        """Colours in [-1, 1] (unclamped) at any (N, 2) coordinates from the given latents: the
        reference the training step's gathers are tested against (and the decoder's function)."""
        grid = xy[None, None]  # (1, 1, N, 2): grid_sample's (x, y) in [-1, 1], pixel centres
        feats = [
            F.grid_sample(y, grid, mode=self.cfg.interpolation, padding_mode="border", align_corners=False)[0, :, 0].T
            for y in lat
        ]
        return self.synthesis(torch.cat([*feats, fourier_features(xy, self.cfg.pe_levels)[:, 2:]], dim=1))


def _quantize(values: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """Additive noise, or rounding straight through (the gradient passes as if unrounded)."""
    if noise is not None:
        return values + noise
    return values + (torch.round(values) - values).detach()


# C3's quantization proxy (Kim et al. 2024, after Agustsson & Theis 2020, section 4.1): over the
# noisy steps the soft-rounding temperature and the Kumaraswamy noise's a go linearly from the
# first value to the second; then rounding, with the gradient of a soft-round at SOFT_STE.
SOFT_TEMPERATURE = (0.3, 0.1)
KUMARASWAMY_A = (2.0, 1.0)
SOFT_STE = 1e-4
# quantizer="soft-fast": the same proxy with a held constant over each of this many equal stages
# of the noisy steps (at its value mid-stage), so that the noise table is transformed once a stage
# instead of on every value a step reads; 16 stages move a by 1/16 at a time.
KUMARASWAMY_STAGES = 16


def soft_round(x: torch.Tensor, t: float) -> torch.Tensor:
    """A differentiable rounding: the identity as t grows, rounding as t goes to 0."""
    m = torch.floor(x) + 0.5
    return m + torch.tanh((x - m) / t) / (2 * math.tanh(0.5 / t))


def soft_round_mean(z: torch.Tensor, t: float) -> torch.Tensor:
    """E[X | soft_round(X) + U = z] for U uniform on [-1/2, 1/2]: the inverse soft-round of z - 1/2, plus 1/2."""
    y = z - 0.5
    m = torch.floor(y) + 0.5
    return m + t * torch.atanh((y - m) * (2 * math.tanh(0.5 / t))) + 0.5


def proxy_schedule(progress: float) -> tuple[float, float]:
    """(temperature, Kumaraswamy a) at ``progress`` (0..1) of the noisy steps."""
    t = SOFT_TEMPERATURE[0] + (SOFT_TEMPERATURE[1] - SOFT_TEMPERATURE[0]) * progress
    a = KUMARASWAMY_A[0] + (KUMARASWAMY_A[1] - KUMARASWAMY_A[0]) * progress
    return t, a


def stage_a(progress: float) -> float:
    """Kumaraswamy's a for "soft-fast" at ``progress``: the schedule's value in the middle of its stage."""
    stage = min(int(progress * KUMARASWAMY_STAGES), KUMARASWAMY_STAGES - 1)
    return proxy_schedule((stage + 0.5) / KUMARASWAMY_STAGES)[1]


def kumaraswamy_noise(uniform: torch.Tensor, a: float) -> torch.Tensor:
    """Kumaraswamy(a, b) noise with its mode at 1/2 (a = b = 1: uniform), shifted to [-1/2, 1/2],
    by the inverse CDF of ``uniform`` noise in [-1/2, 1/2]."""
    b = (2**a * (a - 1) + 1) / a
    u = (uniform + 0.5).clamp(1e-7, 1 - 1e-7)
    return (1 - (1 - u) ** (1 / b)) ** (1 / a) - 0.5


def _soft_quantize(values: torch.Tensor, uniform: torch.Tensor | None, progress: float) -> torch.Tensor:
    """C3's proxy: with ``uniform`` noise (in [-1/2, 1/2]) at ``progress`` of the noisy steps, the
    conditional mean of the soft-rounded values plus Kumaraswamy noise (mode 1/2, shifted to 0);
    without, rounding whose gradient is the soft-round's at :data:`SOFT_STE`: zero but within
    about 10^-3 of a bin's edge, where it reaches some 5000 (C3 clips the gradient's norm; here
    Adam's per-latent scaling bounds the step those few latents take)."""
    if uniform is None:
        soft = soft_round(values, SOFT_STE)
        return soft + (torch.round(values) - soft).detach()
    t, a = proxy_schedule(progress)
    return soft_round_mean(soft_round(values, t) + kumaraswamy_noise(uniform, a), t)


class _SoftNoise(torch.autograd.Function):
    """soft_round_mean(soft_round(x, t) + noise, t) and its derivative in one pass of in-place
    operations ("soft-fast"; autograd's graph of the two formulas costs 3.5x as much, the proxy
    then being most of what a step adds to uniform noise). With th = tanh((x - m)/t) and
    s = 2 tanh(1/(2t)) (y - m') the arguments of the tanh and the atanh, the derivative is
    (1 - th^2) / (1 - s^2)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, noise: torch.Tensor, t: float) -> torch.Tensor:
        c2 = 2 * math.tanh(0.5 / t)
        m = torch.floor(x).add_(0.5)
        th = torch.sub(x, m).div_(t).tanh_()
        y = torch.div(th, c2).add_(m).add_(noise).sub_(0.5)  # soft_round(x) + noise - 1/2
        m = torch.floor(y, out=m).add_(0.5)
        s = y.sub_(m).mul_(c2)
        out = torch.atanh(s).mul_(t).add_(m).add_(0.5)
        ctx.save_for_backward(th.square_().neg_().add_(1).div_(s.square_().neg_().add_(1)))
        return out

    @staticmethod
    @once_differentiable  # its derivative's own derivative is not computed: no double backward
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (slope,) = ctx.saved_tensors
        return grad * slope, None, None


class _SoftRounded(torch.autograd.Function):
    """Rounding whose gradient is a soft-round's at :data:`SOFT_STE`, in one pass ("soft-fast")."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        m = torch.floor(x).add_(0.5)
        th = torch.sub(x, m).div_(SOFT_STE).tanh_()
        ctx.save_for_backward(th.square_().neg_().add_(1).mul_(1 / (2 * SOFT_STE * math.tanh(0.5 / SOFT_STE))))
        return torch.round(x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (slope,) = ctx.saved_tensors
        return grad * slope


class PixelTaps:
    """The interpolation taps of every pixel of the training image in every level, as flat
    positions in the pyramid and weights: the decoder's own row and column taps
    (decoder.latent.taps, the convention of grid_sample), combined for a batch of pixels.

    Laid out taps first, (taps^2, n, levels, channels), so that every elementwise operation of
    the step runs over contiguous memory: broadcasting over the small tap axes last cost more
    than the synthesis (profiled)."""

    def __init__(self, pyramid: Pyramid, height: int, width: int, bicubic: bool) -> None:
        xs, ys = coords.axis_np(width), coords.axis_np(height)
        rows = [taps(ys, h, bicubic) for _, h, _ in pyramid.shapes]
        cols = [taps(xs, w, bicubic) for _, _, w in pyramid.shapes]
        # (H, taps, levels) and (W, taps, levels): a batch's rows are one index_select. A row tap's
        # position holds its level's offset in the flat vector plus the row times the level's width.
        stack = lambda per_level: torch.from_numpy(np.ascontiguousarray(np.stack(per_level).transpose(2, 1, 0)))  # noqa: E731
        self.row_at = stack(
            [[o + i * w for i, _ in r] for r, o, (_, _, w) in zip(rows, pyramid.offsets, pyramid.shapes)]
        )
        self.row_w = stack([[wt for _, wt in r] for r in rows])
        self.col_at = stack([[i for i, _ in c] for c in cols])
        self.col_w = stack([[wt for _, wt in c] for c in cols])
        # (levels, channels): where each channel's plane starts within its level
        self.planes = torch.tensor([[c * h * w for c in range(ch)] for ch, h, w in pyramid.shapes])
        self.width = width

    def to(self, device: torch.device) -> PixelTaps:
        """The tables moved to ``device`` (in place; made on the CPU, the same on every device)."""
        for name in ("row_at", "row_w", "col_at", "col_w", "planes"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def at(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat positions (taps^2, n, levels, channels) and weights (taps^2, n, levels, 1) of
        the taps of ``pixels`` (flat row-major indices of the image)."""
        i, j = pixels // self.width, pixels % self.width
        r_at, r_w = self.row_at.index_select(0, i), self.row_w.index_select(0, i)  # (n, T, L)
        c_at, c_w = self.col_at.index_select(0, j), self.col_w.index_select(0, j)
        taps = range(r_at.shape[1])
        index = torch.stack([r_at[:, a] + c_at[:, b] for a in taps for b in taps])[..., None]
        weight = torch.stack([r_w[:, a] * c_w[:, b] for a in taps for b in taps])[..., None]
        if self.planes.shape[1] > 1:
            index = index + self.planes
        return index, weight


class Step:
    """What one training step reads from the latents, quantized as the decoder will see them:
    only the positions a step gathers get noise (from a table of uniform noise read at a random
    offset each step, so a latent read twice in a step sees one value; C3's proxy reshapes it),
    or get rounded; nothing of the size of the pyramid is computed but the optimizer's update.

    It runs on the device of ``model``'s latents. Every random draw (noise table, offsets, the
    latents rated) and every table is made on the CPU from the CPU ``generator`` and then moved,
    so a step reads the same positions and noise on any device."""

    def __init__(self, model: LatentImage, generator: torch.Generator) -> None:
        self.model, self.gen = model, generator
        self.device = device = model.flat.device
        self.taps = PixelTaps(model.pyramid, *model.size, model.cfg.interpolation == "bicubic").to(device)
        # uniform noise in [-1/2, 1/2], the table twice over so that a window at any offset is one slice
        noise = torch.rand(model.pyramid.total, generator=generator) - 0.5
        self.noise = torch.cat([noise, noise]).to(device)
        self._staged: tuple[float, torch.Tensor] | None = None  # "soft-fast": (a, the table transformed)
        self.errors: torch.Tensor | None = None  # the last batch's squared error per pixel (for a sampler)
        if model.arm is not None:  # every latent's context positions, masks and group flags, once
            near, ok, flags = model.pyramid.contexts(*model.pyramid.sample(0, None)[:2], model.scheme)
            self.near, self.near_ok = near.to(torch.int32).to(device), ok.to(torch.float32).to(device)
            self.flags = flags.to(device)

    def read(self, index: torch.Tensor, done: float) -> torch.Tensor:
        """The latents at flat positions ``index`` as the decoder will see them at ``done`` of
        training (noise read at one random offset of the table for the whole step)."""
        cfg, noise = self.model.cfg, None
        progress = done / cfg.noise_fraction if done < cfg.noise_fraction else 1.0
        if done < cfg.noise_fraction:
            total = self.model.pyramid.total
            offset = int(torch.randint(total, (1,), generator=self.gen))
            noise = self.table(progress)[offset : offset + total].index_select(0, index)
        values = self.model.flat.index_select(0, index)
        if cfg.quantizer == "soft":
            return _soft_quantize(values, noise, progress)
        if cfg.quantizer == "soft-fast":
            if noise is None:
                return _SoftRounded.apply(values)
            return _SoftNoise.apply(values, noise, proxy_schedule(progress)[0])
        return _quantize(values, noise)

    def table(self, progress: float) -> torch.Tensor:
        """The noise table at ``progress`` of the noisy steps: uniform, or for "soft-fast" its
        Kumaraswamy transform at the stage's a (made when a stage begins)."""
        if self.model.cfg.quantizer != "soft-fast":
            return self.noise
        a = stage_a(progress)
        if self._staged is None or self._staged[0] != a:
            self._staged = (a, kumaraswamy_noise(self.noise, a))
        return self._staged[1]

    def loss(
        self,
        xy: torch.Tensor,
        colours: torch.Tensor,
        pixels: torch.Tensor,
        done: float,
        pixel_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(D + lambda R, D) of a batch of ``pixels``, D the MSE of [0, 1] colours (each pixel's
        squared error times its ``pixel_weights``, an importance sampler's, when given; then the
        batch's per-pixel squared errors, mean over colours, detached, are left in ``self.errors``
        for the sampler)."""
        model, cfg, pyr = self.model, self.model.cfg, self.model.pyramid
        tap_at, tap_w = self.taps.at(pixels)
        parts = [tap_at.reshape(-1)]
        if model.arm is not None:
            at, levels, weights = (t.to(self.device) for t in pyr.sample(cfg.rate_sample, self.gen))
            near_ok, flags = self.near_ok.index_select(0, at), self.flags.index_select(0, at)
            parts += [at, self.near.index_select(0, at).reshape(-1).long()]
        else:  # one Laplace per level rates every latent
            parts.append(torch.arange(pyr.total, device=self.device))
        # split, not sliced: a slice's backward zero-fills the whole of values for each part
        tapped, rest = self.read(torch.cat(parts), done).split([tap_at.numel(), sum(p.numel() for p in parts[1:])])
        feats = (tapped.view(tap_at.shape) * tap_w).sum(0).flatten(1)  # (n, levels * channels)
        fourier = fourier_features(xy.index_select(0, pixels), cfg.pe_levels)[:, 2:]
        pred = model.synthesis(torch.cat([feats, fourier], dim=1))
        d2 = (pred - colours.index_select(0, pixels)) ** 2
        if pixel_weights is None:  # the plain mean, as before the samplers: the same bytes
            self.errors = None
            mse = torch.mean(d2) / 4.0  # on [0, 1] colours
        else:
            sq = d2.mean(1)
            self.errors = sq.detach()
            mse = (sq * pixel_weights).mean() / 4.0
        if model.arm is not None:
            k = at.shape[0]
            own, near = rest.split([k, rest.numel() - k])
            bits = (model.arm.bits(own, near.view(k, -1) * near_ok, flags, levels) * weights).sum()
        else:
            bits = sum(_LaplaceBits.apply(y) for y in rest.split(pyr.sizes))  # the level's mean |y|: any shape
        if cfg.network_rate:
            bits = bits + cfg.network_rate * model.network_bits()
        return mse + cfg.lam * bits / (model.size[0] * model.size[1]), mse


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


def adam_step(
    opt: torch.optim.Optimizer,
    finest: torch.Tensor,
    factor: float,
    second: torch.Tensor | None = None,
    second_factor: float = 1.0,
) -> None:
    """``opt.step()`` with the update of ``finest`` (a view of a parameter: the finest grid's
    latents) scaled by ``factor``, and that of ``second`` (the next grid's) by ``second_factor``:
    those levels' own learning rates under the same Adam state (config.LatentConfig.lr_finest,
    lr_second). At 1, the plain step, untouched."""
    scaled = [(v, f) for v, f in ((finest, factor), (second, second_factor)) if v is not None and f != 1.0]
    if not scaled:
        opt.step()
        return
    before = [v.clone() for v, _ in scaled]
    opt.step()
    for (v, f), b in zip(scaled, before):
        v.lerp_(b, 1.0 - f)


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


def fit(
    arr: np.ndarray,
    cfg: LatentConfig,
    on_step: Callable[[int, int, float], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    device: str | torch.device | None = None,
    on_file: Callable[[str, bytes, float], None] | None = None,
) -> Fitted:
    """Fit, quantize and pack one (H, W, C) uint8 image (then, with ``cfg.rdo_levels``, round its
    latents by the file's D + lambda R: :mod:`latent_rdo`; with ``cfg.tune_steps``, tune its networks
    on those integers and round again: :mod:`latent_tune`). ``on_stage`` hears "code", "round" and
    "tune" as those begin (no step counts them); ``on_file`` gets each stage's file as it ends
    (stage, bytes, mean squared error in grey levels): "code", "round", "tune" (before the choice
    between it and the rounded file; the rounded file again where the tuned one could not be
    packed) and "round again", so a probe can say which stage moved what (the file written is one
    of them: the rounded one, or the tuned one rounded again).

    The training steps run on ``device`` (default the CPU; "cuda" for a GPU), from the same
    draws on any device (:class:`Step`; with ``cfg.sampler="importance"`` the pixels after the
    first batch follow the device's errors); coding, rounding and tuning run on the CPU, where the
    NumPy decoder measures the file. On the CPU the file is the same bytes as before the option."""
    t0 = time.process_time()
    torch.manual_seed(cfg.seed)
    dev = torch.device(device or "cpu")
    h, w, c = arr.shape
    model = LatentImage(h, w, cfg, c).to(dev)  # made (and seeded) on the CPU, then moved
    xy = coords.grid(h, w).to(dev)
    colours = torch.from_numpy(to_unit(arr).reshape(-1, c)).to(dev)
    latent_params = [model.flat]
    synthesis = [p for n, p in model.named_parameters() if n.startswith("linears")]
    groups = [{"params": latent_params, "lr": cfg.lr_latent}, {"params": synthesis, "lr": cfg.lr_synthesis}]
    if model.arm is not None:
        groups.append({"params": list(model.arm.parameters()), "lr": cfg.lr_context})
    opt = torch.optim.Adam(groups, fused=True)  # one pass over each tensor (the latents are most of them)
    base = [g["lr"] for g in groups]
    gen = torch.Generator().manual_seed(cfg.seed)
    train = Step(model, gen)
    n = h * w
    # (drawn with a sampler too, unused: the committed importance probes' draws start after it)
    order, at, step = torch.randperm(n, generator=gen).to(dev), 0, 0
    sampler = sampling.make(cfg.sampler, n, cfg.batch, cfg.sampler_share) if cfg.sampler != "uniform" else None
    sizes = model.pyramid.sizes
    finest = model.flat.detach()[: sizes[0]]
    second = model.flat.detach()[sizes[0] : sizes[0] + sizes[1]] if len(sizes) > 1 else None
    while step < cfg.steps:
        # Progress through the schedule: by steps, or by CPU time when a budget is set.
        done = step / cfg.steps
        if cfg.seconds is not None:
            done = max(done, (time.process_time() - t0) / cfg.seconds)
        if done >= 1.0:
            break
        weights, drawn = None, None
        if sampler is not None:
            # drawn on the CPU from the one generator; after the first draw they follow the errors,
            # which are the device's floats, so a GPU's fit draws other pixels than the CPU's
            drawn = sampler.draw(gen)
            weights = sampler.weights()
            assert weights is not None  # an importance sampler weights every draw
            idx, weights = drawn.to(dev), weights.to(dev)
        else:
            if at + cfg.batch > n:
                order, at = torch.randperm(n, generator=gen).to(dev), 0
            idx = order[at : at + cfg.batch]
            at += cfg.batch
        scale = 0.5 * (1 + math.cos(math.pi * done))
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * (0.01 + 0.99 * scale)
        loss, mse = train.loss(xy, colours, idx, done, weights)
        if sampler is not None:
            sampler.observe(drawn, train.errors)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        adam_step(opt, finest, cfg.lr_finest, second, cfg.lr_second)
        step += 1
        if on_step is not None and (step % 100 == 0 or step == cfg.steps):  # (done, of, batch PSNR dB)
            on_step(step, cfg.steps, -10 * math.log10(max(float(mse.detach()), 1e-12)))
    model.to("cpu")  # a no-op on the CPU
    if on_stage is not None:
        on_stage("code")
    data, err = pack(model, cfg, arr)
    if on_file is not None:
        on_file("code", data, err)
    if cfg.rdo_levels:
        if on_stage is not None:
            on_stage("round")
        data, err = latent_rdo.refine(data, arr, cfg.lam, cfg.rdo_levels, torch.get_num_threads())
        if on_file is not None:
            on_file("round", data, err)
    if cfg.tune_steps:
        if on_stage is not None:
            on_stage("tune")
        latent_tune.hold(model, data)
        latent_tune.train(model, arr, cfg.tune_steps, cfg.seed)
        try:
            tuned, tuned_err = pack(model, cfg, arr)
        except FormatError:  # the tuned context network put a latent's residual past what the stream holds
            tuned, tuned_err = data, err
        if on_file is not None:
            on_file("tune", tuned, tuned_err)
        if latent_rdo.file_cost(tuned, tuned_err, cfg.lam, n) < latent_rdo.file_cost(data, err, cfg.lam, n):
            data, err = tuned, tuned_err
            if cfg.rdo_levels:
                if on_stage is not None:
                    on_stage("round")
                data, err = latent_rdo.refine(data, arr, cfg.lam, cfg.rdo_levels, torch.get_num_threads())
                if on_file is not None:
                    on_file("round again", data, err)
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


# --- the file: format version 8 or 9 (inrcodec/format/latent.py) ------------------------------------


def header(cfg: LatentConfig, height: int, width: int, channels: int) -> LatentHeader:
    """The version 8 (four passes: 9) header of an image fitted with ``cfg`` (its init, if the fit started from one)."""
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
        context=CONTEXTS.index(cfg.context),
        init=latent_init.INITS[name].id if (name := latent_init.used(cfg, channels)) else 0,
        compact=True,
    )


def _synthesis_tensors(model: LatentImage) -> list[torch.Tensor]:
    return model.coded()[: 2 * len(model.linears)]


SYNTHESIS_BITS = range(6, 11)  # the bit depths pack tries for the synthesis


def quantized_synthesis(tensors: list[torch.Tensor], bits: int) -> tuple[list[float], list[np.ndarray]]:
    """Each synthesis tensor's step (float32: 2 max|t| / (2^bits - 1)) and its integers, as the
    file stores them."""
    steps, ints = [], []
    for t in tensors:
        top = float(t.abs().max())
        step = np.float32(2 * top / (2**bits - 1) if top > 0 else 1.0)
        steps.append(float(step))
        ints.append(np.round(t.detach().numpy() / step).astype(np.int64))
    return steps, ints


def smallest(f: LatentFile) -> bytes:
    """The file with the networks as residuals from the init the fit started from, or as absolute
    integers (init 0), whichever is smaller: the same values either way, so the same pixels. The
    two differ only in the networks' payloads, so only those are coded twice (not the latents)."""
    if f.header.init:
        plain = replace(f, header=replace(f.header, init=0))
        if _network_bytes(plain) <= _network_bytes(f):
            f = plain
    return write(f)


def _network_bytes(f: LatentFile) -> int:
    return len(synthesis_payload(f)) + (len(context_block(f)) if f.header.context else 0)


def pack(model: LatentImage, cfg: LatentConfig, arr: np.ndarray) -> tuple[bytes, float]:
    """The file and the MSE of its decode (by the NumPy decoder, the reference). The latents are
    rounded; the context network (if any) takes the precision 2^-4..2^-8 that codes it and the
    latents in the fewest bytes; each synthesis tensor is quantized to the bit depth (6..10) that
    gives the lowest D + lambda * R. A fit started from a shipped init codes its networks as
    residuals from it where that is smaller (:func:`smallest`)."""
    h, w, c = arr.shape
    head = header(cfg, h, w, c)
    with torch.no_grad():
        lat = [y[0].numpy().astype(np.int64) for y in model.rounded()]
        context: dict = {}
        if model.arm is not None:
            best = None
            for bits in range(4, FRAC + 1):
                arm = model.arm.integers(bits)
                trial = LatentFile(head, lat, [], [], arm, cfg.context_hidden, bits)
                block = len(context_block(trial))
                if head.init:  # the block as absolute integers, where that is smaller
                    block = min(block, len(context_block(replace(trial, header=replace(head, init=0)))))
                size = block + len(encode_latents(lat, arm, head.scheme))
                if best is None or size < best[0]:
                    best = (size, arm, bits)
            context = {"context": best[1], "context_width": cfg.context_hidden, "context_bits": best[2]}
        target = arr.astype(np.float64)
        best = None
        for bits in SYNTHESIS_BITS:
            steps, tensors = quantized_synthesis(_synthesis_tensors(model), bits)
            f = LatentFile(head, lat, steps, tensors, **context)
            data = smallest(f)
            err = float(np.mean((decode_latent(f, w, h).astype(np.float64) - target) ** 2))
            cost = latent_rdo.file_cost(data, err, cfg.lam, h * w)
            if best is None or cost < best[0]:
                best = (cost, data, err)
    return best[1], best[2]
