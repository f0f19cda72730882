"""Sections -> float32 weight arrays, without torch: shared by the NumPy and torch decoders."""

from __future__ import annotations

import numpy as np

from inrcodec.format.container import CODER_SINR, Bitstream, split_masks
from inrcodec.format.weights import dequantize, sinr_reconstruct


def layer_arrays(stream: Bitstream) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """float32 (weights, biases) per layer, pruned entries exactly zero."""
    weights, biases = [], []
    for keep, code in zip(split_masks(stream.masks, stream.header), stream.layers):
        n = int(keep.sum())
        if code.coder == CODER_SINR:
            k, m, _s, seed = code.sinr
            values = sinr_reconstruct(code.indices, code.values_q, code.step, k, m, seed, n)
        else:
            values = dequantize(code.values_q, code.step)
        w = np.zeros(keep.shape, dtype=np.float32)
        w[keep] = values
        weights.append(w)
        biases.append(dequantize(code.bias_q, code.bias_step))
    return weights, biases


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
