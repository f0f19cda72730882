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


# The fit below's SHA-256 on each kind of machine it has run on (one thread, x86-64, torch's MKL):
# the same code (commit 2797803's encoder) gives other bytes on an AMD EPYC (Zen 4) than on the
# machines before it, as it does for the presets (grid-medium on kodim02: 7,019 bytes there, 6,979
# in the committed Kodak rows). The encoder's floats are not promised equal across machines.
UNIFORM_FIT_SHA256 = {
    "678ea56ae6fabe20ff7524a25b297574abae3a51d6ad7903d0bc8ddd75451c6b",  # the earlier sessions' machines
    "a55834695fb1290d76f3f23be6e46cfdacb8f32dab6b4a49fb466319324d6e7a",  # an AMD EPYC (Zen 4), 2026-12-04
}


def test_a_uniform_fit_is_the_bytes_it_always_was():
    """The encoder's bytes, pinned on the kinds of machine it has run on (UNIFORM_FIT_SHA256): the
    samplers' weighted loss once rounded the plain one differently and moved every grid file
    (the mean of per-pixel means is not torch.mean to the last bit), which no looser test saw.
    A change here is a change of every file the presets write; on another kind of CPU, compare
    with the previous commit's fit there before adding its hash (``python -m
    benchmarks.machine_bytes`` prints it, and what MKL's settings make of it)."""
    import hashlib

    from benchmarks.machine_bytes import tiny_fit

    data = tiny_fit()
    assert hashlib.sha256(data).hexdigest() in UNIFORM_FIT_SHA256


def test_the_importance_sampler_weights_the_loss_and_learns_the_errors():
    """With weights the step's D is the weighted mean of each pixel's squared error (its errors
    kept for the sampler); all-ones weights give the plain loss (to rounding); a fit with the importance
    sampler repeats to the bit, draws other pixels than the permutation, and still learns."""
    cfg = replace(TINY, context="checkerboard", rate_sample=64)
    model = LatentImage(24, 32, cfg)
    arr = _image()
    xy, colours = latent.coords.grid(24, 32), torch.from_numpy(latent.to_unit(arr).reshape(-1, 3))
    pixels = torch.arange(0, 24 * 32, 3)
    losses = []
    for weights in (None, torch.ones(len(pixels)), torch.linspace(0.5, 1.5, len(pixels))):
        step = latent.Step(model, torch.Generator().manual_seed(0))
        loss, mse = step.loss(xy, colours, pixels, 0.9, weights)
        sq = ((model(xy[pixels], model.rounded()) - colours[pixels]) ** 2).mean(1)
        if weights is None:
            assert step.errors is None  # kept only for a sampler
        else:
            assert torch.allclose(step.errors, sq.detach(), atol=1e-6)
        want = (sq.detach() * (1 if weights is None else weights)).mean() / 4
        assert float(mse.detach()) == pytest.approx(float(want), rel=1e-5)
        losses.append(float(loss.detach()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and losses[2] != pytest.approx(losses[0], rel=1e-6)
    sampled = replace(TINY, sampler="importance")
    first = latent.fit(arr, sampled)
    assert latent.fit(arr, sampled).data == first.data
    assert first.data != latent.fit(arr, TINY).data and first.psnr > 15
    with pytest.raises(ValueError, match="sampler"):
        replace(TINY, sampler="error")
    with pytest.raises(ValueError, match="sampler_share"):
        replace(TINY, sampler="importance", sampler_share=1.0)
    assert latent.fit(arr, replace(sampled, sampler_share=0.75)).data != first.data


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
    SIREN-only options, and steps with a cap, are refused before any work, as on the command line."""
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
    with pytest.raises(ValueError, match="steps: not with bpp"):  # a cap searches the ladder (test_latent_rate)
        inrcodec.encode("no-such-file.png", preset="grid-low", bpp=0.5, steps=5)
    with pytest.raises(ValueError, match="weight_coder: not for"):
        inrcodec.encode(_image(), preset="grid-low", weight_coder="sinr")
    # a device this machine has, then one the grid encoder trains on, as the command line checks
    said = "trains on cpu or cuda" if torch.backends.mps.is_available() else "device mps: no MPS device here"
    with pytest.raises(ValueError, match=said):
        inrcodec.encode(_image(), preset="grid-low", device="mps")
    assert inrcodec.encode(_image(), preset="grid-low", device="cpu") == data


@pytest.mark.parametrize("done", [0.1, 0.9])  # noisy, rounded
@pytest.mark.parametrize("context", ["none", "checkerboard"])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("quantizer", ["uniform", "soft", "soft-fast"])
def test_training_step_is_the_models_loss_at_the_sampled_pixels(done, context, interpolation, channels, quantizer):
    """The step gathers taps, rated latents and contexts from the flat latents; its loss and its
    gradient are those of the model written plainly: grid_sample over the whole pyramid noised
    with the step's noise (the table at the offset the step drew) or rounded, and the rate of
    every latent, or of the step's weighted sample of them under the context model."""
    cfg = LatentConfig(
        levels=3,
        channels=channels,
        pe_levels=2,
        hidden=8,
        interpolation=interpolation,
        context=context,
        rate_sample=50,
        quantizer=quantizer,
    )
    torch.manual_seed(0)
    model = LatentImage(13, 17, cfg)
    with torch.no_grad():
        model.flat.normal_(0, 2)
    arr = np.random.default_rng(0).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    xy, colours = latent.coords.grid(13, 17), torch.from_numpy(latent.to_unit(arr).reshape(-1, 3))
    pixels = torch.randperm(13 * 17)[:100]
    step = latent.Step(model, torch.Generator().manual_seed(0))
    replay = torch.Generator().set_state(step.gen.get_state())  # the draws the step will make, in order
    loss, _ = step.loss(xy, colours, pixels, done)
    (grad,) = torch.autograd.grad(loss, model.flat)

    pyr, total = model.pyramid, model.pyramid.total
    sample = pyr.sample(cfg.rate_sample, replay) if context == "checkerboard" else None
    noise = None
    if done < cfg.noise_fraction:
        offset = int(torch.randint(total, (1,), generator=replay))
        noise = step.noise[offset : offset + total]
    if quantizer == "soft":  # the whole pyramid through C3's proxy
        flat = latent._soft_quantize(model.flat, noise, done / cfg.noise_fraction if noise is not None else 1.0)
    elif quantizer == "soft-fast" and noise is not None:  # its formulas, a at the stage's value
        t = latent.proxy_schedule(done / cfg.noise_fraction)[0]
        a = latent.stage_a(done / cfg.noise_fraction)
        flat = latent.soft_round_mean(latent.soft_round(model.flat, t) + latent.kumaraswamy_noise(noise, a), t)
    elif quantizer == "soft-fast":
        soft = latent.soft_round(model.flat, latent.SOFT_STE)
        flat = soft + (torch.round(model.flat) - soft).detach()
    elif noise is not None:
        flat = model.flat + noise
    else:
        flat = model.flat + (torch.round(model.flat) - model.flat).detach()
    lat = pyr.views(flat)
    mse = torch.mean((model(xy[pixels], lat) - colours[pixels]) ** 2) / 4
    if context == "none":
        bits = sum(_LaplaceBits.apply(y) for y in lat)
    else:
        at, levels, weights = sample
        assert len(set(weights.tolist())) > 1  # a sample, weighted level by level
        index, mask, anchor = pyr.contexts(at, levels)
        bits = (model.arm.bits(flat[at], flat[index] * mask, anchor, levels) * weights).sum()
    ref = mse + cfg.lam * bits / (13 * 17)
    (ref_grad,) = torch.autograd.grad(ref, model.flat)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    assert torch.allclose(grad, ref_grad, rtol=1e-4, atol=1e-7)
    if quantizer == "uniform" or done < cfg.noise_fraction:  # C3's rounded steps leave the latents be
        assert float(grad.abs().sum()) > 0


def test_noise_is_one_value_per_latent_in_a_step():
    """Early steps add uniform noise to what they read; a latent read twice in a step (a tap of
    two pixels, a context) sees one value, as if the whole pyramid had been noised; the next
    step draws again; late steps round."""
    cfg = LatentConfig(levels=2, pe_levels=0, hidden=4, context="checkerboard", rate_sample=0)
    model = LatentImage(8, 8, cfg)
    with torch.no_grad():
        model.flat.normal_(0, 2)
    step = latent.Step(model, torch.Generator().manual_seed(0))
    index = torch.tensor([3, 5, 3, 70, 5, 0, 79])
    with torch.no_grad():
        first, second = step.read(index, 0.1), step.read(index, 0.1)
        late = step.read(index, 0.9)
    for v in (first, second):
        delta = v - model.flat[index]
        assert float(delta.detach().abs().max()) <= 0.5 and len(set(delta.tolist())) == 5
        assert v[0] == v[2] and v[1] == v[4]
    assert not torch.equal(first, second)
    assert torch.equal(late, torch.round(model.flat[index]))


def test_soft_rounding_is_c3s():
    """soft_round and the conditional mean after noise are Agustsson & Theis' (2020, section 4.1)
    as C3 uses them, written here from their definitions: the identity at a high temperature,
    rounding at a low one, the mean the inverse of soft_round shifted by half a bin."""

    def reference(x: float, t: float) -> float:
        m = math.floor(x) + 0.5
        return m + math.tanh((x - m) / t) / (2 * math.tanh(0.5 / t))

    def inverse(y: float, t: float) -> float:
        m = math.floor(y) + 0.5
        return m + t * math.atanh((y - m) * 2 * math.tanh(0.5 / t))

    for x in (-2.7, -0.2, 0.3, 1.49, 3.51):
        for t in (0.3, 0.1):
            assert float(latent.soft_round(torch.tensor(x), t)) == pytest.approx(reference(x, t), abs=1e-5)
            mean = float(latent.soft_round_mean(torch.tensor(x), t))
            assert mean == pytest.approx(inverse(x - 0.5, t) + 0.5, abs=1e-4)
        assert float(latent.soft_round(torch.tensor(x), 100.0)) == pytest.approx(x, abs=1e-4)
        if abs(x - round(x)) < 0.4:  # away from a bin's edge
            assert float(latent.soft_round(torch.tensor(x), 0.01)) == pytest.approx(round(x), abs=1e-4)


def test_soft_quantizer_noise_and_rounding_phases():
    """Noisy steps stay within a bin of the value and have a gradient; at the end of the noisy
    steps the noise is uniform (Kumaraswamy with a = b = 1); the rounded steps give exactly the
    rounded latents, with a gradient only near a bin's edge (C3's soft-round at 1e-4)."""
    torch.manual_seed(0)
    values = (torch.randn(20000) * 3).requires_grad_(True)
    uniform = torch.rand(20000) - 0.5
    for progress in (0.0, 0.5, 1.0):
        q = latent._soft_quantize(values, uniform, progress)
        (grad,) = torch.autograd.grad(q.sum(), values)
        assert torch.isfinite(q).all() and torch.isfinite(grad).all()
        assert float((q - values).detach().abs().max()) <= 1.0
    # C3's b puts the Kumaraswamy mode at 1/2: at a = 2 (the start) b = 2.5, and the noise is
    # the inverse CDF of the uniform draw, so its density peaks at 0 after the shift
    start = latent._soft_quantize(torch.zeros(20000), uniform, 0.0)  # soft_round(0) = 0
    t0 = latent.SOFT_TEMPERATURE[0]
    a, b = latent.KUMARASWAMY_A[0], 2.5
    kumaraswamy = (1 - (1 - (uniform + 0.5)) ** (1 / b)) ** (1 / a) - 0.5
    assert torch.allclose(start, latent.soft_round_mean(kumaraswamy, t0), atol=1e-5)
    counts = torch.histc(kumaraswamy, bins=10, min=-0.5, max=0.5)
    assert int(counts.argmax()) in (4, 5) and counts[4:6].sum() > 2 * counts[:2].sum()
    # a = 1 at the end: the Kumaraswamy draw is the uniform one
    t = latent.SOFT_TEMPERATURE[1]
    plain = latent.soft_round_mean(latent.soft_round(values, t) + uniform, t)
    assert torch.allclose(latent._soft_quantize(values, uniform, 1.0), plain, atol=1e-5)
    # "soft"'s values are those its committed results were made with, float for float: the
    # formula as it was written then (784ff71), inline
    for progress in (0.0, 0.37, 1.0):
        t = 0.3 + (0.1 - 0.3) * progress
        a = 2.0 + (1.0 - 2.0) * progress
        b = (2**a * (a - 1) + 1) / a
        u = (uniform + 0.5).clamp(1e-7, 1 - 1e-7)
        noise = (1 - (1 - u) ** (1 / b)) ** (1 / a) - 0.5
        m = torch.floor(values) + 0.5
        sr = m + torch.tanh((values - m) / t) / (2 * math.tanh(0.5 / t))
        y = sr + noise - 0.5
        m = torch.floor(y) + 0.5
        frozen = m + t * torch.atanh((y - m) * (2 * math.tanh(0.5 / t))) + 0.5
        assert torch.equal(latent._soft_quantize(values, uniform, progress), frozen)
    rounded = latent._soft_quantize(values, None, 1.0)
    (grad,) = torch.autograd.grad(rounded.sum(), values)
    assert torch.equal(rounded.detach(), torch.round(values.detach()))
    assert float((grad > 1e-3).float().mean()) < 0.01


@pytest.mark.parametrize("t", [0.3, 0.2, 0.1])
def test_fused_soft_proxy_is_the_formulas_with_their_gradient(t):
    """The "soft-fast" proxy computes soft_round_mean(soft_round(x) + noise) and its derivative in one pass,
    and rounds with a soft-round's gradient at SOFT_STE in another: the same values, float for
    float, and the same gradients within float rounding as autograd through the written formulas,
    also right at a bin's centre and edge; the inputs untouched."""
    torch.manual_seed(0)
    x = torch.cat([torch.randn(5000) * 3, torch.tensor([0.0, 0.5, -0.5, 1.5, 2.0 - 1e-4])])
    noise = latent.kumaraswamy_noise(torch.rand(x.numel()) - 0.5, 1.5)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ref = latent.soft_round_mean(latent.soft_round(a, t) + noise, t)
    kept = noise.clone()
    fused = latent._SoftNoise.apply(b, noise, t)
    assert torch.equal(noise, kept)
    weights = torch.rand(x.numel())  # a gradient that is not all ones
    (ref_grad,) = torch.autograd.grad((ref * weights).sum(), a)
    (grad,) = torch.autograd.grad((fused * weights).sum(), b)
    assert torch.equal(fused, ref)  # the same additions in the same pairs: the same floats
    assert torch.isfinite(grad).all() and torch.allclose(grad, ref_grad, rtol=1e-3, atol=1e-5)
    assert torch.equal(x, b.detach())  # the in-place work never touches the input
    soft = latent.soft_round(a, latent.SOFT_STE)
    ref = soft + (torch.round(a) - soft).detach()
    fused = latent._SoftRounded.apply(b)
    (ref_grad,) = torch.autograd.grad((ref * weights).sum(), a)
    (grad,) = torch.autograd.grad((fused * weights).sum(), b)
    assert torch.equal(fused, torch.round(x)) and torch.allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)


def test_soft_fast_transforms_the_noise_table_once_a_stage():
    """The "soft-fast" proxy holds Kumaraswamy's a at its mid-stage value over each of KUMARASWAMY_STAGES
    stages of the noisy steps (going from 2 to 1 as "soft"'s does) and builds the stage's table
    once: steps within a stage read the same table; the next stage makes a new one."""
    stages = latent.KUMARASWAMY_STAGES
    assert latent.stage_a(0.0) == pytest.approx(2 - 0.5 / stages)
    assert latent.stage_a(0.999) == pytest.approx(1 + 0.5 / stages)
    assert len({latent.stage_a(k / (4 * stages)) for k in range(4 * stages)}) == stages
    cfg = LatentConfig(levels=2, pe_levels=0, hidden=4, quantizer="soft-fast")
    step = latent.Step(LatentImage(8, 8, cfg), torch.Generator().manual_seed(0))
    first = step.table(0.01)
    assert step.table(0.5 / stages) is first and step.table(1.5 / stages) is not first
    assert torch.equal(first, latent.kumaraswamy_noise(step.noise, latent.stage_a(0.0)))
    assert step.table(0.99).sub(step.noise).abs().max() < 0.05  # a near 1: nearly uniform


def test_a_soft_quantizer_fit_packs_a_stream_and_is_recorded():
    """A fit with C3's proxy writes a version 5 file like any other (the decoder never sees how
    training quantized); results record the field only when it is not the default, so rows made
    before it keep their fingerprints."""
    from inrcodec.config import latent_record

    for quantizer in ("soft", "soft-fast"):
        cfg = replace(TINY, quantizer=quantizer)
        fitted = latent.fit(_image(), cfg)
        stream = v5.read(fitted.data)
        img = render(stream, 32, 24)
        err = np.mean((img.astype(np.float64) - _image().astype(np.float64)) ** 2)
        assert fitted.psnr == pytest.approx(10 * math.log10(255**2 / err), abs=1e-6)
        assert latent_record(cfg)["quantizer"] == quantizer
    assert "quantizer" not in latent_record(TINY)
    with pytest.raises(ValueError, match="quantizer"):
        LatentConfig(quantizer="hard")


def test_adam_step_scales_only_the_finest_grids_update():
    """The finest grid's own learning rate: its update is the plain step's times the factor, the
    rest of the parameter's (and Adam's state) exactly the plain step's; at 1 the plain step."""
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(50, generator=gen)
    grad = torch.randn(50, generator=gen)
    moved = {}
    for factor in (1.0, 0.3):
        p = start.clone().requires_grad_()
        opt = torch.optim.Adam([p], lr=0.1, fused=True)
        for _ in range(3):
            p.grad = grad.clone()
            latent.adam_step(opt, p.detach()[:20], factor)
        moved[factor] = (p.detach() - start, opt.state[p]["exp_avg"].clone())
    (plain, m_plain), (scaled, m_scaled) = moved[1.0], moved[0.3]
    assert torch.allclose(scaled[:20], 0.3 * plain[:20], rtol=1e-5, atol=1e-7)
    assert torch.equal(scaled[20:], plain[20:]) and torch.equal(m_scaled, m_plain)
    # the next level's factor (lr_second) scales its own slice only
    p = start.clone().requires_grad_()
    opt = torch.optim.Adam([p], lr=0.1, fused=True)
    for _ in range(3):
        p.grad = grad.clone()
        latent.adam_step(opt, p.detach()[:20], 0.3, p.detach()[20:35], 0.5)
    both = p.detach() - start
    assert torch.allclose(both[:20], 0.3 * plain[:20], rtol=1e-5, atol=1e-7)
    assert torch.allclose(both[20:35], 0.5 * plain[20:35], rtol=1e-5, atol=1e-7)
    assert torch.equal(both[35:], plain[35:])


def test_a_finest_learning_rate_fit_packs_a_stream_and_is_recorded():
    from inrcodec.config import latent_record

    cfg = replace(TINY, lr_finest=0.3)
    fitted = latent.fit(_image(), cfg)
    stream = v5.read(fitted.data)
    err = np.mean((render(stream, 32, 24).astype(np.float64) - _image()) ** 2)
    assert fitted.psnr == pytest.approx(10 * math.log10(255**2 / err), abs=1e-6) and fitted.psnr > 15
    assert fitted.data != latent.fit(_image(), TINY).data
    assert latent.fit(_image(), cfg).data == fitted.data  # repeatable
    assert latent_record(cfg)["lr_finest"] == 0.3
    assert "lr_finest" not in latent_record(TINY)
    for bad in (0.0, -1.0, 11.0):
        with pytest.raises(ValueError, match="lr_finest"):
            LatentConfig(lr_finest=bad)
        with pytest.raises(ValueError, match="lr_second"):
            LatentConfig(lr_second=bad)
    assert "lr_second" not in latent_record(TINY) and latent_record(replace(TINY, lr_second=0.5))["lr_second"] == 0.5


def test_fit_scales_the_finest_grids_update_in_place(monkeypatch):
    """fit() hands adam_step a view of the finest level itself: the start of the flat latents,
    that level's size, sharing the parameter's memory."""
    seen = []
    plain = latent.adam_step

    def spy(opt, finest, factor, second, second_factor):
        flat = opt.param_groups[0]["params"][0]
        at = second.data_ptr() - flat.data_ptr()
        seen.append((finest.data_ptr() == flat.data_ptr(), finest.numel(), factor, at, second.numel(), second_factor))
        plain(opt, finest, factor, second, second_factor)

    monkeypatch.setattr(latent, "adam_step", spy)
    latent.fit(_image(), replace(TINY, lr_finest=0.3, lr_second=0.5, steps=3))
    size = 24 * 32  # the finest level, then the next (half its side) right after it: 4 bytes a latent on
    assert seen == [(True, size, 0.3, size * 4, 12 * 16, 0.5)] * 3


def test_network_bits_count_from_the_init_and_pull_towards_it():
    """LatentImage.network_bits: none at the init (version 7 codes residuals from it), more as a
    tensor moves away, and its gradient points back; from a random init it counts the values."""
    from inrcodec.config import LATENT_PRESETS

    cfg = replace(LATENT_PRESETS["grid-low"], network_rate=1.0)
    model = LatentImage(32, 32, cfg)
    assert float(model.network_bits().detach()) == 0.0
    with torch.no_grad():
        model.linears[1].weight.add_(0.05)
    bits = model.network_bits()
    assert float(bits.detach()) > 0
    bits.backward()
    assert (model.linears[1].weight.grad > 0).all()  # descending moves each weight back down
    plain = LatentImage(32, 32, replace(cfg, init=""))
    # the values themselves cost more than a small change from the init
    assert float(plain.network_bits().detach()) > float(bits.detach())


def test_network_rate_zero_leaves_the_fit_as_it_was():
    """The field defaults to 0 and is recorded only away from it: earlier fingerprints hold."""
    from inrcodec.config import latent_record

    assert "network_rate" not in latent_record(TINY)
    assert latent_record(replace(TINY, network_rate=0.5))["network_rate"] == 0.5
    with pytest.raises(ValueError, match="network_rate"):
        replace(TINY, network_rate=-1.0)
    a = latent.fit(_image(), replace(TINY, steps=20)).data
    b = latent.fit(_image(), replace(TINY, steps=20, network_rate=0.0)).data
    assert a == b
    c = latent.fit(_image(), replace(TINY, steps=20, network_rate=1.0)).data
    assert c != a


@pytest.mark.parametrize(("quantizer", "done"), [("soft-fast", 0.2), ("soft-fast", 0.9), ("uniform", 0.2)])
def test_a_training_step_keeps_every_tensor_on_the_models_device(quantizer, done):
    """fit(device="cuda") cannot run here; the step's device handling can. With the model on the
    meta device (shapes, no data), every aten op of a step's forward and backward at the presets'
    settings (the checkerboard context model, the networks' rate, both quantizers) takes tensors
    of one device only (a 0-dim CPU scalar aside, as CUDA allows): a table or draw left on the CPU
    would fail on a GPU. (``context="none"``, no preset's, reads a value mid-step, which the meta
    device cannot give: it is not covered here.)"""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class Mixed(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.found: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            devices = {
                t.device.type
                for t in tree_leaves((args, kwargs or {}))
                if isinstance(t, torch.Tensor) and not (t.dim() == 0 and t.device.type == "cpu")
            }
            if len(devices) > 1 and func is not torch.ops.aten._to_copy.default:
                self.found.append(f"{func}: {sorted(devices)}")
            return func(*args, **(kwargs or {}))

    cfg = LatentConfig(
        levels=3, pe_levels=2, hidden=8, context="checkerboard", rate_sample=50, quantizer=quantizer, network_rate=1.0
    )
    model = LatentImage(13, 17, cfg).to("meta")
    step = latent.Step(model, torch.Generator().manual_seed(0))
    assert step.noise.device.type == "meta" and step.taps.row_at.device.type == "meta"
    xy = latent.coords.grid(13, 17).to("meta")
    colours = torch.zeros(13 * 17, 3, device="meta")
    pixels = torch.randperm(13 * 17)[:100].to("meta")
    with Mixed() as mode:
        loss, _ = step.loss(xy, colours, pixels, done)
        loss.backward()
    assert mode.found == []
    assert model.flat.grad is not None and model.flat.grad.device.type == "meta"
    assert model.linears[0].weight.grad.device.type == "meta"


def test_the_networks_rate_is_the_formula_it_was_before_the_device_option():
    """Taking a device turned the networks' counters into buffers and made their zeros and the
    context network's step on the parameters' device; on the CPU the rate is the old expression
    bit for bit (written out here as it was), so a CPU fit writes the bytes it wrote before (two
    fits checked against commit 56b5578 by hand: the same SHA-256; a pinned digest would tie the
    tests to one CPU's rounding)."""
    from inrcodec import config

    cfg = replace(config.LATENT_PRESETS["grid-low"], network_rate=1.0)  # from its shipped init
    torch.manual_seed(0)
    model = LatentImage(16, 24, cfg)
    with torch.no_grad():
        for t in model.coded():
            t.add_(torch.randn_like(t) * 0.01)
    coded = model.coded()
    flat = torch.cat([t.reshape(-1) for t in coded])
    k = len(coded)
    distance = torch.zeros(k).index_add(0, model._segment, (flat - model._start).abs())
    top = torch.zeros(k).scatter_reduce(0, model._segment, flat.abs(), "amax")
    step = torch.where(model._synthesis, 2 * top / 255, torch.tensor(2.0**-5)).clamp_min(1e-12)
    m = distance / (model._count * step)
    before = (model._count * torch.log2(1 + 2 * math.e * m)).sum()
    assert torch.equal(model.network_bits().detach(), before.detach())
    assert {n for n, _ in model.named_buffers()} >= {"_start", "_segment", "_count", "_synthesis"}
    assert not any(n.startswith("_") for n in model.state_dict())  # not persistent: no state_dict moved
