"""The latent grids' checkerboard context model: its exact integer side, its tables, its stream."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from inrcodec.encoder import latent
from inrcodec.encoder import latent_context as lc
from inrcodec.encoder.latent import LatentConfig, level_sizes
from inrcodec.format.entropy import PRECISION
from inrcodec.format.errors import FormatError


def _model(levels: int = 3, hidden: int = 8, seed: int = 0) -> lc.ContextModel:
    torch.manual_seed(seed)
    model = lc.ContextModel(levels, hidden)
    with torch.no_grad():  # a model that predicts something: larger last layer than its init
        model.l3.weight.mul_(20)
        model.l3.bias.copy_(torch.tensor([0.3, -0.5]))
    return model


def _pyramid(sizes: list[tuple[int, int]], channels: int = 1, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.round(rng.laplace(0, 1.5, (channels, h, w))).astype(np.int64) for h, w in sizes]


def _laplace_mass(k: np.ndarray, mu: float, b: float) -> np.ndarray:
    def cdf(x):
        return np.where(x < 0, 0.5 * np.exp(x / b), 1 - 0.5 * np.exp(-x / b))

    return cdf(k + 0.5 - mu) - cdf(k - 0.5 - mu)


@pytest.mark.parametrize("index", [0, 5, 16 * 20 + 3, 16 * 40 + 8, 16 * 63 + 15])
def test_tables_sum_to_one_keep_every_symbol_and_follow_the_laplace(index):
    bound = 12
    freqs = lc.table(index, bound)
    assert int(freqs.sum()) == 1 << PRECISION and int(freqs.min()) >= 1
    u, f = divmod(index, lc.MU_STEPS)
    b = 0.05 * 2 ** (u / 6)
    mass = _laplace_mass(np.arange(-bound, bound + 1), f / lc.MU_STEPS, b)
    mass /= mass.sum()  # the table holds the residuals up to the bound
    big = mass > 1e-3  # where the table's floor of one count does not dominate
    assert np.allclose(freqs[big] / 2**PRECISION, mass[big], rtol=2e-3, atol=2e-5)


def test_training_rate_is_the_coders_table_in_bits():
    bound = 60  # wide enough that the truncation does not show at u = 40 (b about 5)
    for u, f in ((3, 0), (25, 7), (40, 12)):
        k = torch.arange(-bound, bound + 1, dtype=torch.float64)
        mu = torch.full_like(k, f / lc.MU_STEPS)
        bits = lc.laplace_bits(k, mu, torch.full_like(k, float(u))).numpy()
        freqs = lc.table(lc.MU_STEPS * u + f, bound)
        coded = PRECISION - np.log2(freqs)
        likely = freqs > 2**PRECISION * 1e-3
        assert np.allclose(bits[likely], coded[likely], atol=0.01)


def test_training_rate_has_finite_gradients_far_from_and_at_the_centre():
    y = torch.tensor([-200.0, -0.5, 0.0, 0.3, 0.5, 7.0, 500.0], requires_grad=True)
    mu = torch.zeros(7, requires_grad=True)
    u = torch.tensor([0.0, 10.0, 0.0, 63.0, 20.0, 5.0, 0.0], requires_grad=True)
    bits = lc.laplace_bits(y, mu, u)
    bits.sum().backward()
    for t in (bits, y.grad, mu.grad, u.grad):
        assert torch.isfinite(t).all()


def test_torch_and_numpy_contexts_agree():
    sizes = [(9, 11), (5, 6), (3, 3)]
    lat = _pyramid(sizes, channels=2)
    for level, q in enumerate(lat):
        parent = lat[level + 1] if level + 1 < len(lat) else None
        y = torch.from_numpy(q).double()[None]
        p = None if parent is None else torch.from_numpy(parent).double()[None]
        feats = lc._features_torch(y, p, torch.arange(q.size)).numpy().reshape(2, *q.shape[1:], lc.FEATURES)
        for anchors in (True, False):
            half = lc._half(*q.shape[1:], anchors)
            assert np.array_equal(feats[:, half].reshape(-1, lc.FEATURES), lc._features_np(q, parent, anchors))


def test_integer_network_follows_the_float_one():
    model = _model()
    arm = model.integers()
    feats = np.random.default_rng(1).integers(-4, 5, (500, lc.FEATURES))
    feats[:, -1] = np.arange(500) % 2
    # The float network with the integer weights, at the coder's resolution.
    with torch.no_grad():
        for t, a in zip([model.l1.weight, model.l1.bias, model.l2.weight, model.l2.bias, model.l3.weight,
                         model.l3.bias, model.offsets], arm):  # fmt: skip
            t.copy_(torch.from_numpy(a / 256.0))
        mu, u = model.params(torch.from_numpy(feats).float(), torch.full((500,), 1))
    base, index = lc.int_params(feats, arm, 1)
    mu_int = base + (index % lc.MU_STEPS) / lc.MU_STEPS
    assert np.abs(mu_int - mu.numpy()).max() <= 1 / 16 + 1e-6  # floor shifts vs float rounding
    u_int = index // lc.MU_STEPS
    assert np.abs(u_int - np.clip(u.numpy(), 0, 63)).max() <= 1
    assert len(set(u_int.tolist())) > 3  # the test exercises more than one table


@pytest.mark.parametrize("channels", [1, 2])
def test_latents_round_trip_through_the_range_coder(channels):
    sizes = level_sizes(20, 27, 3)
    lat = _pyramid(sizes, channels)
    arm = _model().integers()
    data = lc.encode_latents(lat, arm)
    back = lc.decode_latents(data, sizes, channels, arm)
    assert all(np.array_equal(a, b) for a, b in zip(lat, back))
    # A prediction that fits the data costs fewer bytes than the raw symbols' entropy would.
    assert len(data) < sum(q.size for q in lat) * 3


def test_all_zero_latents_of_a_zero_model_are_nothing_but_the_bound():
    sizes = level_sizes(8, 8, 2)
    lat = [np.zeros((1, h, w), np.int64) for h, w in sizes]
    arm = [np.zeros(s, np.int64) for s in lc.arm_shapes(4, 2)]
    assert lc.encode_latents(lat, arm) == lc.BOUND.pack(0)
    assert all(not q.any() for q in lc.decode_latents(lc.BOUND.pack(0), sizes, 1, arm))
    with pytest.raises(FormatError):
        lc.decode_latents(lc.BOUND.pack(0) + b"\0\0\0\0", sizes, 1, arm)


def test_corrupt_latent_block_is_refused():
    sizes = level_sizes(16, 16, 2)
    lat = _pyramid(sizes)
    arm = _model(levels=2).integers()
    data = lc.encode_latents(lat, arm)
    with pytest.raises(FormatError):
        lc.decode_latents(data + b"\0\0\0\0", sizes, 1, arm)
    with pytest.raises(FormatError):
        lc.decode_latents(data[:-1], sizes, 1, arm)


def _image(h: int = 24, w: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 7 * 30], axis=-1).astype(np.uint8)


CTX = LatentConfig(
    lam=1e-3, levels=3, hidden=8, steps=60, batch=256, lr_latent=0.1, context="checkerboard", rate_sample=200
)


def test_a_context_stream_decodes_to_the_reported_psnr_and_is_repeatable():
    arr = _image()
    fitted = latent.fit(arr, CTX)
    stream = latent.unpack(fitted.data)
    assert stream.cfg.context == "checkerboard"
    mse = np.mean((latent.render(stream, 24, 32).astype(np.float64) - arr) ** 2)
    assert fitted.psnr == pytest.approx(10 * math.log10(255**2 / mse))
    assert latent.fit(arr, CTX).data == fitted.data
    assert latent.fit(arr, replace(CTX, context="none")).data != fitted.data


def test_the_rate_estimate_from_a_sample_is_unbiased():
    model = _model()
    lat = [torch.from_numpy(q).float()[None] for q in _pyramid(level_sizes(30, 40, 3))]
    with torch.no_grad():
        full = float(model.bits(lat))
        gen = torch.Generator().manual_seed(0)
        sampled = np.mean([float(model.bits(lat, 300, gen)) for _ in range(200)])
    assert sampled == pytest.approx(full, rel=0.02)
