"""The checkerboard context model's training side (issue 15, item 3): the float twin of
:mod:`inrcodec.format.checkerboard`'s integer network, and the rate it gives the latents.

The network learns with the latents. Its ``mu`` and ``u`` are rounded straight through to the
coder's resolution and the rate is the Laplace mass of each latent's bin, so training sees the
coder's own family (a probability at a noisy point would rate the noisy latents of early training
wrongly); its weights are rounded only when the file is written, and the bytes are then measured.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from inrcodec.format.checkerboard import FEATURES, FRAC, MU_STEPS, SCALES
from inrcodec.format.entropy import PRECISION


def _features_torch(y: torch.Tensor, parent: torch.Tensor | None, at: torch.Tensor) -> torch.Tensor:
    """(n, 14) contexts of the latents at flat positions ``at`` of one level ``y`` (1, C, h, w), as
    the decoder will see them: an anchor's neighbours are hidden from it. Two gathers from padded
    copies (one index matrix each), whose backward is two scatters."""
    _, c, h, w = y.shape
    ch, rest = at // (h * w), at % (h * w)
    i, j = rest // w, rest % w
    anchor = ((i + j) % 2 == 0).to(y.dtype)
    if parent is None:
        near = y.new_zeros(at.shape[0], 9)
    else:
        hp, wp = parent.shape[-2:]
        centre = ch * ((hp + 2) * (wp + 2)) + (i // 2 + 1) * (wp + 2) + (j // 2 + 1)
        offsets = torch.tensor([di * (wp + 2) + dj for di in (-1, 0, 1) for dj in (-1, 0, 1)])
        near = F.pad(parent[0], (1, 1, 1, 1)).reshape(-1)[centre[:, None] + offsets]
    centre = ch * ((h + 2) * (w + 2)) + (i + 1) * (w + 2) + (j + 1)
    offsets = torch.tensor([-(w + 2), w + 2, -1, 1])
    cross = F.pad(y[0], (1, 1, 1, 1)).reshape(-1)[centre[:, None] + offsets] * (1 - anchor)[:, None]
    return torch.cat([near, cross, anchor[:, None]], dim=1)


class ContextModel(torch.nn.Module):
    """The float network trained with the latents; :meth:`integers` is what the stream stores."""

    def __init__(self, levels: int, hidden: int) -> None:
        super().__init__()
        self.l1 = torch.nn.Linear(FEATURES, hidden)
        self.l2 = torch.nn.Linear(hidden, hidden)
        self.l3 = torch.nn.Linear(hidden, 2)
        self.offsets = torch.nn.Parameter(torch.full((levels,), 26.0 / 6))  # u = 26: b = 1
        with torch.no_grad():
            self.l3.weight.mul_(0.1)
            self.l3.bias.zero_()

    def params(self, feats: torch.Tensor, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, u) of each context row, ``levels`` its level, at the coder's resolution."""
        out = self.l3(torch.relu(self.l2(torch.relu(self.l1(feats)))))
        mu = out[:, 0]
        u = 6 * (out[:, 1] + self.offsets[levels])  # one unit of the output: an octave of b
        # The coder's resolution, straight through: mu to a sixteenth, u to an integer.
        return mu + (torch.round(mu * MU_STEPS) / MU_STEPS - mu).detach(), u + (torch.round(u) - u).detach()

    def bits(self, lat: list[torch.Tensor], sample: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bits of every latent of the pyramid (finest first in ``lat``) under the model; with
        ``sample`` > 0, an unbiased estimate from about that many latents drawn at random (in
        proportion to each level's size), which costs a fraction of the whole sum. All levels
        go through the network in one call (per-level calls cost more in overhead than in work)."""
        count = sum(y.numel() for y in lat)
        feats, values, levels, weights = [], [], [], []
        for level, y in enumerate(lat):
            parent = lat[level + 1] if level + 1 < len(lat) else None
            n = y.numel()
            if 0 < sample < count:
                k = max(1, round(sample * n / count))
                at = torch.randint(n, (k,), generator=generator)
            else:
                k, at = n, torch.arange(n)
            feats.append(_features_torch(y, parent, at))
            values.append(y.reshape(-1)[at])
            levels.append(torch.full((k,), level))
            weights.append(torch.full((k,), n / k))
        mu, u = self.params(torch.cat(feats), torch.cat(levels))
        return (laplace_bits(torch.cat(values), mu, u) * torch.cat(weights)).sum()

    def integers(self, bits: int = FRAC) -> list[np.ndarray]:
        """The network rounded to multiples of 2^-bits (``bits`` <= 8), as int64 arrays in
        :func:`arm_shapes` order, in units of 1/256 (what :func:`int_params` takes)."""
        ts = [self.l1.weight, self.l1.bias, self.l2.weight, self.l2.bias, self.l3.weight, self.l3.bias, self.offsets]
        return [np.round(t.detach().double().numpy() * (1 << bits)).astype(np.int64) << (FRAC - bits) for t in ts]


def laplace_bits(y: torch.Tensor, mu: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """-log2 P(y), P the mass of [y - 1/2, y + 1/2] under a Laplace of centre ``mu`` and scale
    b = 0.05 * 2^(u/6): the coder's family, and smooth in y, so it also rates the noisy latents
    of early training (a probability evaluated at a noisy point would not). Each branch is fed
    clamped arguments so the branch not taken stays finite (no NaN through ``where``)."""
    inv = 1.0 / (0.05 * torch.exp2(u.clamp(0, SCALES - 1) / 6))
    a = y - mu
    near = a.clamp(-0.5, 0.5)
    centre = 1 - 0.5 * (torch.exp((near - 0.5) * inv) + torch.exp((-near - 0.5) * inv))
    centre_bits = -torch.log2(centre.clamp_min(2.0**-PRECISION))
    tail_nats = math.log(2.0) + (a.abs().clamp_min(0.5) - 0.5) * inv - torch.log1p(-torch.exp(-inv))
    return torch.where(a.abs() < 0.5, centre_bits, tail_nats / math.log(2.0))
