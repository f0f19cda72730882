"""Stage 1 (and every retraining): overfit the SIREN to one image.

Adam on mini-batches of random pixels with a cosine learning-rate schedule. A seeded generator
draws the batches, so a run on the same device repeats exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from inrcodec import coords
from inrcodec.config import FitConfig
from inrcodec.encoder import fused, sampling
from inrcodec.encoder.mask import Mask
from inrcodec.encoder.progress import StepProgress
from inrcodec.pixels import to_unit
from inrcodec.siren import Siren

State = tuple[list[torch.Tensor], list[torch.Tensor]]  # (weights, biases)


@dataclass
class Target:
    """An image as the trainer sees it: coordinates and colours in [-1, 1], on one device."""

    coords: torch.Tensor  # (N, 2)
    colours: torch.Tensor  # (N, C), in [-1, 1]
    _rows: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def rows(self, pe_levels: int) -> torch.Tensor | None:
        """The fused step's table of Fourier features and colours (fused.table), made once."""
        if pe_levels not in self._rows:
            self._rows[pe_levels] = fused.table(self.coords, self.colours, pe_levels)
        return self._rows[pe_levels]

    @property
    def n(self) -> int:
        return self.coords.shape[0]

    @staticmethod
    def of(arr: np.ndarray, device: torch.device | str = "cpu") -> Target:
        """An (H, W, C) uint8 image: every pixel centre and its colour."""
        h, w, c = arr.shape
        colours = torch.from_numpy(to_unit(arr).reshape(h * w, c)).to(device)
        return Target(coords.grid(h, w, device), colours)


def cosine_lr(step: int, steps: int, lr: float, lr_final: float) -> float:
    """The learning rate of ``step`` of ``steps``: cosine from ``lr`` down to ``lr_final``.

    Written out rather than torch's CosineAnnealingLR, which computes it recursively: its values
    differ from these in the last bits at 1979 of 2000 steps, which would change every file."""
    return lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * step / max(steps, 1)))


def mse_to_psnr(mse_pm1: float) -> float:
    """PSNR in dB of an MSE measured on the [-1, 1] scale (peak-to-peak 2)."""
    return 10.0 * math.log10(4.0 / max(mse_pm1, 1e-12))


def kernel_of(cfg: FitConfig, device: torch.device | str) -> str:
    """The kernels a fit with ``cfg`` runs on ``device``: "native" or "torch". On a GPU torch's
    are the fast ones; ``"auto"`` takes torch's where the native ones cannot run (no C compiler,
    no AVX2), so the encode's stats record which ran (the bytes differ in the last bits). Where
    a torch exports no ``sgemm`` "native" runs the two passes, not the whole step; fits that do
    not go through :func:`train` (RTL's joint region fit, RigL) keep torch's autograd."""
    if not cfg.fused or cfg.kernel == "torch" or torch.device(device).type != "cpu":
        return "torch"
    if cfg.kernel == "auto":
        from inrcodec.encoder import native

        return "torch" if native.unavailable() else "native"
    return "native"


def train(
    net: Siren,
    target: Target,
    cfg: FitConfig,
    steps: int,
    mask: Mask | None = None,
    seed_offset: int = 0,
    progress: StepProgress | None = None,
    snapshot_at: int | None = None,
    region: torch.Tensor | None = None,
    weight_fn: Callable[[list[torch.Tensor]], list[torch.Tensor]] | None = None,
    full_batch: bool = False,
    anchor: State | None = None,
) -> State | None:
    """Train ``net`` in place for ``steps`` steps; pruned weights stay exactly zero.

    ``snapshot_at`` returns the (weights, biases) after that many steps (for ``early:N``
    rewinding); ``region`` restricts the sampled pixels to those indices; ``weight_fn``
    transforms the (masked) weights in the forward pass (quantization-aware fine-tuning);
    ``full_batch`` makes every step one pass over all pixels (of the region) instead of a
    random batch of ``cfg.batch`` (the lottery experiment's epochs); with an ``anchor`` (a
    prior's weights) and ``cfg.l1`` > 0 the loss adds ``cfg.l1`` times the mean |W - W_anchor|
    of the kept weights, which keeps the coded residuals small. ``cfg.fused`` computes each
    step's loss and gradients with encoder/fused.py (the same function, other float rounding)
    instead of ``Siren.forward`` and autograd; the batches, the seeds and everything else are
    the same.
    """
    device = target.coords.device
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed * 1_000_003 + seed_offset)
    # The fused step also takes torch's single-kernel Adam (0.3 ms a step less at widths 40-80).
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, **({"fused": True} if cfg.fused else {}))
    pool = target.n if region is None else region.numel()
    batch = min(cfg.batch, pool)
    snapshot = net.state() if snapshot_at == 0 else None
    if mask is not None:
        mask = mask.to(device)
        net.load(mask.apply([w.detach() for w in net.weights]), [b.detach() for b in net.biases])
    kernels = None
    if cfg.fused:
        workspace = fused.Workspace()
        rows = target.rows(net.arch.pe_levels)
        if kernel_of(cfg, device) == "native":
            from inrcodec.encoder import native

            kernels = native.load()
    # The native kernels run a dense network's plain step whole, in one call (fused.native_step).
    whole = kernels is not None and kernels.sgemm is not None and mask is None and weight_fn is None
    whole = whole and not (anchor is not None and cfg.l1 > 0) and len(net.weights) > 1
    # Full-batch epochs see every pixel once: there is nothing for a sampler to choose.
    sampler = sampling.make("uniform" if full_batch else cfg.sampler, pool, batch)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, cfg.lr, cfg.lr_final)
        drawn = torch.arange(pool) if full_batch else sampler.draw(gen)
        idx = drawn if region is None else region[drawn]
        idx = idx.to(device)
        weights = list(net.weights) if mask is None else mask.apply(list(net.weights))
        if weight_fn is not None:
            weights = weight_fn(weights)
        if cfg.fused:
            x, y = fused.gather(workspace, rows, target.coords, target.colours, net.arch.pe_levels, idx)
            w = sampler.weights()  # of this draw (None: a plain mean)
            w = None if w is None else w.to(device)
            if whole:  # the loss and the gradients (written into each .grad) in one call
                loss, per_pixel = fused.native_step(net, x, y, workspace, w, kernels)
            else:
                loss, per_pixel = fused.mse(net, x, y, workspace, weights, list(net.biases), w, kernels)
            sampler.observe(drawn, per_pixel)  # nothing for uniform draws
        else:
            squared = (net(target.coords[idx], weights) - target.colours[idx]) ** 2
            if sampler.wants_errors:
                per_pixel = squared.mean(dim=1)
                sampler.observe(drawn, per_pixel)
                w = sampler.weights()
                loss = per_pixel.mean() if w is None else (per_pixel * w.to(per_pixel.device)).mean()
            else:
                loss = torch.mean(squared)
        if anchor is not None and cfg.l1 > 0:
            kept = list(net.weights) if mask is None else mask.apply(list(net.weights))
            origin = anchor[0] if mask is None else mask.apply(anchor[0])
            n = sum(w.numel() for w in kept) if mask is None else mask.count()  # the kept weights
            loss = loss + cfg.l1 * sum((w - w0).abs().sum() for w, w0 in zip(kept, origin)) / n
        if not whole:
            opt.zero_grad(set_to_none=True)
            loss.backward()
        opt.step()
        if mask is not None:
            with torch.no_grad():
                for w, k in zip(net.weights, mask.keep):
                    w.mul_(k)
        if snapshot_at is not None and step + 1 == snapshot_at:
            snapshot = net.state()
        if progress is not None and (step % 25 == 24 or step == steps - 1):
            progress(step + 1, steps, mse_to_psnr(loss.item()))
    if whole:  # the step's .grad buffers would add into a later backward pass
        net.zero_grad(set_to_none=True)
    return snapshot


@torch.no_grad()
def evaluate(
    net: Siren,
    target: Target,
    weights: list[torch.Tensor] | None = None,
    biases: list[torch.Tensor] | None = None,
    pixels: int | None = None,
    chunk: int = 65536,
) -> float:
    """PSNR (dB) of the network's output clamped to [-1, 1], on all pixels or a fixed subset."""
    n = target.n
    if pixels is not None and pixels < n:
        # A fixed, evenly spread subset: the same pixels for every candidate compared.
        idx = torch.linspace(0, n - 1, pixels, device=target.coords.device).round().long()
    else:
        idx = None
    total, count = 0.0, 0
    coords = target.coords if idx is None else target.coords[idx]
    colours = target.colours if idx is None else target.colours[idx]
    for s in range(0, coords.shape[0], chunk):
        out = net(coords[s : s + chunk], weights, biases).clamp(-1, 1)
        # Quantize to 8 bits as the decoder's PNG would, so PSNR matches the decoded file.
        out = torch.round((out + 1) * 127.5) / 127.5 - 1
        total += float(torch.sum((out - colours[s : s + chunk]) ** 2))
        count += out.numel()
    return mse_to_psnr(total / count)
