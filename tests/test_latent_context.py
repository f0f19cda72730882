"""The latent grids' checkerboard context model: its exact integer side, its tables, its stream."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import context_model, latent_pyramid

from inrcodec.decoder.latent import render
from inrcodec.encoder import latent
from inrcodec.encoder import latent_context as lc
from inrcodec.encoder.latent import LatentConfig, level_sizes
from inrcodec.format import checkerboard as cb
from inrcodec.format.entropy import PRECISION
from inrcodec.format.latent import read


def test_training_rate_is_the_coders_table_in_bits():
    bound = 60  # wide enough that the truncation does not show at u = 40 (b about 5)
    for u, f in ((3, 0), (25, 7), (40, 12)):
        k = torch.arange(-bound, bound + 1, dtype=torch.float64)
        mu = torch.full_like(k, f / cb.MU_STEPS)
        bits = lc.laplace_bits(k, mu, torch.full_like(k, float(u))).numpy()
        freqs = cb.table(cb.MU_STEPS * u + f, bound)
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


@pytest.mark.parametrize("scheme", [cb.CHECKERBOARD, cb.FOUR_PASS], ids=["checkerboard", "four-pass"])
def test_training_contexts_are_the_coders(scheme):
    """The flat positions and masks the training step reads give the decoder's integer contexts,
    level by level, for every decode group (two channels, odd sizes, a 1x1-parent edge)."""
    sizes = [(9, 11), (5, 6), (3, 3)]
    lat = latent_pyramid(sizes, channels=2)
    pyr = lc.Pyramid([q.shape for q in lat])
    flat = torch.from_numpy(np.concatenate([q.reshape(-1) for q in lat]))
    at, levels, weights = pyr.sample(0, None)
    assert torch.equal(at, torch.arange(pyr.total)) and torch.all(weights == 1)
    index, mask, flags = pyr.contexts(at, levels, scheme)
    feats = torch.cat([flat[index] * mask, flags.long()], 1).numpy()
    for level, q in enumerate(lat):
        parent = lat[level + 1] if level + 1 < len(lat) else None
        mine = feats[pyr.offsets[level] : pyr.offsets[level] + q.size].reshape(*q.shape, scheme.features)
        for group in range(len(scheme.groups)):
            here = cb.member(scheme, *q.shape[1:], group)
            assert np.array_equal(mine[:, here].reshape(-1, scheme.features), cb.features(q, parent, scheme, group))


def test_rate_sample_is_stratified():
    """Each level gets draws in proportion to its size (at least one), all inside the level."""
    pyr = lc.Pyramid([(1, 40, 50), (1, 20, 25), (1, 2, 2)])
    at, levels, weights = pyr.sample(300, torch.Generator().manual_seed(0))
    assert [int((levels == i).sum()) for i in range(3)] == [240, 60, 1]
    for level, (o, n) in enumerate(zip(pyr.offsets, pyr.sizes)):
        mine = levels == level
        assert torch.all((at[mine] >= o) & (at[mine] < o + n))
        assert torch.allclose(weights[mine], torch.full((int(mine.sum()),), n / int(mine.sum())))


def test_integer_network_follows_the_float_one():
    model = context_model()
    arm = model.integers()
    feats = np.random.default_rng(1).integers(-4, 5, (500, cb.FEATURES))
    feats[:, -1] = np.arange(500) % 2
    # The float network with the integer weights, at the coder's resolution.
    with torch.no_grad():
        for t, a in zip([model.l1.weight, model.l1.bias, model.l2.weight, model.l2.bias, model.l3.weight,
                         model.l3.bias, model.offsets], arm):  # fmt: skip
            t.copy_(torch.from_numpy(a / 256.0))
        mu, u = model.params(torch.from_numpy(feats).float(), torch.full((500,), 1))
    base, index = cb.int_params(feats, arm, 1)
    mu_int = base + (index % cb.MU_STEPS) / cb.MU_STEPS
    assert np.abs(mu_int - mu.numpy()).max() <= 1 / 16 + 1e-6  # floor shifts vs float rounding
    u_int = index // cb.MU_STEPS
    assert np.abs(u_int - np.clip(u.numpy(), 0, 63)).max() <= 1
    assert len(set(u_int.tolist())) > 3  # the test exercises more than one table


def _image(h: int = 24, w: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 7 * 30], axis=-1).astype(np.uint8)


CTX = LatentConfig(
    lam=1e-3, levels=3, hidden=8, steps=60, batch=256, lr_latent=0.1, context="checkerboard", rate_sample=200
)


def test_a_context_stream_decodes_to_the_reported_psnr_and_is_repeatable():
    arr = _image()
    fitted = latent.fit(arr, CTX)
    stream = read(fitted.data)
    assert stream.header.context == 1 and fitted.context_bytes > 0
    mse = np.mean((render(stream, 32, 24).astype(np.float64) - arr) ** 2)
    assert fitted.psnr == pytest.approx(10 * math.log10(255**2 / mse))
    assert latent.fit(arr, CTX).data == fitted.data
    assert latent.fit(arr, replace(CTX, context="none")).data != fitted.data


def _rate(model, pyr: lc.Pyramid, flat: torch.Tensor, sample: int, gen=None) -> float:
    at, levels, weights = pyr.sample(sample, gen)
    index, mask, anchor = pyr.contexts(at, levels)
    return float((model.bits(flat[at], flat[index] * mask, anchor, levels) * weights).sum())


def test_the_rate_estimate_from_a_sample_is_unbiased():
    model = context_model()
    lat = latent_pyramid(level_sizes(30, 40, 3))
    pyr = lc.Pyramid([q.shape for q in lat])
    flat = torch.from_numpy(np.concatenate([q.reshape(-1) for q in lat])).float()
    with torch.no_grad():
        full = _rate(model, pyr, flat, 0)
        gen = torch.Generator().manual_seed(0)
        sampled = np.mean([_rate(model, pyr, flat, 300, gen) for _ in range(200)])
    assert sampled == pytest.approx(full, rel=0.02)
