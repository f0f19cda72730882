"""Suite-wide settings and the few encodes that many tests share (each costs seconds of CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import SAMPLE, tiny_config

from inrcodec import image

# The CPU is shared: one thread keeps the suite's timings predictable and leaves room for others.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def sample() -> np.ndarray:
    return image.load(SAMPLE)


@pytest.fixture(scope="session")
def crop(sample) -> np.ndarray:
    """A 48x32 crop of the sample with edges and texture."""
    return np.ascontiguousarray(sample[80:112, 100:148])


@pytest.fixture(scope="session")
def encoded_scalar(crop):
    """The crop through the whole pipeline: fit, 2 IMP rounds to 60 % density, scalar coding."""
    from inrcodec.encoder.pipeline import encode_array

    return encode_array(crop, tiny_config(), "cpu")


@pytest.fixture(scope="session")
def encoded_sinr(crop):
    """The same with every layer SINR-coded (12-sparse codes of 16-vectors over 64 atoms)."""
    from inrcodec.encoder.pipeline import encode_array

    return encode_array(crop, tiny_config(weight_coder="sinr", sinr_s=12), "cpu")
