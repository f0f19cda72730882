"""encoder/quantize.py and format/weights.py: steps, symbols, the straight-through quantizer,
and the one dequantization both sides call."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inrcodec.encoder.quantize import fake_quant, quantize, step_for
from inrcodec.format import FormatError
from inrcodec.format.weights import dequantize


@pytest.mark.parametrize("bits", [2, 6, 8, 12])
def test_step_spans_the_largest_weight(bits):
    v = np.random.default_rng(bits).normal(size=1000).astype(np.float32)
    step = step_for(v, bits)
    assert step == float(np.float32(step))  # exactly the float32 the file stores
    q = quantize(v, step)
    top = (1 << (bits - 1)) - 1
    assert np.abs(q).max() == top
    err = np.abs(dequantize(q, step).astype(np.float64) - v)
    assert err.max() <= step / 2 * (1 + 1e-6)


def test_zero_and_empty_layers():
    assert step_for(np.zeros(4), 8) == float(np.float32(1e-8 / 127))
    assert step_for(np.zeros(0), 8) > 0
    assert quantize(np.zeros(0), 0.1).shape == (0,)


def test_rounding_is_to_nearest_even():
    assert quantize(np.array([0.5, 1.5, 2.5, -0.5, -1.5]), 1.0).tolist() == [0, 2, 2, 0, -2]


def test_dequantize_is_one_float32_product():
    q = np.array([-3, 0, 7, 2**20])
    out = dequantize(q, 0.1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, q.astype(np.float32) * np.float32(0.1))
    with pytest.raises(FormatError, match="overflow"):
        dequantize(np.array([2**31 - 1]), 3e38)


def test_fake_quant_is_straight_through():
    w = torch.tensor([0.04, -0.26, 0.5], requires_grad=True)
    out = fake_quant(w, 0.1)
    torch.testing.assert_close(out.detach(), torch.tensor([0.0, -0.3, 0.5]))
    out.sum().backward()
    assert w.grad.tolist() == [1.0, 1.0, 1.0]
