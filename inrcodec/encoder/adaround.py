"""Stage 4's learned rounding: AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for
Post-Training Quantization"), as Strümpler et al. 2022 use it on their SIRENs.

Rounding each weight to its nearest level is optimal per weight, not for the network: the errors
add up in the output. AdaRound learns, for every scalar-coded weight, whether it rounds down or up.
A continuous variable V per weight gives a soft choice h(V) in [0, 1] (a rectified sigmoid); the
network runs on ``floor + h(V)`` levels, and V is trained on the image's own error plus a term that
pushes each h(V) to 0 or 1 (its exponent annealed from 20 to 2, so the choice hardens gradually).
After quantization-aware fine-tuning, which has trained the weights for nearest rounding,
the search starts by default from the nearest levels instead of the unrounded weights (:func:`start`).
The result is a set of weights lying exactly on the quantizer's grid, which the coder then stores
as they are: the file format does not change, only which integers it holds.

Unlike the paper, which matches each layer's outputs on calibration data, the target here is the
image itself, so V is trained end to end on the fit's loss, on random pixel batches drawn from a
seeded generator of its own (same seed, same file).
"""

from __future__ import annotations

import math

import torch

from inrcodec.config import EncodeConfig
from inrcodec.encoder.fit import State, Target, cosine_lr, mse_to_psnr
from inrcodec.encoder.mask import Mask
from inrcodec.encoder.progress import StepProgress
from inrcodec.siren import Siren

ADAROUND_SEED_OFFSET = 1999  # its pixel batches: a stream of their own (QAT's is 999)
ZETA, GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch, the paper's values
WARMUP = 0.2  # fraction of the steps trained on the image's error alone, before the rounding term
BETA_START, BETA_END = 20.0, 2.0  # the rounding term's exponent, annealed over the rest
# The nearest start: each V at +-1 towards the nearest level (h 0.78 or 0.22). After fine-tuning
# the paper's start undoes what the fine-tuning did (the `quantization` ablation, docs/benchmark.md).
NEAREST_V = 1.0


def start(cfg: EncodeConfig) -> str:
    """Where the rounding variables start: ``adaround_start``, with ``auto`` resolved (nearest
    after fine-tuning, which trained the weights for nearest rounding; else unrounded)."""
    if cfg.coder.adaround_start != "auto":
        return cfg.coder.adaround_start
    return "nearest" if cfg.coder.qat_steps > 0 else "unrounded"


def soft(v: torch.Tensor) -> torch.Tensor:
    """h(V): the rectified sigmoid, exactly 0 or 1 beyond a margin, so choices can settle."""
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def initial(rest: torch.Tensor) -> torch.Tensor:
    """V with h(V) equal to ``rest`` (the fractional part): training starts at the unrounded weights."""
    p = ((rest - GAMMA) / (ZETA - GAMMA)).clamp(1e-4, 1 - 1e-4)
    return torch.log(p / (1 - p))


def beta(step: int, steps: int) -> float | None:
    """The rounding term's exponent at ``step``, or None during the warm-up (no rounding term)."""
    warm = int(WARMUP * steps)
    if step < warm:
        return None
    t = (step - warm) / max(steps - warm, 1)
    return BETA_END + 0.5 * (BETA_START - BETA_END) * (1 + math.cos(math.pi * t))


def rounding_term(h: torch.Tensor, b: float) -> torch.Tensor:
    """Per weight 1 - |2h - 1|^b: zero at h = 0 or 1, largest at h = 1/2."""
    return 1 - (2 * h - 1).abs().pow(b)


def learn(
    net: Siren,
    target: Target,
    cfg: EncodeConfig,
    state: State,
    mask: Mask,
    steps: list[float],
    depths: list[int],
    anchor: State | None = None,
    progress: StepProgress | None = None,
) -> list[torch.Tensor]:
    """The weights of ``state`` rounded by AdaRound onto each layer's grid (``steps``, clipped to
    ``depths`` bits as the coder clips), as residuals from ``anchor`` where there is one; pruned
    weights stay zero. ``cfg.coder.adaround_steps`` steps of Adam at ``adaround_lr`` on V, with the
    rounding term weighted by ``adaround_reg``; the biases are those of ``state``, not trained
    (unquantized: at the coder's 12 bits they differ by less than the weights' rounding)."""
    weights, biases = [w.detach() for w in state[0]], [b.detach() for b in state[1]]
    device = weights[0].device
    keep = [k.to(device, weights[0].dtype) for k in mask.keep]
    origin = [torch.zeros_like(w) for w in weights] if anchor is None else [a * k for a, k in zip(anchor[0], keep)]
    scaled = [(w - o) / s for w, o, s in zip(weights, origin, steps)]
    floors = [torch.floor(x) for x in scaled]
    tops = [float((1 << (d - 1)) - 1) for d in depths]
    if start(cfg) == "nearest":  # each h at 0.22 or 0.78, towards the nearest level
        vs = [(NEAREST_V * (2 * torch.round(x - f) - 1)).requires_grad_(True) for x, f in zip(scaled, floors)]
    else:  # the paper's: h(V) is the fraction, the soft network is the unrounded one
        vs = [initial(x - f).requires_grad_(True) for x, f in zip(scaled, floors)]
    kept = max(int(sum(k.sum().item() for k in keep)), 1)

    def on_grid(hs: list[torch.Tensor]) -> list[torch.Tensor]:
        levels = [torch.clamp(f + h, -t, t) for f, h, t in zip(floors, hs, tops)]
        return [(o + q * s) * k for o, q, s, k in zip(origin, levels, steps, keep)]

    coder, n = cfg.coder, cfg.coder.adaround_steps
    opt = torch.optim.Adam(vs, lr=coder.adaround_lr)
    gen = torch.Generator(device="cpu").manual_seed(cfg.fit.seed * 1_000_003 + ADAROUND_SEED_OFFSET)
    batch = min(cfg.fit.batch, target.n)
    for step in range(n):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, n, coder.adaround_lr, coder.adaround_lr * 0.1)
        idx = torch.randint(target.n, (batch,), generator=gen).to(device)
        hs = [soft(v) for v in vs]
        loss = torch.mean((net(target.coords[idx], on_grid(hs), biases) - target.colours[idx]) ** 2)
        b = beta(step, n)
        if b is not None:  # the term is scaled to the image's MSE (4e-3 at 30 dB on [-1, 1] colours)
            term = sum((rounding_term(h, b) * k).sum() for h, k in zip(hs, keep)) / kept
            loss = loss + coder.adaround_reg * loss.detach() * term
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None and (step % 25 == 24 or step == n - 1):
            progress(step + 1, n, mse_to_psnr(loss.item()))
    with torch.no_grad():
        return on_grid([(v >= 0).to(v.dtype) for v in vs])
