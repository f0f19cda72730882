"""format/dictionary.py: the seeded Gaussian dictionary, pinned bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import Golden, sha256

from inrcodec.format.dictionary import MAX_ATOMS, MAX_LENGTH, gaussian_dictionary, splitmix64

# (seed, k, m): the default SINR configuration, a tiny one, and a large seed.
PINNED = [(20250325, 32, 256), (0, 8, 16), (2**32 - 1, 16, 64), (7, 1, 3)]
MASK64 = (1 << 64) - 1


def _splitmix64_py(j: int, seed: int) -> int:
    """The generator as docs/format.md words it, in Python integers (an independent implementation)."""
    z = (seed + (j + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _dictionary_py(seed: int, k: int, m: int) -> np.ndarray:
    out = np.empty((k, m), dtype=np.float32)
    for col in range(m):
        g = []
        for row in range(k):
            e = col * k + row
            words = [_splitmix64_py(3 * e + w, seed) for w in range(3)]
            g.append(sum((word >> (16 * lane)) & 0xFFFF for word in words for lane in range(4)) - 6 * 65535)
        norm = math.sqrt(float(sum(x * x for x in g))) or 1.0
        out[:, col] = [np.float32(x / norm) for x in g]
    return out


@pytest.mark.parametrize("seed,k,m", PINNED)
def test_golden_hash(seed, k, m):
    a = gaussian_dictionary(seed, k, m)
    assert a.shape == (k, m) and a.dtype == np.float32 and a.flags.c_contiguous
    Golden("dictionary.json").check(f"{seed},{k},{m}", sha256(a))


@pytest.mark.parametrize("seed,k,m", [(0, 8, 16), (2**32 - 1, 5, 7), (20250325, 32, 4)])
def test_matches_the_written_specification(seed, k, m):
    np.testing.assert_array_equal(gaussian_dictionary(seed, k, m), _dictionary_py(seed, k, m))


def test_splitmix64_known_values():
    # SplitMix64 with state 0: the reference outputs of Vigna's splitmix64.c.
    out = splitmix64(np.arange(3, dtype=np.uint64), 0)
    assert [int(x) for x in out] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_columns_unit_norm_and_roughly_gaussian():
    a = gaussian_dictionary(3, 64, 512).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(a, axis=0), 1.0, atol=1e-6)
    z = a * math.sqrt(64)  # unit-norm columns of k i.i.d. normals: entries ~ N(0, 1/k)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02
    # Irwin-Hall(12) has kurtosis 2.9; normalising columns of k = 64 lowers it by k / (k + 2) to ~2.81.
    assert 2.7 < np.mean(z**4) < 2.95


def test_seed_and_shape_matter():
    a = gaussian_dictionary(1, 8, 16)
    assert not np.array_equal(a, gaussian_dictionary(2, 8, 16))
    # Entry order is column-major in the generator: the first atoms do not depend on m.
    np.testing.assert_array_equal(gaussian_dictionary(1, 8, 32)[:, :16], a)


@pytest.mark.parametrize(
    "seed,k,m", [(0, 0, 4), (0, 4, 0), (0, MAX_LENGTH + 1, 1), (0, 1, MAX_ATOMS + 1), (-1, 4, 4), (2**32, 4, 4)]
)
def test_out_of_range(seed, k, m):
    with pytest.raises(ValueError):
        gaussian_dictionary(seed, k, m)
