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

from inrcodec.format.checkerboard import CHECKERBOARD, FEATURES, FRAC, MU_STEPS, SCALES, Scheme
from inrcodec.format.entropy import PRECISION
from inrcodec.format.latent import CONTEXTS
from inrcodec.format.latent import SCHEMES as FORMAT_SCHEMES


class Pyramid:
    """Where each level of a latent pyramid (finest first, each (C, h, w)) sits in one flat
    vector, and the flat positions a latent's context reads: the training step gathers every
    latent it needs (interpolation taps, rated latents, their contexts) from that vector in one
    index, whose backward is one scatter. Padding whole levels to read a few thousand contexts
    cost more than the network's work (docs/performance.md)."""

    def __init__(self, shapes: list[tuple[int, int, int]]) -> None:
        self.shapes = shapes
        sizes = [c * h * w for c, h, w in shapes]
        self.sizes = sizes
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        self.total = sum(sizes)
        # Per level: offset, rows, columns; the parent's (the next level) or a 1x1 stand-in.
        n = len(shapes)
        parent = [shapes[i + 1] if i + 1 < n else (1, 1, 1) for i in range(n)]
        self._own = torch.tensor([[o, h, w] for o, (_, h, w) in zip(self.offsets, shapes)])
        self._parent = torch.tensor(
            [[self.offsets[i + 1] if i + 1 < n else 0, ph, pw, int(i + 1 < n)] for i, (_, ph, pw) in enumerate(parent)]
        )

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """The levels of ``flat`` as (1, C, h, w) views."""
        return [flat[o : o + n].view(1, *s) for o, n, s in zip(self.offsets, self.sizes, self.shapes)]

    def sample(self, sample: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(flat positions, levels, weights) of the latents a step rates: with ``sample`` > 0 about
        that many, drawn uniformly within each level in proportion to its size (weight: the level's
        size over its draws, so the weighted sum is an unbiased estimate of the whole rate);
        otherwise every latent once."""
        at, levels, weights = [], [], []
        for level, (o, n) in enumerate(zip(self.offsets, self.sizes)):
            if 0 < sample < self.total:
                k = max(1, round(sample * n / self.total))
                at.append(o + torch.randint(n, (k,), generator=generator))
            else:
                k = n
                at.append(torch.arange(o, o + n))
            levels.append(torch.full((k,), level))
            weights.append(torch.full((k,), n / k))
        return torch.cat(at), torch.cat(levels), torch.cat(weights)

    def contexts(
        self, at: torch.Tensor, levels: torch.Tensor, scheme: Scheme = CHECKERBOARD
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(n, 9 + window) flat positions of the parent 3x3 and the own-level window of the latents
        at flat positions ``at`` (of levels ``levels``), (n, 9 + window) 0/1 masks of those that
        exist and that the decoder will have decoded (in a group before the latent's), and the
        (n, groups - 1) group flags: with the latents' values, format.checkerboard.features."""
        off, h, w = self._own.index_select(0, levels).unbind(1)
        p_off, ph, pw, has = self._parent.index_select(0, levels).unbind(1)
        local = at - off
        ch, rest = local // (h * w), local % (h * w)
        i, j = rest // w, rest % w
        # each latent's group, from its row and column parities
        group_of = torch.zeros(2, 2, dtype=torch.long)
        for g, parities in enumerate(scheme.groups):
            for pi, pj in parities:
                group_of[pi, pj] = g
        group = group_of[i % 2, j % 2]
        d = torch.tensor([-1, 0, 1])
        # the parent's 3x3 around (i // 2, j // 2): (n, 3, 3), rows the first index
        pi, pj = (i // 2)[:, None] + d, (j // 2)[:, None] + d
        pi_ok = (pi >= 0) & (pi < ph[:, None]) & (has[:, None] == 1)
        pj_ok = (pj >= 0) & (pj < pw[:, None])
        pi = pi.clamp(min=0).minimum(ph[:, None] - 1)
        pj = pj.clamp(min=0).minimum(pw[:, None] - 1)
        near = (p_off + ch * ph * pw)[:, None, None] + (pi * pw[:, None])[:, :, None] + pj[:, None, :]
        near_ok = pi_ok[:, :, None] & pj_ok[:, None, :]
        # the window: those inside the grid and decoded before this latent's group
        di = torch.tensor([o[0] for o in scheme.window])
        dj = torch.tensor([o[1] for o in scheme.window])
        ci, cj = i[:, None] + di, j[:, None] + dj
        hh, ww = h[:, None], w[:, None]
        inside = (ci >= 0) & (ci < hh) & (cj >= 0) & (cj < ww)
        window_ok = inside & (group_of[ci % 2, cj % 2] < group[:, None])
        window = (off + ch * h * w)[:, None] + ci.clamp(min=0).minimum(hh - 1) * ww + cj.clamp(min=0).minimum(ww - 1)
        index = torch.cat([near.reshape(-1, 9), window], 1)
        mask = torch.cat([near_ok.reshape(-1, 9), window_ok], 1)
        flags = torch.stack([group == k for k in range(len(scheme.groups) - 1)], 1)
        return index, mask, flags


# LatentConfig.context -> its scheme: the format's map (context byte -> scheme) by the byte's name
SCHEMES = {CONTEXTS[byte]: scheme for byte, scheme in FORMAT_SCHEMES.items()}


class ContextModel(torch.nn.Module):
    """The float network trained with the latents; :meth:`integers` is what the stream stores."""

    def __init__(self, levels: int, hidden: int, features: int = FEATURES) -> None:
        super().__init__()
        self.l1 = torch.nn.Linear(features, hidden)  # its scheme's features (other counts: benchmarks.context_probe)
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

    def bits(self, values: torch.Tensor, near: torch.Tensor, flags: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """Bits of each latent of ``values`` under the model, given the values of its context
        (zero where :meth:`Pyramid.contexts` masks them), its group flags and its level."""
        mu, u = self.params(torch.cat([near, flags.to(near.dtype)], 1), levels)
        return laplace_bits(values, mu, u)

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
