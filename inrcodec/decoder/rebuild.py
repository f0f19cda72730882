"""Sections -> weight tensors -> SIREN."""

from __future__ import annotations

import numpy as np
import torch

from inrcodec.format.container import CODER_SINR, Bitstream, split_masks
from inrcodec.format.weights import dequantize, sinr_reconstruct
from inrcodec.siren import Architecture, Siren


def architecture(stream: Bitstream) -> Architecture:
    h = stream.header
    return Architecture(
        in_features=2,
        hidden=h.hidden,
        layers=h.layers,
        out_features=h.channels,
        omega0=h.omega0,
        omega_hidden=h.omega_hidden,
    )


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


def rebuild(stream: Bitstream, device: torch.device | str = "cpu") -> Siren:
    """The decoded SIREN, in eval mode, on ``device``."""
    net = Siren(architecture(stream))
    weights, biases = layer_arrays(stream)
    net.load([torch.from_numpy(w) for w in weights], [torch.from_numpy(b) for b in biases])
    return net.to(device).eval()
