"""Sections -> float32 weight arrays, without torch: shared by the NumPy and torch decoders."""

from __future__ import annotations

import numpy as np

from inrcodec import priors
from inrcodec.format.container import CODER_SINR, SHARED_MASK_VERSION, Bitstream, LayerCode, split_masks
from inrcodec.format.errors import FormatError
from inrcodec.format.weights import dequantize, sinr_reconstruct


def layer_values(code: LayerCode, count: int) -> np.ndarray:
    """The ``count`` surviving weights of one coded layer, as the decoder sees them (the encoder
    calls this too, to measure a coder's error)."""
    if code.coder == CODER_SINR:
        k, m, _s, seed = code.sinr
        return sinr_reconstruct(code.indices, code.values_q, code.step, k, m, seed, count)
    return dequantize(code.values_q, code.step)


def layer_arrays(stream: Bitstream) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """float32 (weights, biases) per layer, pruned entries exactly zero. With a prior (v4) the
    coded values are residuals: a kept weight is the prior's plus its residual (one float32
    addition), a bias likewise."""
    weights, biases = [], []
    prior_w, prior_b = _prior(stream)
    for i, (keep, code) in enumerate(zip(split_masks(stream.masks, stream.header), stream.layers)):
        w = np.zeros(keep.shape, dtype=np.float32)
        w[keep] = layer_values(code, int(keep.sum()))
        b = dequantize(code.bias_q, code.bias_step)
        if prior_w is not None:
            w[keep] += prior_w[i][keep]
            b = b + prior_b[i]
        weights.append(w)
        biases.append(b)
    return weights, biases


def _prior(stream: Bitstream) -> tuple[tuple[np.ndarray, ...] | None, tuple[np.ndarray, ...] | None]:
    """The prior's arrays, checked against the file's network shape (None, None without one)."""
    if not stream.header.prior:
        return None, None
    h = stream.header
    ws, bs = priors.arrays(h.prior)
    shape = (h.hidden, h.layers, h.pe_levels, h.channels, h.omega0, h.omega_hidden)
    want = h.shapes()
    same_arrays = [w.shape for w in ws] == want and [b.shape for b in bs] == [(o,) for o, _i in want]
    if priors.registry()[h.prior].shape() != shape or not same_arrays:
        raise FormatError(f"prior {h.prior} is for another network than this file's")
    if stream.version != SHARED_MASK_VERSION and priors.mask(h.prior) is not None:
        raise FormatError(f"prior {h.prior} carries a mask, which needs format version {SHARED_MASK_VERSION}")
    return ws, bs


def region_weights(stream: Bitstream, weights: list[np.ndarray]) -> list[list[np.ndarray]]:
    """One weight list per region (the shared weights times the region's mask); one entry
    (the shared weights) for a file without regions or without per-region masks."""
    if stream.regions is None or stream.region_masks is None:
        return [weights] * (1 if stream.regions is None else stream.regions.count)
    out = []
    for k in range(stream.regions.count):
        keep = split_masks(stream.region_masks[k], stream.header)
        out.append([w * m for w, m in zip(weights, keep)])
    return out
