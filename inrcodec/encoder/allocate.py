"""Bit allocation: how many bits each layer's weights get, chosen by measured rate and distortion."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from inrcodec.decoder.arrays import layer_values
from inrcodec.encoder.coding import Coded, code, coded_biases, coded_weights, entropy_coded, scalar_layer
from inrcodec.encoder.fit import evaluate
from inrcodec.encoder.prune import Snapshot
from inrcodec.encoder.session import Session
from inrcodec.format import container
from inrcodec.format.weights import dequantize
from inrcodec.metrics import rd_cost
from inrcodec.siren import Siren


def allocate_bits(session: Session, net: Siren, snap: Snapshot) -> list[int]:
    """Per-layer bit depths by measured rate and distortion.

    Start every layer at the highest candidate depth; repeatedly take away one bit from the layer
    whose loss costs the fewest dB per byte saved, while the total PSNR loss against the
    unquantized network (``net``, at the snapshot's weights) stays within ``max_loss_db``; or,
    with ``rd_lambda`` > 0, from the layer whose step lowers MSE + rd_lambda * bpp the most, while
    one does. A
    layer's section depends only on that layer and its depth, so each (layer, depth) is coded
    once and file sizes are compared through the one section that changes.
    """
    cfg, target = session.cfg, session.target
    ref = evaluate(net, target, pixels=cfg.eval_pixels)
    levels = sorted(cfg.coder.bits)
    keep = [k.cpu().numpy() for k in snap.mask.keep]
    values = coded_weights(snap.weights, snap.mask, session.anchor)
    bvals = coded_biases(snap.biases, session.anchor)
    # What the decoder adds to the dequantized residuals: the prior's arrays, or zeros.
    if session.anchor is None:
        origin = [np.zeros(k.shape, np.float32) for k in keep]
        origin_b = [np.zeros(len(b), np.float32) for b in bvals]
    else:
        origin, origin_b = ([a.cpu().numpy() for a in arrays] for arrays in session.anchor)
    device = snap.weights[0].device
    cache: dict[tuple[int, int], tuple[int, torch.Tensor, container.LayerCode]] = {}

    def layer(i: int, depth: int) -> tuple[int, torch.Tensor, container.LayerCode]:
        """(section bytes, weights as the decoder rebuilds them, the code) of layer ``i`` at ``depth`` bits."""
        if (i, depth) not in cache:
            lc = entropy_coded(scalar_layer(i, values[i], bvals[i], depth, cfg.coder.bias_bits), cfg.coder)
            rebuilt = np.zeros(keep[i].shape, dtype=np.float32)
            rebuilt[keep[i]] = layer_values(lc, values[i].size) + origin[i][keep[i]]
            size = len(container.pack_layer(lc, cfg.coder.brotli_quality))
            cache[(i, depth)] = (size, torch.from_numpy(rebuilt).to(device), lc)
        return cache[(i, depth)]

    # The biases' code does not depend on the weights' depth: take it from any depth's.
    codes = [layer(i, levels[-1])[2] for i in range(len(values))]
    biases = [torch.from_numpy(dequantize(c.bias_q, c.bias_step) + o).to(device) for c, o in zip(codes, origin_b)]
    bits = [levels[-1]] * len(snap.weights)
    lam = cfg.coder.rd_lambda
    h, w, _c = session.arr.shape
    cost_now = math.inf
    if lam > 0:  # the cost of the start: every layer at the highest depth
        top = evaluate(net, target, [layer(j, d)[1] for j, d in enumerate(bits)], biases, pixels=cfg.eval_pixels)
        cost_now = rd_cost(top, sum(layer(j, d)[0] for j, d in enumerate(bits)), lam, h * w)
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
            if lam > 0:  # rate-distortion: the step that lowers MSE + lam * bpp most
                cost = rd_cost(p, sum(layer(j, d)[0] for j, d in enumerate(trial)), lam, h * w)
            elif ref - p > cfg.coder.max_loss_db or saved <= 0:
                continue
            else:  # the dB budget: the fewest dB lost per byte saved
                cost = (ref - p) / saved
            if best is None or cost < best[0]:
                best = (cost, trial)
        if best is None or (lam > 0 and best[0] >= cost_now):
            return bits
        bits = best[1]
        cost_now = best[0] if lam > 0 else cost_now


def each_depth(session: Session, net: Siren, snap: Snapshot) -> list[tuple[int, Coded, float]]:
    """The snapshot scalar-coded at every candidate depth (one for all layers): (depth, coded file,
    PSNR of the decoder's weights on the evaluation pixels) each; rate control picks among them."""
    cfg = session.cfg
    scalar = replace(cfg.coder, weight_coder="scalar")
    out = []
    for bits in cfg.coder.bits:
        coded = code(snap.weights, snap.biases, snap.mask, session.header, scalar, bits, anchor=session.anchor)
        p = evaluate(net, session.target, coded.weights, coded.biases, pixels=cfg.eval_pixels)
        out.append((bits, coded, p))
    return out


def smallest_depth(session: Session, ref_psnr: float, psnr_at: Callable[[int], float]) -> int:
    """The smallest candidate depth (one for all layers) whose PSNR, ``psnr_at(depth)``, is within
    ``max_loss_db`` of ``ref_psnr``; the largest candidate if none is."""
    cfg = session.cfg
    for bits in cfg.coder.bits:
        if ref_psnr - psnr_at(bits) <= cfg.coder.max_loss_db:
            return bits
    return cfg.coder.bits[-1]
