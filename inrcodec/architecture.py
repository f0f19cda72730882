"""The shape of a SIREN, in a module that loads no torch (configs and option checks import it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    """The shape of a SIREN; everything the decoder needs to rebuild it."""

    in_features: int = 2  # (x, y)
    hidden: int = 48  # width of every hidden layer
    layers: int = 3  # number of sine layers (first layer included)
    out_features: int = 3  # colour channels
    omega0: float = 30.0  # frequency factor of the first layer (paper: 30)
    omega_hidden: float = 30.0  # frequency factor of the other sine layers (paper: 30)
    pe_levels: int = 0  # Fourier levels L: the first layer sees (x, y, sin/cos(pi 2^k x, y), k < L); 0: raw (x, y)

    @property
    def encoded_features(self) -> int:
        """Inputs of the first linear map: each coordinate, then its sines and cosines."""
        return self.in_features * (1 + 2 * self.pe_levels)

    def shapes(self) -> list[tuple[int, int]]:
        """(out, in) of every linear map, first to last."""
        dims = [self.encoded_features] + [self.hidden] * self.layers + [self.out_features]
        return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]

    def n_params(self) -> int:
        return sum(o * i + o for o, i in self.shapes())
