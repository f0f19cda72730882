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
    y = np.asarray(x) + 1.0  # a new array (x's float type), then in place: no more temporaries
    if not isinstance(y, np.ndarray):  # a 0-d input gives a NumPy scalar
        y = np.array(y)
    y *= 127.5
    np.round(y, out=y)
    np.fmax(y, 0, out=y)
    np.fmin(y, 255, out=y)
    return y.astype(np.uint8)
