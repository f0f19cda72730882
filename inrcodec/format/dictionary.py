"""The seeded Gaussian dictionary of SINR coding, specified bit for bit (docs/format.md).

Encoder and decoder regenerate the same k x m dictionary from (seed, k, m) on every platform and
NumPy version, so only integer arithmetic and correctly rounded IEEE operations are used:

1. SplitMix64 over a counter: word j = mix(seed + (j + 1) * 0x9E3779B97F4A7C15) (mod 2**64).
2. Each word gives four 16-bit uniforms u (its little-endian 16-bit lanes).
3. Entry e (column-major: e = col * k + row) is the Irwin-Hall sum of the 12 uniforms of words
   3e, 3e+1, 3e+2, centred: g = sum(u) - 6 * 65535 (an exact integer, approximately normal).
4. Each column is divided by its Euclidean norm, computed exactly as an integer sum of squares,
   then one IEEE sqrt (float64); the quotient is float64 then rounded to float32.
"""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MAX_ATOMS = 1 << 16  # indices are stored as u16
MAX_LENGTH = 4096


def splitmix64(counter: np.ndarray, seed: int) -> np.ndarray:
    """The SplitMix64 output for each counter value (uint64 arithmetic wraps mod 2**64)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (counter.astype(np.uint64) + np.uint64(1)) * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def gaussian_dictionary(seed: int, k: int, m: int) -> np.ndarray:
    """The (k, m) float32 dictionary with unit-norm columns for ``seed``."""
    if not (1 <= k <= MAX_LENGTH and 1 <= m <= MAX_ATOMS and 0 <= seed < 1 << 32):
        raise ValueError("dictionary size or seed out of range")
    n = k * m
    entry = np.arange(n, dtype=np.uint64)
    g = np.full(n, -6 * 65535, dtype=np.int64)
    # Integer sums are exact in any order: accumulate lane by lane (a few n-sized arrays at once).
    for w in range(3):
        word = splitmix64(np.uint64(3) * entry + np.uint64(w), seed)
        for i in range(4):
            g += ((word >> np.uint64(16 * i)) & np.uint64(0xFFFF)).astype(np.int64)
    cols = g.reshape(m, k)  # column-major: one row of ``cols`` per atom
    norms = np.sqrt((cols * cols).sum(axis=1).astype(np.float64))
    norms[norms == 0] = 1.0
    return (cols.astype(np.float64) / norms[:, None]).astype(np.float32).T.copy()
