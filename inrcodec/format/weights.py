"""Dequantization and SINR reconstruction: the one implementation both sides call.

Only exactly rounded IEEE operations in a fixed order are used, so stored symbols give the same
float32 weights on every platform.
"""

from __future__ import annotations

import numpy as np

from inrcodec.format.dictionary import gaussian_dictionary
from inrcodec.format.errors import FormatError


def _finite(x: np.ndarray) -> np.ndarray:
    if not np.isfinite(x).all():
        raise FormatError("a dequantized weight overflows float32")
    return x


def dequantize(q: np.ndarray, step: float) -> np.ndarray:
    """q * step in float32 (one rounding per value); FormatError if that overflows."""
    with np.errstate(over="ignore"):
        return _finite(q.astype(np.float32) * np.float32(step))


def sinr_reconstruct(
    indices: np.ndarray, coef_q: np.ndarray, coef_step: float, k: int, m: int, seed: int, count: int
) -> np.ndarray:
    """The first ``count`` weights from SINR codes: each length-k vector is sum_j A[:, idx_j] c_j."""
    a = gaussian_dictionary(seed, k, m).astype(np.float64)
    coefs = dequantize(coef_q, coef_step).astype(np.float64)
    acc = np.zeros((indices.shape[0], k), dtype=np.float64)
    for j in range(indices.shape[1]):  # fixed summation order: atom slot 0, 1, ...
        acc += a[:, indices[:, j]].T * coefs[:, j : j + 1]
    with np.errstate(over="ignore"):
        return _finite(acc.reshape(-1)[:count].astype(np.float32))
