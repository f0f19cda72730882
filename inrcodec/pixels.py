"""Pixels as the network sees them: uint8 <-> float in [-1, 1]. NumPy only (no Pillow), so the
decoder can use it; :mod:`inrcodec.image` re-exports both for its callers."""

from __future__ import annotations

import numpy as np


def to_unit(arr: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [-1, 1] (the network's colour range)."""
    return arr.astype(np.float32) / 127.5 - 1.0


def from_unit(x: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> uint8: round((x + 1) * 127.5), half to even, in x's precision, clamped
    to 0..255. fmax/fmin rather than clip, so that a NaN (a hostile file's overflowing network)
    is 0 on every machine, not whatever the cast of a NaN gives (docs/format.md, "Decoding")."""
    return np.fmin(np.fmax(np.round((x + 1.0) * 127.5), 0), 255).astype(np.uint8)
