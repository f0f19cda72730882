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
from inrcodec.encoder import sparse_code
from inrcodec.encoder.fit import train
from inrcodec.encoder.mask import Mask
from inrcodec.encoder.progress import StepProgress
from inrcodec.encoder.prune import Snapshot
from inrcodec.encoder.quantize import fake_quant, quantize, step_for
from inrcodec.encoder.session import Session
from inrcodec.format import container
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


def _choose_coder(scalar: container.LayerCode, values: np.ndarray, depth: int, coder: CoderConfig):
    """``scalar``, or the layer's SINR code where asked for (``sinr``), or where (``auto``) it is
    both smaller and no less accurate."""
    if coder.weight_coder not in ("sinr", "auto") or not values.size:
        return scalar
    sc = sparse_code.encode(values, coder.sinr_k, coder.sinr_m, coder.sinr_s, coder.dict_seed, depth)
    sinr = replace(  # the same biases; coefficients and atom indices instead of weights
        scalar, coder=container.CODER_SINR, step=sc.coef_step, values_q=sc.coef_q, sinr=sc.params, indices=sc.indices
    )
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
) -> Coded:
    """Quantize and code every layer's weights under ``mask`` at ``bits`` bits (one depth, or one
    per layer) and write the file; ``steps`` fixes the weight steps (after fine-tuning).
    With ``regions``, the file also stores one ticket per region (format v2); ``mask`` is then
    the union of the ``tickets``."""
    layers = []
    keep = [k.cpu().numpy() for k in mask.keep]
    for i, (w, b, kp, depth) in enumerate(zip(weights, biases, keep, depths(bits, len(weights)))):
        values = w.detach().cpu().numpy()[kp]
        step = None if steps is None else steps[i]
        scalar = scalar_layer(i, values, b.detach().cpu().numpy(), depth, coder.bias_bits, step)
        layers.append(_choose_coder(scalar, values, depth, coder))
    masks = None if mask.density() >= 1.0 else np.concatenate([k.reshape(-1) for k in keep])
    if regions is None:
        data = container.write(header, masks, layers, coder.brotli_quality)
    else:
        ticket_flags = np.stack([t.flat().numpy() for t in tickets])
        data = container.write(header, masks, layers, coder.brotli_quality, regions, ticket_flags)
    ws, bs = layer_arrays(container.read(data))
    device = weights[0].device
    to_device = lambda arrays: [torch.from_numpy(a).to(device) for a in arrays]  # noqa: E731
    return Coded(data, to_device(ws), to_device(bs), [container.WEIGHT_CODERS[lc.coder] for lc in layers])


def quantization_steps(weights: list[torch.Tensor], mask: Mask, bits: int | list[int]) -> list[float]:
    """Each layer's quantizer step: the one that spans its surviving weights at its depth."""
    keep = [k.cpu().numpy() for k in mask.keep]
    per_layer = depths(bits, len(weights))
    return [step_for(w.detach().cpu().numpy()[k], b) for w, k, b in zip(weights, keep, per_layer)]


def fine_tuning(cfg: EncodeConfig, steps: list[float]) -> tuple[FitConfig, WeightFn]:
    """Quantization-aware fine-tuning's schedule (from the fit's final learning rate down by ten)
    and its forward-pass quantizer (straight-through, at ``steps``)."""
    qcfg = replace(cfg.fit, lr=cfg.fit.lr_final, lr_final=cfg.fit.lr_final * 0.1)
    return qcfg, lambda ws: [fake_quant(w, s) for w, s in zip(ws, steps)]


def finish(
    session: Session, net: Siren, snap: Snapshot, bits: int | list[int], progress: StepProgress | None = None
) -> Coded:
    """Quantization-aware fine-tuning of ``snap`` at ``bits``, then the file with the config's coder.
    Leaves ``net`` at the fine-tuned weights."""
    cfg = session.cfg
    net.load(snap.weights, snap.biases)
    steps = quantization_steps(snap.weights, snap.mask, bits)
    if cfg.coder.qat_steps > 0:
        qcfg, quantizer = fine_tuning(cfg, steps)
        train(
            net,
            session.target,
            qcfg,
            cfg.coder.qat_steps,
            mask=snap.mask,
            seed_offset=QAT_SEED_OFFSET,
            progress=progress,
            weight_fn=quantizer,
        )
    weights, biases = net.state()
    return code(weights, biases, snap.mask, session.header, cfg.coder, bits, steps=steps)
