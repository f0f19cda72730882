"""Stage 3: SINR weight coding (arXiv 2503.19576).

The surviving weights of a layer, cut into vectors of length k, get s-sparse codes over the
seeded Gaussian dictionary A (k x m) by Orthogonal Matching Pursuit; the atom indices and the
quantized coefficients are stored, A is regenerated from its seed by the decoder.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import orthogonal_mp

from inrcodec.encoder.quantize import quantize, step_for
from inrcodec.format.dictionary import gaussian_dictionary
from inrcodec.format.weights import sinr_reconstruct


@dataclass(frozen=True)
class SinrCode:
    indices: np.ndarray  # (n_vec, s) atom indices, ascending per vector
    coef_q: np.ndarray  # (n_vec, s) quantized coefficients
    coef_step: float  # coefficient quantizer step
    params: tuple[int, int, int, int]  # (k, m, s, seed)


def encode(values: np.ndarray, k: int, m: int, s: int, seed: int, bits: int) -> SinrCode:
    """OMP codes of ``values`` (zero-padded to a multiple of k), coefficients at ``bits`` bits."""
    s = min(s, k, m)
    n_vec = -(-values.size // k)
    if n_vec == 0:  # a layer pruned away entirely: no vectors (OMP refuses an empty problem)
        none = np.zeros((0, s), dtype=np.int64)
        return SinrCode(none, none.copy(), step_for(values, bits), (k, m, s, seed))
    y = np.zeros(n_vec * k, dtype=np.float64)
    y[: values.size] = values
    y = y.reshape(n_vec, k).T  # (k, n_vec): one column per vector
    a = gaussian_dictionary(seed, k, m).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # OMP warns when a vector is fitted exactly early
        coefs = orthogonal_mp(a, y, n_nonzero_coefs=s)
    coefs = np.asarray(coefs).reshape(m, n_vec).T  # (n_vec, m)
    # The s largest-magnitude entries per vector (OMP may use fewer; zeros fill the rest).
    idx = np.argsort(-np.abs(coefs), axis=1, kind="stable")[:, :s]
    idx = np.sort(idx, axis=1)
    vals = np.take_along_axis(coefs, idx, axis=1)
    step = step_for(vals, bits)
    return SinrCode(idx.astype(np.int64), quantize(vals, step), step, (k, m, s, seed))


def decode(code: SinrCode, count: int) -> np.ndarray:
    """The weights the decoder will see (the shared reconstruction)."""
    k, m, _s, seed = code.params
    return sinr_reconstruct(code.indices, code.coef_q, code.coef_step, k, m, seed, count)
