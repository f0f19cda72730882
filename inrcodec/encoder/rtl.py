"""Routing the Lottery (Stefański, Presta & Byra 2026) for one image: one ticket per region.

All tickets are masks over one shared weight tensor (biases are shared and never pruned). A
pruning round:

1. adaptive ticket extraction: for each region in turn, rewind the shared weights, train them
   under that region's mask on that region's pixels only (``fit.train(region=...)``), prune that
   region's mask by magnitude (``Mask.prune``); then rewind;
2. joint retraining from the rewound weights: every step takes a balanced batch, batch / K pixels
   from each region; region k's pixels go through the network with mask k applied, so region k's
   loss has a gradient only on the weights mask k keeps. One Adam over the shared tensor.

The file (format v2) stores the shared weights once, on the union of the masks, then the K masks
and the regions; the decoder evaluates every pixel with its region's ticket.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from itertools import combinations

import numpy as np
import torch

from inrcodec.config import CoderConfig, EncodeConfig, FitConfig, prior_id
from inrcodec.encoder import regions as regionlib
from inrcodec.encoder.allocate import smallest_depth
from inrcodec.encoder.coding import QAT_SEED_OFFSET, Coded, WeightFn, code, fine_tuning, quantization_steps
from inrcodec.encoder.fit import Target, cosine_lr, evaluate, kernel_of, mse_to_psnr, train
from inrcodec.encoder.mask import Mask
from inrcodec.encoder.pipeline import Encoded
from inrcodec.encoder.progress import Plan, Progress, StepProgress
from inrcodec.encoder.prune import State, check_rewind, dense_fit, round_fraction, rounds_to
from inrcodec.encoder.session import Session
from inrcodec.format import container
from inrcodec.image import psnr
from inrcodec.siren import Siren


def union(masks: list[Mask]) -> Mask:
    """The weights at least one ticket keeps: what the file stores."""
    return masks[0].union(*masks[1:])


def mean_jaccard(masks: list[Mask]) -> dict:
    """Mean pairwise Jaccard similarity of the tickets: per layer, over all weights, and what two
    independent random masks of the same densities would score over all weights (da db / (da + db - da db))."""
    pairs = list(combinations(masks, 2))
    if not pairs:
        return {"per_layer": [1.0] * len(masks[0].keep), "all": 1.0, "chance": 1.0}
    per_layer = np.mean([a.jaccard(b) for a, b in pairs], axis=0)
    chance = []
    for a, b in pairs:
        da, db = a.density(), b.density()
        chance.append(da * db / (da + db - da * db) if da + db > 0 else 1.0)
    return {
        "per_layer": [round(float(v), 4) for v in per_layer],
        "all": round(float(np.mean([a.jaccard_all(b) for a, b in pairs])), 4),
        "chance": round(float(np.mean(chance)), 4),
    }


def region_loss(
    net: Siren, target: Target, mask: Mask, idx: torch.Tensor, weight_fn: WeightFn | None = None
) -> torch.Tensor:
    """MSE of the pixels ``idx`` through the ticket ``mask`` (gradient only where it keeps)."""
    weights = mask.apply(list(net.weights))
    if weight_fn is not None:
        weights = weight_fn(weights)
    return torch.mean((net(target.coords[idx], weights) - target.colours[idx]) ** 2)


def joint_train(
    net: Siren,
    target: Target,
    masks: list[Mask],
    region_idx: list[torch.Tensor],
    cfg: FitConfig,
    steps: int,
    seed_offset: int = 0,
    progress: StepProgress | None = None,
    weight_fn: WeightFn | None = None,
) -> None:
    """Train the shared weights of all tickets in place, batches balanced across regions.

    Same Adam and cosine schedule as fit.train; ``cfg.batch`` pixels a step, batch / K per region.
    Weights that no ticket keeps are zeroed and never change (their gradient is always zero).
    """
    device = target.coords.device
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed * 1_000_003 + seed_offset)
    masks = [m.to(device) for m in masks]
    keep_any = union(masks)
    net.load(keep_any.apply([w.detach() for w in net.weights]), [b.detach() for b in net.biases])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    per = max(1, cfg.batch // len(masks))
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, cfg.lr, cfg.lr_final)
        loss = 0.0
        for mask, idx in zip(masks, region_idx):
            pick = idx[torch.randint(0, idx.numel(), (min(per, idx.numel()),), generator=gen)].to(device)
            loss = loss + region_loss(net, target, mask, pick, weight_fn) / len(masks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None and (step % 25 == 24 or step == steps - 1):
            progress(step + 1, steps, mse_to_psnr(loss.item()))


def extract(
    net: Siren,
    target: Target,
    masks: list[Mask],
    region_idx: list[torch.Tensor],
    start: State,
    cfg: FitConfig,
    steps: int,
    fraction: float,
    round_: int,
    rule: str = "magnitude",
    generator: torch.Generator | None = None,
) -> list[Mask]:
    """Adaptive ticket extraction: each region's mask, trained from ``start`` on its own pixels,
    loses ``fraction`` of its survivors; ``net`` is left at ``start``."""
    out = []
    for k, (mask, idx) in enumerate(zip(masks, region_idx)):
        net.load(*start)
        train(net, target, cfg, steps, mask=mask, seed_offset=10_000 + 100 * round_ + k, region=idx)
        out.append(mask.prune(list(net.weights), fraction, rule, generator))
    net.load(*start)
    return out


def rtl_round(
    net: Siren,
    target: Target,
    masks: list[Mask],
    region_idx: list[torch.Tensor],
    rewind: State | None,
    cfg: EncodeConfig,
    fraction: float,
    round_: int,
    extract_steps: int,
    generator: torch.Generator | None = None,
    progress: StepProgress | None = None,
) -> list[Mask]:
    """One RTL pruning round (extraction, then joint retraining from ``rewind``); the new masks.

    ``rewind`` None (rewind mode ``none``) starts both phases from the current weights instead.
    """
    start = rewind if rewind is not None else net.state()
    masks = extract(
        net, target, masks, region_idx, start, cfg.fit, extract_steps, fraction, round_, cfg.prune.rule, generator
    )
    joint_train(net, target, masks, region_idx, cfg.fit, cfg.prune.steps, seed_offset=round_, progress=progress)
    return masks


def evaluate_regions(
    net: Siren,
    target: Target,
    masks: list[Mask],
    region_idx: list[torch.Tensor],
    weights: list[torch.Tensor] | None = None,
    biases: list[torch.Tensor] | None = None,
    pixels: int | None = None,
) -> float:
    """PSNR (dB, 8-bit rounded as the decoder's PNG) of all pixels, each through its ticket;
    ``pixels`` evaluates an evenly spread subset, spread over regions by their sizes."""
    ws = list(net.weights) if weights is None else weights
    total, n_all = 0.0, target.n
    for mask, idx in zip(masks, region_idx):
        idx = idx.to(target.coords.device)
        sub = Target(target.coords[idx], target.colours[idx])
        share = None if pixels is None else max(1, math.ceil(pixels * idx.numel() / n_all))
        p = evaluate(net, sub, mask.to(idx.device).apply(ws), biases, pixels=share)
        total += idx.numel() * 4.0 / 10 ** (p / 10)  # back to the MSE on [-1, 1]
    return mse_to_psnr(total / n_all)


def code_regions(
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    masks: list[Mask],
    header: container.Header,
    regions: container.Regions,
    coder: CoderConfig,
    bits: int,
    steps: list[float] | None = None,
) -> Coded:
    """The shared weights coded once on the union of the tickets, with the REGIONS section and the
    K masks (format v2). ``weights`` of the result: the union's."""
    return code(weights, biases, union(masks), header, coder, bits, steps, regions, masks)


def choose_depth(session: Session, net: Siren, masks: list[Mask], region_idx: list[torch.Tensor]) -> int:
    """One depth for all layers: the smallest within ``max_loss_db`` of the unquantized tickets."""
    cfg, target = session.cfg, session.target
    ref = evaluate_regions(net, target, masks, region_idx, pixels=cfg.eval_pixels)
    weights, biases = net.state()
    scalar = replace(cfg.coder, weight_coder="scalar")

    def psnr_at(bits: int) -> float:
        coded = code(weights, biases, union(masks), session.header, scalar, bits)
        return evaluate_regions(net, target, masks, region_idx, coded.weights, coded.biases, pixels=cfg.eval_pixels)

    return smallest_depth(session, ref, psnr_at)


def finish(
    session: Session,
    net: Siren,
    masks: list[Mask],
    region_idx: list[torch.Tensor],
    regions: container.Regions,
    bits: int,
    progress: StepProgress | None = None,
) -> Coded:
    """Quantization-aware joint fine-tuning at ``bits`` (``coding.fine_tuning``), then the v2 file.
    Leaves ``net`` at the fine-tuned weights."""
    cfg = session.cfg
    steps = quantization_steps(list(net.weights), union(masks), bits)
    if cfg.coder.qat_steps > 0:
        qcfg, quantizer = fine_tuning(cfg, steps)
        joint_train(
            net, session.target, masks, region_idx, qcfg, cfg.coder.qat_steps, QAT_SEED_OFFSET, progress, quantizer
        )
    weights, biases = net.state()
    return code_regions(weights, biases, masks, session.header, regions, cfg.coder, bits, steps)


def encode_regions(
    arr: np.ndarray,
    cfg: EncodeConfig,
    spec: regionlib.RegionSpec,
    region_map=None,
    device: str | None = None,
    progress: Progress | None = None,
    extract_steps: int | None = None,
) -> Encoded:
    """Encode an (H, W, C) uint8 image with one ticket per region (format v2).

    The preset's schedule (density, rate, rewind, steps) applies to every ticket; each round adds
    ``extract_steps`` (default: the preset's retraining steps) of training per region.
    """
    if cfg.bpp is not None:
        raise ValueError("--bpp (rate control) is not supported with --regions")
    if prior_id(replace(cfg, arch=replace(cfg.arch, out_features=arr.shape[2]))):
        raise ValueError("a prior (residual coding) is not supported with --regions")
    if cfg.coder.adaround_steps:  # its tickets are coded by code_regions, which rounds to nearest
        raise ValueError("AdaRound (adaround_steps) is not supported with --regions")
    t0 = time.perf_counter()
    session = Session.create(arr, cfg, device)
    cfg, target = session.cfg, session.target
    h, w, _c = arr.shape
    regions = regionlib.build(spec, arr, region_map, seed=cfg.fit.seed)
    region_idx = regionlib.region_indices(regions, h, w)
    net = session.network()
    fit, pr = cfg.fit, cfg.prune
    e_steps = pr.steps if extract_steps is None else extract_steps
    n_rounds = rounds_to(pr.density, pr.rate)
    k = regions.count
    plan = Plan(progress, fit.steps + n_rounds * (k * e_steps + pr.steps) + cfg.coder.qat_steps)
    check_rewind(cfg)
    rewind = dense_fit(net, target, cfg, plan.stage("fit", 0))
    masks = [Mask.dense(list(net.weights))] * k
    gen = torch.Generator().manual_seed(fit.seed + 7)
    jaccard = []
    density = 1.0
    for r in range(1, n_rounds + 1):
        frac = round_fraction(density, pr.density, pr.rate)
        base = fit.steps + (r - 1) * (k * e_steps + pr.steps)
        stage = plan.stage(f"rtl {r}/{n_rounds}", base + k * e_steps)
        masks = rtl_round(net, target, masks, region_idx, rewind, cfg, frac, r, e_steps, gen, stage)
        density = float(np.mean([m.density() for m in masks]))
        jaccard.append({"round": r, "density": round(density, 4), **mean_jaccard(masks)})
    t_fit = time.perf_counter() - t0
    bits = choose_depth(session, net, masks, region_idx)
    qat = plan.stage("quantize", plan.total - cfg.coder.qat_steps)
    coded = finish(session, net, masks, region_idx, regions, bits, qat)
    t_code = time.perf_counter() - t0 - t_fit
    stats = region_stats(session, coded.data, masks, regions, spec)
    stats.update(
        params=cfg.arch.n_params(),
        rounds=n_rounds,
        bits=[bits] * len(coded.weights),
        coders=coded.coders,
        jaccard=jaccard,
        device=str(session.device),
        kernel=kernel_of(cfg.fit, session.device),
    )
    stats["seconds"] = {"fit_and_prune": round(t_fit, 3), "code": round(t_code, 3), **stats["seconds"]}
    return Encoded(coded.data, stats)


def region_psnr(decoded: np.ndarray, arr: np.ndarray, regions: container.Regions) -> list[float]:
    """PSNR (dB) of each region of a decoded image against the source, at native size."""
    h, w, c = arr.shape
    lab = regionlib.pixel_labels(regions, h, w).numpy()
    dec, src = decoded.reshape(-1, c), arr.reshape(-1, c)
    return [psnr(dec[lab == k], src[lab == k]) for k in range(regions.count)]


def region_stats(session: Session, data: bytes, masks: list[Mask], regions: container.Regions, spec) -> dict:
    """The session's measurement of a v2 file, plus its tickets and each region's PSNR."""
    h, w, _c = session.arr.shape
    stats, decoded = session.measure(data)
    n_union = union(masks).count()
    n_bias = sum(o for o, _i in session.header.shapes())
    stats.update(
        density=round(float(np.mean([m.density() for m in masks])), 4),
        union_density=round(n_union / masks[0].total(), 4),
        stored_params=n_union + n_bias,
        ticket_params=[m.count() + n_bias for m in masks],
        regions={
            "spec": str(spec),
            "kind": container.REGION_KINDS[regions.kind],
            "count": regions.count,
            "map": list(regions.label_map().shape[::-1]),
            "pixels": [int(n) for n in np.bincount(regionlib.pixel_labels(regions, h, w), minlength=regions.count)],
            "psnr": [round(p, 3) for p in region_psnr(decoded, session.arr, regions)],
        },
    )
    return stats
