"""RigL (Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020): a sparse
network trained sparse from the start, its connections moved during training.

The mask starts as a random choice of the target number of weights (globally, so each layer
gets about the target density). Training is :func:`fit.train`'s: Adam on the same batches (the
same seeded generator, or every pixel with ``full_batch``), the same cosine learning rate
(:func:`fit.cosine_lr`), pruned weights exactly zero, the prior's residual penalty with an
``anchor``. Every ``delta`` steps until ``end`` of the run, each layer drops the fraction
``alpha / 2 · (1 + cos(π t / T_end))`` of its active weights with the smallest magnitudes and
regrows as many of the weights that were inactive before the drop, those with the largest
|dL/dw| on that step's batch (the dense gradient, computed through the mask). Regrown weights
start at exactly zero and their Adam moments are reset; every layer keeps its count, so the
density never changes. (Not :func:`fit.train` itself: its optimizer and schedule restart on
every call, and RigL needs one optimizer and one schedule across mask updates.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inrcodec.config import FitConfig
from inrcodec.encoder.fit import State, Target, cosine_lr, mse_to_psnr
from inrcodec.encoder.mask import Mask
from inrcodec.encoder.progress import StepProgress
from inrcodec.siren import Siren


@dataclass(frozen=True)
class RigLConfig:
    """The schedule of mask updates (the paper's defaults: ΔT 100, α 0.3, T_end 75 %)."""

    delta: int = 100  # steps between mask updates (ΔT)
    alpha: float = 0.3  # initial drop fraction
    end: float = 0.75  # no updates after this fraction of the steps (T_end)


def drop_fraction(step: int, steps: int, cfg: RigLConfig) -> float:
    """The fraction of each layer's active weights moved at ``step``: α/2 (1 + cos(π t / T_end))."""
    t_end = cfg.end * steps
    if step >= t_end:
        return 0.0
    return cfg.alpha / 2 * (1 + math.cos(math.pi * step / t_end))


def update(
    weights: list[torch.Tensor], grads: list[torch.Tensor], mask: Mask, fraction: float
) -> tuple[Mask, list[torch.Tensor]]:
    """One RigL mask update: per layer, drop round(``fraction`` x active) of the active weights
    with the smallest |w| and regrow as many inactive ones (inactive before the drop) with the
    largest |grad| (ties: the earlier position). Returns the new mask and, per layer, the flags
    of the regrown weights."""
    keep, grown = [], []
    for w, g, k in zip(weights, grads, mask.keep):
        k = k.cpu()
        active, inactive = int(k.sum()), int((~k).sum())
        n = min(int(round(fraction * active)), active, inactive)
        flat_k = k.reshape(-1)
        new = flat_k.clone()
        born = torch.zeros_like(flat_k)
        if n > 0:
            mag = w.detach().abs().double().cpu().reshape(-1)
            drop = torch.argsort(torch.where(flat_k, mag, torch.full_like(mag, math.inf)), stable=True)[:n]
            gmag = g.detach().abs().double().cpu().reshape(-1)
            grow = torch.argsort(-torch.where(flat_k, torch.full_like(gmag, -math.inf), gmag), stable=True)[:n]
            new[drop] = False
            new[grow] = True
            born[grow] = True
        keep.append(new.reshape(k.shape).to(mask.keep[len(keep)].device))
        grown.append(born.reshape(k.shape))
    return Mask(tuple(keep)), grown


def random_mask(weights: list[torch.Tensor], count: int, generator: torch.Generator | None = None) -> Mask:
    """Exactly ``count`` weights, a uniformly random choice across all layers."""
    dense = Mask.dense([w.detach().cpu() for w in weights])
    return dense.keep_best([torch.rand(w.shape, generator=generator) for w in weights], count)


def train_rigl(
    net: Siren,
    target: Target,
    cfg: FitConfig,
    steps: int,
    density: float | None = None,
    count: int | None = None,
    rcfg: RigLConfig = RigLConfig(),
    mask: Mask | None = None,
    seed_offset: int = 0,
    full_batch: bool = False,
    progress: StepProgress | None = None,
    anchor: State | None = None,
) -> tuple[Mask, State]:
    """Train ``net`` in place from its current weights with RigL for ``steps`` steps, at
    ``density`` (or exactly ``count`` weights; or from ``mask``). Returns the final mask and the
    (weights, biases); the pruned weights are exactly zero."""
    device = target.coords.device
    if mask is None:
        total = sum(w.numel() for w in net.weights)
        if count is None:
            if density is None:
                raise ValueError("train_rigl needs a density, a count or a mask")
            count = int(round(density * total))
        gen_mask = torch.Generator(device="cpu").manual_seed(cfg.seed * 1_000_003 + seed_offset + 31)
        mask = random_mask(list(net.weights), count, gen_mask)
    mask = mask.to(device)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed * 1_000_003 + seed_offset)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    pool = target.n
    batch = min(cfg.batch, pool)
    net.load(mask.apply([w.detach() for w in net.weights]), [b.detach() for b in net.biases])
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, cfg.lr, cfg.lr_final)
        idx = torch.arange(pool) if full_batch else torch.randint(0, pool, (batch,), generator=gen)
        idx = idx.to(device)
        weights = mask.apply(list(net.weights))
        for w in weights:
            w.retain_grad()  # the dense gradient dL/dW, for regrowing
        loss = torch.mean((net(target.coords[idx], weights) - target.colours[idx]) ** 2)
        if anchor is not None and cfg.l1 > 0:
            origin = mask.apply([a.to(device) for a in anchor[0]])
            loss = loss + cfg.l1 * sum((w - w0).abs().sum() for w, w0 in zip(weights, origin)) / mask.count()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        fraction = drop_fraction(step, steps, rcfg) if step > 0 and step % rcfg.delta == 0 else 0.0
        with torch.no_grad():
            if fraction > 0:
                mask, grown = update(list(net.weights), [w.grad for w in weights], mask, fraction)
                mask = mask.to(device)
                for p, born in zip(net.weights, grown):
                    born = born.to(device)
                    p[born] = 0.0  # regrown connections start at zero, their moments reset
                    st = opt.state.get(p, {})
                    for key in ("exp_avg", "exp_avg_sq"):
                        if key in st:
                            st[key][born] = 0.0
            for w, k in zip(net.weights, mask.keep):
                w.mul_(k)
        if progress is not None and (step % 25 == 24 or step == steps - 1):
            progress(step + 1, steps, mse_to_psnr(loss.item()))
    return mask, net.state()
