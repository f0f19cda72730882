"""Stages 3-4: weights become bytes. Quantization-aware fine-tuning at the chosen depths, then
each layer coded (scalar, or SINR where asked or where it measures better) and the file written.

Whatever the decoder will rebuild is read back from the written bytes (``Coded.weights``), so
every later measurement sees exactly the decoder's weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from inrcodec.config import CoderConfig, EncodeConfig, FitConfig
from inrcodec.decoder.arrays import layer_arrays, layer_values
from inrcodec.encoder import adaround, sparse_code
from inrcodec.encoder.fit import State, evaluate, train
from inrcodec.encoder.mask import Mask
from inrcodec.encoder.progress import StepProgress
from inrcodec.encoder.prune import Snapshot
from inrcodec.encoder.quantize import fake_quant, quantize, step_for
from inrcodec.encoder.session import Session
from inrcodec.format import container, entropy
from inrcodec.metrics import rd_cost
from inrcodec.siren import Siren

QAT_SEED_OFFSET = 999  # the fine-tuning's pixel batches: a stream of their own

WeightFn = Callable[[list[torch.Tensor]], list[torch.Tensor]]


@dataclass
class Coded:
    """A written file and the weights the decoder rebuilds from it."""

    data: bytes
    weights: list[torch.Tensor]  # what the decoder will rebuild
    biases: list[torch.Tensor]
    coders: list[str]  # per layer: "scalar" or "sinr"


def depths(bits: int | list[int], n_layers: int) -> list[int]:
    """One bit depth per layer, from one for all or a list."""
    return [bits] * n_layers if isinstance(bits, int) else list(bits)


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


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


ENTROPY_CODERS = {"brotli": entropy.BROTLI, "range": entropy.RANGE}


def entropy_coded(layer: container.LayerCode, coder: CoderConfig) -> container.LayerCode:
    """``layer`` with the config's entropy coder: Brotli, the range coder, or (``auto``) whichever
    section is smaller, measured."""
    if coder.entropy_coder == "auto":
        options = [replace(layer, entropy_coder=c) for c in ENTROPY_CODERS.values()]
        return min(options, key=lambda lc: len(container.pack_layer(lc, coder.brotli_quality)))
    if coder.entropy_coder not in ENTROPY_CODERS:
        raise ValueError(f"unknown entropy coder {coder.entropy_coder!r}; choose from brotli, range, auto")
    return replace(layer, entropy_coder=ENTROPY_CODERS[coder.entropy_coder])


def coded_weights(weights: list[torch.Tensor], mask: Mask, anchor: State | None) -> list[np.ndarray]:
    """What the file codes of each layer's weights: the kept ones (mask order), minus the prior's
    where there is one (``anchor``)."""
    keep = [k.cpu().numpy() for k in mask.keep]
    values = [w.detach().cpu().numpy()[k] for w, k in zip(weights, keep)]
    if anchor is None:
        return values
    return [v - a.cpu().numpy()[k] for v, a, k in zip(values, anchor[0], keep)]


def coded_biases(biases: list[torch.Tensor], anchor: State | None) -> list[np.ndarray]:
    """What the file codes of each layer's biases: them, or their residuals from ``anchor``."""
    values = [b.detach().cpu().numpy() for b in biases]
    return values if anchor is None else [b - a.cpu().numpy() for b, a in zip(values, anchor[1])]


def _choose_coder(scalar: container.LayerCode, values: np.ndarray, depth: int, coder: CoderConfig):
    """``scalar``, or the layer's SINR code where asked for (``sinr``), or where (``auto``) it is
    both smaller and no less accurate."""
    if coder.weight_coder not in ("sinr", "auto") or not values.size:
        return entropy_coded(scalar, coder)
    sc = sparse_code.encode(values, coder.sinr_k, coder.sinr_m, coder.sinr_s, coder.dict_seed, depth)
    sinr = replace(  # the same biases; coefficients and atom indices instead of weights
        scalar, coder=container.CODER_SINR, step=sc.coef_step, values_q=sc.coef_q, sinr=sc.params, indices=sc.indices
    )
    scalar, sinr = entropy_coded(scalar, coder), entropy_coded(sinr, coder)
    if coder.weight_coder == "sinr":
        return sinr
    smaller = len(container.pack_layer(sinr, coder.brotli_quality)) < len(
        container.pack_layer(scalar, coder.brotli_quality)
    )
    if smaller and _mse(values, layer_values(sinr, values.size)) <= _mse(values, layer_values(scalar, values.size)):
        return sinr
    return scalar


def code(
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    mask: Mask,
    header: container.Header,
    coder: CoderConfig,
    bits: int | list[int],
    steps: list[float] | None = None,
    regions: container.Regions | None = None,
    tickets: list[Mask] | None = None,
    anchor: State | None = None,
) -> Coded:
    """Quantize and code every layer's weights under ``mask`` at ``bits`` bits (one depth, or one
    per layer) and write the file; ``steps`` fixes the weight steps (after fine-tuning).
    With ``regions``, the file also stores one ticket per region (format v2); ``mask`` is then
    the union of the ``tickets``. With an ``anchor`` (the header's prior) the residuals are coded.
    """
    layers = []
    keep = [k.cpu().numpy() for k in mask.keep]
    values, bvals = coded_weights(weights, mask, anchor), coded_biases(biases, anchor)
    for i, (v, b, depth) in enumerate(zip(values, bvals, depths(bits, len(weights)))):
        step = None if steps is None else steps[i]
        scalar = scalar_layer(i, v, b, depth, coder.bias_bits, step)
        layers.append(_choose_coder(scalar, v, depth, coder))
    masks = None if mask.density() >= 1.0 else np.concatenate([k.reshape(-1) for k in keep])
    if regions is None:
        data = container.write(header, masks, layers, coder.brotli_quality)
    else:
        ticket_flags = np.stack([t.flat().numpy() for t in tickets])
        data = container.write(header, masks, layers, coder.brotli_quality, regions, ticket_flags)
    ws, bs = (_tensors(a, weights[0].device) for a in layer_arrays(container.read(data)))
    return Coded(data, ws, bs, [container.WEIGHT_CODERS[lc.coder] for lc in layers])


def _tensors(arrays: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    return [torch.from_numpy(a).to(device) for a in arrays]


def quantization_steps(
    weights: list[torch.Tensor], mask: Mask, bits: int | list[int], anchor: State | None = None
) -> list[float]:
    """Each layer's quantizer step: the one that spans its coded values (surviving weights, or
    their residuals from ``anchor``) at its depth."""
    values = coded_weights(weights, mask, anchor)
    return [step_for(v, b) for v, b in zip(values, depths(bits, len(weights)))]


def fine_tuning(
    cfg: EncodeConfig, steps: list[float], mask: Mask | None = None, anchor: State | None = None
) -> tuple[FitConfig, WeightFn]:
    """Quantization-aware fine-tuning's schedule (from the fit's final learning rate down by ten)
    and its forward-pass quantizer (straight-through, at ``steps``, of the weights under ``mask``
    or of their residuals from ``anchor``)."""
    qcfg = replace(cfg.fit, lr=cfg.fit.lr_final, lr_final=cfg.fit.lr_final * 0.1)
    if anchor is None:
        return qcfg, lambda ws: [fake_quant(w, s) for w, s in zip(ws, steps)]
    origin = anchor[0] if mask is None else mask.apply(anchor[0])
    return qcfg, lambda ws: [o + fake_quant(w - o, s) for w, o, s in zip(ws, origin, steps)]


def finish(
    session: Session, net: Siren, snap: Snapshot, bits: int | list[int], progress: StepProgress | None = None
) -> Coded:
    """Quantization-aware fine-tuning of ``snap`` at ``bits``, AdaRound's rounding where asked
    (``adaround_steps``), then the file with the config's coder. Leaves ``net`` at the fine-tuned
    weights."""
    cfg = session.cfg
    net.load(snap.weights, snap.biases)
    steps = quantization_steps(snap.weights, snap.mask, bits, session.anchor)
    if cfg.coder.qat_steps > 0:
        qcfg, quantizer = fine_tuning(cfg, steps, snap.mask, session.anchor)
        train(
            net,
            session.target,
            qcfg,
            cfg.coder.qat_steps,
            mask=snap.mask,
            seed_offset=QAT_SEED_OFFSET,
            progress=progress,
            weight_fn=quantizer,
            anchor=session.anchor,
        )
    weights, biases = net.state()
    if cfg.coder.adaround_steps > 0:  # on the bar after fine-tuning's steps (the encode plans both)
        d, qat = depths(bits, len(weights)), cfg.coder.qat_steps
        after = None if progress is None else lambda done, n, psnr_db: progress(qat + done, n, psnr_db)
        weights = adaround.learn(
            net, session.target, cfg, (weights, biases), snap.mask, steps, d, session.anchor, after
        )
    coded = code(weights, biases, snap.mask, session.header, cfg.coder, bits, steps=steps, anchor=session.anchor)
    return rd_round(session, net, coded) if cfg.coder.rd_lambda > 0 and cfg.coder.rd_rounding else coded


def round_moves(
    q: np.ndarray, grad: np.ndarray, step: float, lam_per_bit: float, both: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each integer weight's best one-step move (-1 or +1; towards zero only unless ``both``) and
    its predicted change of D + lambda R: D to first order from the MSE's gradient, R from the
    layer's symbol frequencies (a symbol not yet in the layer at 16 bits). A weight with no move
    (a zero, towards zero) is predicted +inf."""
    sym, counts = np.unique(q, return_counts=True)
    bits = dict(zip(sym.tolist(), (-np.log2(counts / q.size)).tolist()))
    now = np.array([bits[int(a)] for a in q])

    def predicted(d: np.ndarray) -> np.ndarray:
        new_bits = np.array([bits.get(int(a), 16.0) for a in (q + d)])
        return grad * d * step + lam_per_bit * (new_bits - now)

    if both:
        down, up = predicted(-np.ones_like(q)), predicted(np.ones_like(q))
        return np.minimum(up, down), np.where(up < down, 1, -1)
    toward = -np.sign(q)
    return np.where(q != 0, predicted(toward), np.inf), toward


def rd_round(session: Session, net: Siren, coded: Coded) -> Coded:
    """A greedy rounding pass on a written file: move scalar-coded weights one step (towards zero,
    or with ``rd_round_moves="both"`` whichever of -1 and +1 is predicted better) where that lowers
    D + lambda R (``rd_lambda``), measured on real bytes.

    Each move's change of D is predicted from the gradient of the MSE at the decoder's weights,
    its change of R from the layer's symbol frequencies; the moves predicted to help are ranked,
    and the best of applying all of them, half, a quarter ... (or none) by *measured* cost is kept.
    """
    cfg, target = session.cfg, session.target
    lam = cfg.coder.rd_lambda
    both = cfg.coder.rd_round_moves == "both"
    h, w, _c = session.arr.shape
    stream = container.read(coded.data)
    keeps = container.split_masks(stream.masks, stream.header)
    weights = [x.detach().clone().requires_grad_(True) for x in coded.weights]
    n = target.n
    idx = None if cfg.eval_pixels >= n else torch.linspace(0, n - 1, cfg.eval_pixels).round().long()
    coords = target.coords if idx is None else target.coords[idx]
    colours = target.colours if idx is None else target.colours[idx]
    loss = torch.mean((net(coords, weights, coded.biases) - colours) ** 2) * 127.5**2  # 8-bit MSE
    grads = torch.autograd.grad(loss, weights)
    moves = []  # (predicted change of cost, layer, position in the layer's values, the move: -1 or +1)
    for i, (lc, keep, g) in enumerate(zip(stream.layers, keeps, grads)):
        if lc.coder != container.CODER_SCALAR or not lc.values_q.size:
            continue
        pred, step = round_moves(lc.values_q, g.detach().cpu().numpy()[keep], lc.step, lam / (h * w), both)
        for j in np.nonzero(pred < 0)[0]:
            moves.append((float(pred[j]), i, int(j), int(step[j])))
    moves.sort()

    def measured(chosen) -> tuple[float, Coded]:
        layers = [replace(lc, values_q=lc.values_q.copy()) for lc in stream.layers]
        for _p, i, j, d in chosen:
            layers[i].values_q[j] += d
        data = container.write(stream.header, stream.masks, layers, cfg.coder.brotli_quality)
        ws, bs = (_tensors(a, session.device) for a in layer_arrays(container.read(data)))
        p = evaluate(net, target, ws, bs, pixels=cfg.eval_pixels)
        return rd_cost(p, len(data), lam, h * w), Coded(data, ws, bs, coded.coders)

    best = measured([])
    k = len(moves)
    while k >= 1:
        trial = measured(moves[:k])
        if trial[0] < best[0]:
            best = trial
        k //= 2
    return best[1]
