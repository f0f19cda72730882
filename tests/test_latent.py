"""The latent-grid prototype (issue 15, stage 1): its rate, its stream and its decode."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from inrcodec.decoder.latent import render
from inrcodec.encoder import latent
from inrcodec.encoder.latent import LatentConfig, LatentImage, _LaplaceBits, level_sizes
from inrcodec.format import latent as v5
from inrcodec.format.errors import FormatError


def _reference_bits(y: torch.Tensor) -> torch.Tensor:
    """The discretised Laplace's bits written plainly, for autograd to differentiate."""
    a = y.abs()
    b = max(float(a.detach().mean()), 0.05)
    cdf = lambda x: torch.where(x < 0, 0.5 * torch.exp(x / b), 1 - 0.5 * torch.exp(-x / b))  # noqa: E731
    p = (cdf(y + 0.5) - cdf(y - 0.5)).clamp_min(2.0**-24)
    return -torch.log2(p).sum()


def test_fused_rate_matches_the_plain_formula_and_its_gradient():
    y = (torch.randn(5000, dtype=torch.float64) * 2).requires_grad_()
    (g_ref,) = torch.autograd.grad(_reference_bits(y), y)
    bits = _LaplaceBits.apply(y)
    (g,) = torch.autograd.grad(bits, y)
    assert float(bits.detach()) == pytest.approx(float(_reference_bits(y).detach()), rel=1e-9)
    assert torch.allclose(g, g_ref, atol=1e-9)


def test_rate_of_zeros_is_small_and_grows_with_spread():
    zeros = torch.zeros(1000)
    spread = torch.round(torch.randn(1000) * 3)
    assert float(_LaplaceBits.apply(zeros)) < 0.1 * 1000
    assert float(_LaplaceBits.apply(spread)) > 2 * 1000


def test_level_sizes_round_up_and_start_at_finest():
    assert level_sizes(512, 768, 3) == [(512, 768), (256, 384), (128, 192)]
    assert level_sizes(33, 17, 2, finest=1) == [(17, 9), (9, 5)]


def _image(h: int = 24, w: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 7 * 30], axis=-1)
    return arr.astype(np.uint8)


TINY = LatentConfig(lam=1e-3, levels=3, hidden=8, steps=60, batch=256, lr_latent=0.1)


@pytest.fixture(scope="module")
def fitted() -> latent.Fitted:
    return latent.fit(_image(), TINY)


def test_fit_packs_a_stream_that_decodes_to_the_reported_psnr(fitted):
    arr = _image()
    stream = v5.read(fitted.data)
    decoded = render(stream, 32, 24)
    mse = np.mean((decoded.astype(np.float64) - arr) ** 2)
    assert fitted.psnr == pytest.approx(10 * math.log10(255**2 / mse))
    assert fitted.bpp == len(fitted.data) * 8 / arr[..., 0].size
    assert fitted.psnr > 15  # it learned something: a flat grey image is about 10 dB here
    assert [q.shape[1:] for q in stream.latents] == level_sizes(24, 32, 3)
    coded = fitted.latent_bytes + fitted.synthesis_bytes
    assert coded < len(fitted.data) < coded + 60  # the rest: magic, header, frames, CRC


def test_fit_is_repeatable(fitted):
    assert latent.fit(_image(), TINY).data == fitted.data


def test_stream_decodes_at_any_size(fitted):
    stream = v5.read(fitted.data)
    big = render(stream, 64, 48)
    assert big.shape == (48, 64, 3)
    # Sampled at twice the size, the picture is the same continuous function: averaging 2x2
    # blocks lands near the native decode.
    native = render(stream, 32, 24).astype(np.float64)
    pooled = big.astype(np.float64).reshape(24, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.mean(np.abs(pooled - native)) < 8


def test_truncated_or_padded_stream_is_refused(fitted):
    data = fitted.data
    for bad in (data + b"\0", data[:-3], data[:20], data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]):
        with pytest.raises(FormatError):
            v5.read(bad)


def test_stream_records_activation_and_interpolation():
    cfg = replace(TINY, activation="relu", interpolation="bicubic", steps=30)
    fitted = latent.fit(_image(), cfg)
    stream = v5.read(fitted.data)
    assert (stream.header.activation, stream.header.interpolation) == (1, 1)
    # The reported PSNR is the file's own decode, so it must differ from a sine/bilinear decode.
    wrong = replace(stream, header=replace(stream.header, activation=0, interpolation=0))
    assert not np.array_equal(render(stream, 32, 24), render(wrong, 32, 24))


def test_config_is_checked():
    with pytest.raises(ValueError):
        LatentConfig(activation="tanh")
    with pytest.raises(ValueError):
        LatentConfig(levels=0)
    with pytest.raises(ValueError):
        LatentConfig(interpolation="nearest")
    with pytest.raises(ValueError):
        LatentConfig(layers=128)


def test_model_sees_latents_and_fourier_features():
    model = LatentImage(16, 16, LatentConfig(levels=2, pe_levels=3, hidden=8))
    assert model.linears[0].in_features == 2 + 4 * 3


def test_python_api_encodes_with_a_latent_grid_preset(fitted, monkeypatch):
    """inrcodec.encode(preset="grid-*") is the latent encoder (same bytes), with progress; the
    SIREN-only options are refused before any work, as on the command line."""
    import inrcodec
    from inrcodec import config

    monkeypatch.setitem(config.LATENT_PRESETS, "grid-low", TINY)
    calls = []
    data = inrcodec.encode(_image(), preset="grid-low", progress=lambda *a: calls.append(a))
    assert data == fitted.data
    assert calls[0][0] == "fit" and calls[-1][1:3] == (TINY.steps, TINY.steps) and calls[-1][3] > 0
    stats = inrcodec.encode_with_stats(_image(), preset="grid-low")
    assert stats.data == data and stats.psnr == fitted.psnr
    shorter = inrcodec.encode_with_stats(_image(), preset="grid-low", steps=20, seed=1)  # as --steps, --seed
    assert shorter.steps == 20 and shorter.data == latent.fit(_image(), replace(TINY, steps=20, seed=1)).data
    with pytest.raises(ValueError, match="bpp: not for the latent-grid presets"):
        inrcodec.encode("no-such-file.png", preset="grid-low", bpp=0.5)
    with pytest.raises(ValueError, match="weight_coder: not for"):
        inrcodec.encode(_image(), preset="grid-low", weight_coder="sinr")
    with pytest.raises(ValueError, match="runs on the CPU"):
        inrcodec.encode(_image(), preset="grid-low", device="cuda")
