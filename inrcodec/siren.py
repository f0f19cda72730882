"""The SIREN (Sitzmann et al. 2020): sine layers, the paper's initialisation, a linear head.

The network holds no grid and knows no resolution: it maps (x, y) in [-1, 1]^2 to colour,
optionally through a Fourier encoding of the coordinates (Mildenhall et al. 2020; Strümpler et al.
2022 use it with SIRENs for compression), which the decoder recomputes from one header byte.
Weights are plain tensors in a list so that masks, quantizers and the decoder can address
layer ``i`` without reaching into module internals.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from inrcodec.architecture import Architecture

__all__ = ["Architecture", "Siren", "default_device", "fourier_features"]


def fourier_features(coords: torch.Tensor, levels: int) -> torch.Tensor:
    """(N, d) -> (N, d (1 + 2L)): the coordinates, sin(f_k c) for every coordinate c and level k,
    then cos(f_k c) in the same order, with f_k = float32(pi) * 2^k (docs/format.md, version 3).

    The product f_k * c is one float32 multiplication, so the NumPy decoder computes the same
    arguments bit for bit (decoder/cpu.py).
    """
    if levels == 0:
        return coords
    freqs = torch.tensor(math.pi, dtype=torch.float32) * 2.0 ** torch.arange(levels, dtype=torch.float32)
    args = (coords[:, :, None] * freqs.to(coords.device)).flatten(1)  # c0 k0..kL-1, c1 k0..kL-1
    return torch.cat([coords, torch.sin(args), torch.cos(args)], dim=1)


class Siren(nn.Module):
    """sin(ω0·(W x + b)) layers, then a linear output layer."""

    def __init__(self, arch: Architecture, generator: torch.Generator | None = None):
        super().__init__()
        self.arch = arch
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for idx, (fan_out, fan_in) in enumerate(arch.shapes()):
            w = torch.empty(fan_out, fan_in)
            b = torch.empty(fan_out)
            if idx == 0:
                bound = 1.0 / fan_in
            else:
                bound = math.sqrt(6.0 / fan_in) / arch.omega_hidden
            w.uniform_(-bound, bound, generator=generator)
            # Biases as in torch's nn.Linear default, which the SIREN reference code keeps.
            b.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=generator)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def forward(
        self,
        coords: torch.Tensor,
        weights: list[torch.Tensor] | None = None,
        biases: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Evaluate at ``coords`` (N, 2); ``weights``/``biases`` override the stored ones."""
        ws = list(self.weights) if weights is None else weights
        bs = list(self.biases) if biases is None else biases
        h = fourier_features(coords, self.arch.pe_levels)
        last = len(ws) - 1
        for i, (w, b) in enumerate(zip(ws, bs)):
            h = torch.nn.functional.linear(h, w, b)
            if i < last:
                h = torch.sin((self.arch.omega0 if i == 0 else self.arch.omega_hidden) * h)
        return h

    def state(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Detached copies of (weights, biases): for rewinding and coding."""
        return [w.detach().clone() for w in self.weights], [b.detach().clone() for b in self.biases]

    @torch.no_grad()
    def load(self, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> None:
        for p, v in zip(self.weights, weights):
            p.copy_(v)
        for p, v in zip(self.biases, biases):
            p.copy_(v)


def default_device(prefer: str | None = None) -> torch.device:
    """CUDA when available, then Apple's MPS, else CPU; ``prefer`` (e.g. "cpu") overrides."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
