"""encoder/sparse_code.py and SINR reconstruction in format/weights.py."""

from __future__ import annotations

import numpy as np
import pytest

from inrcodec.encoder import sparse_code
from inrcodec.format.dictionary import gaussian_dictionary
from inrcodec.format.weights import dequantize, sinr_reconstruct

K, M, S, SEED = 16, 64, 4, 11


def test_exactly_sparse_vectors_are_recovered():
    """Vectors that are 3-sparse in a 32 x 64 dictionary come back with their atoms, up to
    quantization (OMP recovers them: checked for this seed)."""
    k, m, s = 32, 64, 3
    rng = np.random.default_rng(0)
    a = gaussian_dictionary(SEED, k, m).astype(np.float64)
    atoms = np.sort(np.stack([rng.choice(m, s, replace=False) for _ in range(10)]), axis=1)
    coefs = rng.uniform(0.5, 1.0, (10, s)) * rng.choice([-1, 1], (10, s))
    values = np.concatenate([a[:, idx] @ c for idx, c in zip(atoms, coefs)])
    code = sparse_code.encode(values, k, m, s, SEED, bits=12)
    np.testing.assert_array_equal(code.indices, atoms)
    assert code.params == (k, m, s, SEED) and code.coef_q.shape == (10, s)
    np.testing.assert_allclose(dequantize(code.coef_q, code.coef_step), coefs, atol=code.coef_step / 2 + 1e-6)
    rec = sparse_code.decode(code, values.size)
    assert np.abs(rec - values).max() < s * code.coef_step


def test_codes_are_well_formed_and_decode_is_the_shared_reconstruction():
    values = np.random.default_rng(1).normal(size=100).astype(np.float32)  # 7 vectors, last one padded
    code = sparse_code.encode(values, K, M, 8, SEED, bits=8)
    assert code.indices.shape == (7, 8) and code.indices.dtype == np.int64
    assert (np.diff(code.indices, axis=1) > 0).all() and code.indices.max() < M  # ascending, distinct
    rec = sparse_code.decode(code, 100)
    assert rec.dtype == np.float32 and rec.shape == (100,)
    np.testing.assert_array_equal(rec, sinr_reconstruct(code.indices, code.coef_q, code.coef_step, K, M, SEED, 100))
    # More atoms per vector, smaller error.
    codes = [sparse_code.encode(values, K, M, s, SEED, 10) for s in (2, 8, 16)]
    err = [np.linalg.norm(sparse_code.decode(c, 100) - values) for c in codes]
    assert err[0] > err[1] > err[2] and err[2] < 0.02 * np.linalg.norm(values)


def test_sparsity_is_capped_by_the_dictionary():
    code = sparse_code.encode(np.ones(8), 4, 3, 16, SEED, 8)
    assert code.params[2] == 3 and code.indices.shape == (2, 3)


def test_reconstruction_order_is_the_documented_one():
    """sum over atom slots 0, 1, ... in float64, then one rounding to float32 (docs/format.md)."""
    rng = np.random.default_rng(2)
    idx = np.sort(np.stack([rng.choice(M, 3, replace=False) for _ in range(5)]), axis=1)
    q = rng.integers(-100, 100, (5, 3))
    step = 0.0123
    got = sinr_reconstruct(idx, q, step, K, M, SEED, 75)
    a = gaussian_dictionary(SEED, K, M).astype(np.float64)
    c = dequantize(q, step).astype(np.float64)
    want = np.zeros((5, K))
    for j in range(3):
        want += a[:, idx[:, j]].T * c[:, j : j + 1]
    np.testing.assert_array_equal(got, want.reshape(-1)[:75].astype(np.float32))


@pytest.mark.parametrize("n", [0, 1, 16, 17])
def test_lengths(n):
    values = np.linspace(-1, 1, n)
    code = sparse_code.encode(values, K, M, S, SEED, 8)
    assert code.indices.shape[0] == -(-n // K)
    assert sparse_code.decode(code, n).shape == (n,)
