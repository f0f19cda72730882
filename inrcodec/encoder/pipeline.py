"""Chains the stages: fit -> prune (IMP) -> code -> bytes; rate control; stats.

Every reported rate is the length of the bytes returned, and every reported PSNR comes from
decoding those bytes with the real decoder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from inrcodec import coords
from inrcodec.config import CoderConfig, EncodeConfig
from inrcodec.decoder.arrays import layer_arrays, layer_values
from inrcodec.decoder.render import decode
from inrcodec.encoder import sparse_code
from inrcodec.encoder.fit import Target, evaluate, train
from inrcodec.encoder.prune import Mask, parse_rewind, round_fraction, rounds_to
from inrcodec.encoder.quantize import fake_quant, quantize, step_for
from inrcodec.format import container
from inrcodec.format.weights import dequantize
from inrcodec.image import psnr, to_unit
from inrcodec.siren import Siren, default_device

# progress(stage, steps_done, steps_total, psnr_db): stage is "fit", "prune r/R" or "quantize"
Progress = Callable[[str, int, int, float], None]

MIN_DENSITY = 0.02  # rate control never prunes below this


@dataclass
class Encoded:
    """The bytes of an ``.inr`` file and what it took to make them."""

    data: bytes
    stats: dict = field(default_factory=dict)


@dataclass
class Snapshot:
    """The network after the dense fit (round 0) or after a pruning round."""

    round: int
    mask: Mask
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    seconds: float  # encoder time spent to reach this point


def make_target(arr: np.ndarray, device: torch.device) -> Target:
    h, w, c = arr.shape
    colours = torch.from_numpy(to_unit(arr).reshape(h * w, c)).to(device)
    return Target(coords.grid(h, w, device), colours)


def imp(
    net: Siren,
    target: Target,
    cfg: EncodeConfig,
    progress: Progress | None = None,
    keep_going: Callable[[Snapshot], bool] | None = None,
    densities: list[float] | None = None,
) -> Iterator[Snapshot]:
    """Dense fit, then IMP rounds until the target density (or ``keep_going`` says stop).

    Yields a snapshot after the dense fit and after every round. ``densities`` (descending)
    replaces the config's geometric schedule: one round per listed density.
    """
    start = time.perf_counter()
    fit, pr = cfg.fit, cfg.prune
    rewind_at = parse_rewind(pr.rewind)
    theta0 = net.state()
    if densities is None:
        n_rounds = 0 if pr.density >= 1 else rounds_to(pr.density, pr.rate)
    else:
        n_rounds = len(densities)
    total = fit.steps + n_rounds * pr.steps + cfg.coder.qat_steps

    def report(stage: str, base: int):
        if progress is None:
            return None
        return lambda done, _t, p: progress(stage, base + done, total, p)

    snap = train(net, target, fit, fit.steps, progress=report("fit", 0), snapshot_at=rewind_at)
    rewind_state = theta0 if rewind_at == 0 else snap
    mask = Mask.dense(list(net.weights))
    current = Snapshot(0, mask, *net.state(), time.perf_counter() - start)
    yield current
    gen = torch.Generator().manual_seed(fit.seed + 7)
    r = 0
    while True:
        density = mask.density()
        if densities is not None:
            if r >= len(densities):
                return
            goal = densities[r]
        else:
            goal = pr.density
            if density <= goal + 1e-9:
                if keep_going is None or not keep_going(current) or density <= MIN_DENSITY:
                    return
                goal = max(MIN_DENSITY, density * (1 - pr.rate))
        if rewind_at is not None and rewind_at > fit.steps:  # checked only once pruning happens
            raise ValueError(f"rewind {pr.rewind}: the dense fit has only {fit.steps} steps")
        r += 1
        frac = round_fraction(density, goal, pr.rate) if densities is None else 1 - goal / density
        mask = mask.prune(list(net.weights), frac, pr.rule, gen)
        if rewind_state is not None:
            net.load([w.to(target.coords.device) for w in rewind_state[0]], rewind_state[1])
        stage = f"prune {r}/{max(n_rounds, r)}"
        train(
            net, target, fit, pr.steps, mask=mask, seed_offset=r, progress=report(stage, fit.steps + (r - 1) * pr.steps)
        )
        current = Snapshot(r, mask, *net.state(), time.perf_counter() - start)
        yield current


@dataclass
class Coded:
    data: bytes
    weights: list[torch.Tensor]  # what the decoder will rebuild
    biases: list[torch.Tensor]
    coders: list[str]


def scalar_layer(
    i: int, values: np.ndarray, bvals: np.ndarray, depth: int, bias_bits: int, step: float | None = None
) -> container.LayerCode:
    """Layer ``i`` as the scalar coder stores it: ``values`` (its surviving weights) at ``depth``
    bits with ``step`` (None: the step that spans them), its biases at ``bias_bits``."""
    bstep = step_for(bvals, bias_bits)
    step = step_for(values, depth) if step is None else step
    return container.LayerCode(
        i, container.CODER_SCALAR, bstep, quantize(bvals, bstep), step, quantize(values, step, depth)
    )


def code(
    snap_weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    mask: Mask,
    header: container.Header,
    coder: CoderConfig,
    bits: int | list[int],
    steps: list[float] | None = None,
) -> Coded:
    """Quantize and code every layer at ``bits`` bits (one depth, or one per layer); ``steps``
    fixes the weight steps (after quantization-aware fine-tuning)."""
    per_layer = [bits] * len(snap_weights) if isinstance(bits, int) else list(bits)
    layers, names = [], []
    keep = [k.cpu().numpy() for k in mask.keep]
    for i, (w, b, kp, depth) in enumerate(zip(snap_weights, biases, keep, per_layer)):
        values = w.detach().cpu().numpy()[kp]
        step = None if steps is None else steps[i]
        scalar = scalar_layer(i, values, b.detach().cpu().numpy(), depth, coder.bias_bits, step)
        choice = scalar
        if coder.weight_coder in ("sinr", "auto") and values.size:
            sc = sparse_code.encode(values, coder.sinr_k, coder.sinr_m, coder.sinr_s, coder.dict_seed, depth)
            sinr = replace(  # the same biases; coefficients and atom indices instead of weights
                scalar,
                coder=container.CODER_SINR,
                step=sc.coef_step,
                values_q=sc.coef_q,
                sinr=sc.params,
                indices=sc.indices,
            )
            if coder.weight_coder == "sinr":
                choice = sinr
            else:
                # Keep SINR only where it is both smaller and no less accurate than scalar.
                err_sc = _err(values, layer_values(scalar, values.size))
                err_si = _err(values, layer_values(sinr, values.size))
                size_sc = len(container.pack_layer(scalar, coder.brotli_quality))
                size_si = len(container.pack_layer(sinr, coder.brotli_quality))
                if size_si < size_sc and err_si <= err_sc:
                    choice = sinr
        layers.append(choice)
        names.append(container.WEIGHT_CODERS[choice.coder])
    masks = None if mask.density() >= 1.0 else np.concatenate([k.reshape(-1) for k in keep])
    data = container.write(header, masks, layers, coder.brotli_quality)
    stream = container.read(data)
    ws, bs = layer_arrays(stream)
    device = snap_weights[0].device
    to_device = lambda arrays: [torch.from_numpy(a).to(device) for a in arrays]  # noqa: E731
    return Coded(data, to_device(ws), to_device(bs), names)


def _err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def header_for(arr: np.ndarray, cfg: EncodeConfig) -> container.Header:
    h, w, c = arr.shape
    a = cfg.arch
    return container.Header(w, h, c, a.hidden, a.layers, a.omega0, a.omega_hidden, a.pe_levels)


def allocate_bits(net: Siren, target: Target, snap: Snapshot, cfg: EncodeConfig) -> list[int]:
    """Per-layer bit depths by measured rate and distortion.

    Start every layer at the highest candidate depth; repeatedly take away one bit from the layer
    whose loss costs the fewest dB per byte saved, while the total PSNR loss against the
    unquantized network stays within ``max_loss_db``. A layer's section depends only on that
    layer and its depth, so each (layer, depth) is coded once and file sizes are compared
    through the one section that changes.
    """
    ref = evaluate(net, target, pixels=cfg.eval_pixels)
    levels = sorted(cfg.coder.bits)
    keep = [k.cpu().numpy() for k in snap.mask.keep]
    values = [w.detach().cpu().numpy()[k] for w, k in zip(snap.weights, keep)]
    bvals = [b.detach().cpu().numpy() for b in snap.biases]
    device = snap.weights[0].device
    cache: dict[tuple[int, int], tuple[int, torch.Tensor, container.LayerCode]] = {}

    def layer(i: int, depth: int) -> tuple[int, torch.Tensor, container.LayerCode]:
        """(section bytes, weights as the decoder rebuilds them, the code) of layer ``i`` at ``depth`` bits."""
        if (i, depth) not in cache:
            lc = scalar_layer(i, values[i], bvals[i], depth, cfg.coder.bias_bits)
            rebuilt = np.zeros(keep[i].shape, dtype=np.float32)
            rebuilt[keep[i]] = layer_values(lc, values[i].size)
            size = len(container.pack_layer(lc, cfg.coder.brotli_quality))
            cache[(i, depth)] = (size, torch.from_numpy(rebuilt).to(device), lc)
        return cache[(i, depth)]

    # The biases' code does not depend on the weights' depth: take it from any depth's.
    codes = [layer(i, levels[-1])[2] for i in range(len(values))]
    biases = [torch.from_numpy(dequantize(c.bias_q, c.bias_step)).to(device) for c in codes]
    bits = [levels[-1]] * len(snap.weights)
    while True:
        best = None
        for i in range(len(bits)):
            pos = levels.index(bits[i])
            if pos == 0:
                continue
            trial = bits.copy()
            trial[i] = levels[pos - 1]
            p = evaluate(net, target, [layer(j, d)[1] for j, d in enumerate(trial)], biases, pixels=cfg.eval_pixels)
            saved = layer(i, bits[i])[0] - layer(i, trial[i])[0]
            if ref - p > cfg.coder.max_loss_db or saved <= 0:
                continue
            cost = (ref - p) / saved
            if best is None or cost < best[0]:
                best = (cost, trial)
        if best is None:
            return bits
        bits = best[1]


def choose_bits(
    net: Siren, target: Target, snap: Snapshot, header, cfg: EncodeConfig
) -> list[tuple[int, Coded, float]]:
    """Code the snapshot at every candidate bit depth: (bits, coded, subset PSNR) each."""
    out = []
    for bits in cfg.coder.bits:
        coded = code(snap.weights, snap.biases, snap.mask, header, replace(cfg.coder, weight_coder="scalar"), bits)
        out.append((bits, coded, evaluate(net, target, coded.weights, coded.biases, pixels=cfg.eval_pixels)))
    return out


def finish(
    net: Siren,
    target: Target,
    snap: Snapshot,
    header: container.Header,
    cfg: EncodeConfig,
    bits: int | list[int],
    progress: Progress | None = None,
    done_steps: int = 0,
    total_steps: int = 0,
) -> Coded:
    """Quantization-aware fine-tuning at ``bits``, then the final coding with the chosen coder."""
    net.load(snap.weights, snap.biases)
    keep = [k.cpu().numpy() for k in snap.mask.keep]
    per_layer = [bits] * len(keep) if isinstance(bits, int) else bits
    steps = [step_for(w.cpu().numpy()[k], b) for w, k, b in zip(snap.weights, keep, per_layer)]
    if cfg.coder.qat_steps > 0:
        qcfg = replace(cfg.fit, lr=cfg.fit.lr_final, lr_final=cfg.fit.lr_final * 0.1)
        cb = None
        if progress is not None:
            cb = lambda d, _t, p: progress("quantize", done_steps + d, total_steps, p)  # noqa: E731
        train(
            net,
            target,
            qcfg,
            cfg.coder.qat_steps,
            mask=snap.mask,
            seed_offset=999,
            progress=cb,
            weight_fn=lambda ws: [fake_quant(w, s) for w, s in zip(ws, steps)],
        )
    weights, biases = net.state()
    return code(weights, biases, snap.mask, header, cfg.coder, bits, steps=steps)


def encode_array(
    arr: np.ndarray, cfg: EncodeConfig, device: str | None = None, progress: Progress | None = None
) -> Encoded:
    """Encode an (H, W, C) uint8 image; with ``cfg.bpp`` the file stays at or under that rate."""
    t0 = time.perf_counter()
    dev = default_device(device)
    h, w, c = arr.shape
    arch = replace(cfg.arch, out_features=c)
    cfg = replace(cfg, arch=arch)
    header = header_for(arr, cfg)
    target = make_target(arr, dev)
    net = Siren(arch, torch.Generator().manual_seed(cfg.fit.seed)).to(dev)
    cap = None if cfg.bpp is None else int(cfg.bpp * h * w / 8)
    best: tuple[float, Snapshot, int, Coded] | None = None  # (psnr, snapshot, bits, coded)

    def fits(snap: Snapshot) -> bool:
        """Rate control: keep pruning while no candidate of this round fits under the cap."""
        nonlocal best
        net.load(snap.weights, snap.biases)
        ok = False
        for bits, coded, p in choose_bits(net, target, snap, header, cfg):
            if len(coded.data) <= cap:
                ok = True
                if best is None or p > best[0]:
                    best = (p, snap, bits, coded)
        return not ok

    last = None
    for snap in imp(net, target, cfg, progress, keep_going=fits if cap is not None else None):
        last = snap
        if cap is not None and snap.mask.density() > cfg.prune.density + 1e-9:
            fits(snap)
    t_fit = time.perf_counter() - t0
    total_steps = cfg.fit.steps + last.round * cfg.prune.steps + cfg.coder.qat_steps
    done = total_steps - cfg.coder.qat_steps
    if cap is None:
        net.load(last.weights, last.biases)
        bits = allocate_bits(net, target, last, cfg)
        coded = finish(net, target, last, header, cfg, bits, progress, done, total_steps)
        snap = last
    else:
        if best is None:
            fits(last)
        if best is None:
            raise ValueError(f"cannot reach {cfg.bpp} bpp with this preset; try a smaller one")
        _p, snap, bits, fallback = best
        coded = finish(net, target, snap, header, cfg, bits, progress, done, total_steps)
        if len(coded.data) > cap:
            coded = fallback
    t_code = time.perf_counter() - t0 - t_fit
    return Encoded(coded.data, _stats(arr, coded, snap, bits, cfg, t_fit, t_code, dev))


def encode_ladder(
    arr: np.ndarray,
    cfg: EncodeConfig,
    densities: list[float],
    device: str | None = None,
    progress: Progress | None = None,
) -> list[Encoded]:
    """One pruning trajectory, several operating points: a file after the dense fit and after
    each round (one round per entry of ``densities``, descending), each coded as by
    :func:`encode_array` without a rate cap. Stats carry the encoder time up to that point.
    """
    t0 = time.perf_counter()
    dev = default_device(device)
    cfg = replace(cfg, arch=replace(cfg.arch, out_features=arr.shape[2]))
    header = header_for(arr, cfg)
    target = make_target(arr, dev)
    net = Siren(cfg.arch, torch.Generator().manual_seed(cfg.fit.seed)).to(dev)
    out = []
    coding_time = 0.0
    for snap in imp(net, target, cfg, progress, densities=densities):
        tc = time.perf_counter()
        bits = allocate_bits(net, target, snap, cfg)
        coded = finish(net, target, snap, header, cfg, bits)
        net.load(snap.weights, snap.biases)  # the trajectory goes on from the unquantized weights
        coding_time += time.perf_counter() - tc
        t_fit = snap.seconds
        stats = _stats(arr, coded, snap, bits, cfg, t_fit, time.perf_counter() - tc, dev)
        stats["seconds"]["trajectory_total"] = round(time.perf_counter() - t0, 3)
        out.append(Encoded(coded.data, stats))
    return out


def _stats(arr, coded: Coded, snap: Snapshot, bits: int | list[int], cfg: EncodeConfig, t_fit, t_code, dev) -> dict:
    h, w, _c = arr.shape
    t = time.perf_counter()
    stream = container.read(coded.data)
    # The real decoder on the same kind of device: NumPy on a CPU, torch on an accelerator.
    decoded = decode(coded.data, device="cpu" if dev.type == "cpu" else str(dev))
    t_dec = time.perf_counter() - t
    return {
        "bytes": len(coded.data),
        "bpp": 8 * len(coded.data) / (h * w),
        "psnr": psnr(decoded, arr),
        "width": w,
        "height": h,
        "channels": arr.shape[2],
        "params": cfg.arch.n_params(),
        "density": snap.mask.density(),
        "rounds": snap.round,
        "bits": [bits] * len(coded.weights) if isinstance(bits, int) else list(bits),
        "coders": coded.coders,
        "sections": stream.section_bytes,
        "seconds": {"fit_and_prune": round(t_fit, 3), "code": round(t_code, 3), "decode": round(t_dec, 3)},
        "device": str(dev),
    }
