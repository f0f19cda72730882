"""Sections -> weight tensors -> SIREN (and, in v2 files with regions, one ticket per region).

The torch path of the decoder (GPU, or torch on the CPU); decoder/cpu.py renders without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from inrcodec.decoder.arrays import layer_arrays
from inrcodec.format.container import Bitstream, split_masks
from inrcodec.siren import Architecture, Siren

__all__ = ["RegionNets", "architecture", "layer_arrays", "rebuild", "rebuild_regions"]


def architecture(stream: Bitstream) -> Architecture:
    h = stream.header
    return Architecture(
        in_features=2,
        hidden=h.hidden,
        layers=h.layers,
        out_features=h.channels,
        omega0=h.omega0,
        omega_hidden=h.omega_hidden,
        pe_levels=h.pe_levels,
    )


def rebuild(stream: Bitstream, device: torch.device | str = "cpu") -> Siren:
    """The decoded SIREN, in eval mode, on ``device``."""
    net = Siren(architecture(stream))
    weights, biases = layer_arrays(stream)
    net.load([torch.from_numpy(w) for w in weights], [torch.from_numpy(b) for b in biases])
    return net.to(device).eval()


@dataclass(frozen=True)
class RegionNets:
    """The tickets of a v2 file with regions: region k evaluates the shared SIREN with ``weights[k]``."""

    weights: list[list[torch.Tensor]]  # per region: the shared weights times that region's mask
    labels: torch.Tensor  # (map height, map width) int64 label map; see coords.label_rows

    def evaluate(self, net: Siren, xy: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The network at ``xy`` (N, 2), each point through the ticket of its label (N,)."""
        out = torch.empty(xy.shape[0], net.arch.out_features, device=xy.device)
        for k, ws in enumerate(self.weights):
            sel = torch.nonzero(labels == k).squeeze(1)
            if sel.numel():
                out[sel] = net(xy[sel], ws)
        return out


def rebuild_regions(stream: Bitstream, net: Siren) -> RegionNets | None:
    """The per-region weights over ``net`` (the rebuilt shared network); None without regions."""
    if stream.regions is None:
        return None
    device = next(net.parameters()).device
    shared = [w.detach() for w in net.weights]
    per_region = []
    for k in range(stream.regions.count):
        if stream.region_masks is None:
            per_region.append(shared)
        else:
            keep = split_masks(stream.region_masks[k], stream.header)
            per_region.append([w * torch.from_numpy(m).to(device, w.dtype) for w, m in zip(shared, keep)])
    labels = torch.from_numpy(stream.regions.label_map().astype(np.int64)).to(device)
    return RegionNets(per_region, labels)
