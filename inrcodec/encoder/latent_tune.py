"""Fine-tuning of a packed latent-grid file's two networks on its own integer latents (issue 15):
encode side only.

Training ends with the latents rounded and, at the points that ask for it, moved by
:mod:`latent_rdo`; but the synthesis learned under noise, and the context network rated noisy
latents of a random sample each step. Here both networks train again with the latents held at the
file's integers: the synthesis on the pixels those integers give (each batch's latents sampled
as the decoder samples them), the context network on the bits of those integers, under the fit's
own loss (D + lambda R, the networks' estimated bits included where the point counts them). The
file is then packed again and kept only if its own D + lambda R (its bytes, its decoded pixels)
went down. The format does not change.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from inrcodec import coords
from inrcodec.format.latent import read
from inrcodec.pixels import to_unit

if TYPE_CHECKING:  # encoder.latent imports this module
    from inrcodec.encoder.latent import LatentImage

LR_FACTOR = 0.15  # of the fit's learning rates (lr_synthesis, lr_context), cosine to zero
BATCH = 16384  # pixels a step
RATE_SAMPLE = 32768  # latents rated a step (weighted per level: an unbiased estimate of all their bits)


def hold(model: LatentImage, data: bytes) -> None:
    """Set ``model``'s latents to the integers of the packed file ``data`` and freeze them."""
    f = read(data)
    with torch.no_grad():
        model.flat.copy_(torch.cat([torch.from_numpy(q.reshape(-1)) for q in f.latents]).to(model.flat.dtype))
    model.flat.requires_grad_(False)


def train(model: LatentImage, arr: np.ndarray, steps: int, seed: int) -> None:
    """``steps`` Adam steps of the synthesis and context networks of ``model`` (a
    :class:`encoder.latent.LatentImage` whose latents :func:`hold` has set) on the fit's loss."""
    cfg = model.cfg
    h, w, c = arr.shape
    n = h * w
    xy = coords.grid(h, w)
    colours = torch.from_numpy(to_unit(arr).reshape(-1, c))
    groups = [{"params": list(model.linears.parameters()), "lr": cfg.lr_synthesis * LR_FACTOR}]
    if model.arm is not None:
        groups.append({"params": list(model.arm.parameters()), "lr": cfg.lr_context * LR_FACTOR})
    base = [g["lr"] for g in groups]
    opt = torch.optim.Adam(groups)
    gen = torch.Generator().manual_seed(seed)
    lat = [y.detach() for y in model.latents]
    flat = model.flat.detach()
    if model.arm is not None:  # every latent's context values, once: they are the file's integers
        near, ok, flags = model.pyramid.contexts(*model.pyramid.sample(0, None)[:2], model.scheme)
        context_of = flat[near] * ok
    for step in range(steps):
        scale = 0.5 * (1 + math.cos(math.pi * step / steps))
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * scale
        idx = torch.randint(n, (min(BATCH, n),), generator=gen)
        pred = model(xy.index_select(0, idx), lat)
        loss = torch.mean((pred - colours.index_select(0, idx)) ** 2) / 4.0  # on [0, 1] colours
        bits = torch.zeros(())
        if model.arm is not None:
            at, levels, weights = model.pyramid.sample(RATE_SAMPLE, gen)
            own, context, flag = flat.index_select(0, at), context_of.index_select(0, at), flags.index_select(0, at)
            bits = (model.arm.bits(own, context, flag, levels) * weights).sum()
        if cfg.network_rate:
            bits = bits + cfg.network_rate * model.network_bits()
        loss = loss + cfg.lam * bits / n
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
