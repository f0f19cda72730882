"""encoder/fit.py: training on random pixel batches, masks, snapshots, evaluation."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from inrcodec.config import FitConfig
from inrcodec.encoder.fit import Target, evaluate, mse_to_psnr, train
from inrcodec.encoder.mask import Mask
from inrcodec.siren import Architecture, Siren

CFG = FitConfig(steps=150, batch=256, lr=2e-3, lr_final=1e-4, seed=0)


@pytest.fixture
def target(crop):
    return Target.of(crop[:16, :16], torch.device("cpu"))


def _net(seed: int = 0) -> Siren:
    return Siren(Architecture(hidden=16, layers=2), torch.Generator().manual_seed(seed))


def test_mse_to_psnr():
    assert mse_to_psnr(4.0) == 0.0
    assert mse_to_psnr(4e-2) == pytest.approx(20.0)
    assert mse_to_psnr(0.0) == pytest.approx(10 * math.log10(4e12))  # MSE floored at 1e-12: finite


def test_training_fits_and_repeats(target):
    net = _net()
    before = evaluate(net, target)
    calls = []
    train(net, target, CFG, CFG.steps, progress=lambda d, t, p: calls.append((d, t, p)))
    after = evaluate(net, target)
    assert after > before + 10 and after > 25, (before, after)
    assert [c[0] for c in calls] == list(range(25, 151, 25)) and all(c[1] == 150 for c in calls)
    again = _net()
    train(again, target, CFG, CFG.steps)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), again.parameters()))  # same seed, same net


def test_masked_weights_stay_exactly_zero(target):
    net = _net()
    mask = Mask.dense(list(net.weights)).prune(list(net.weights), 0.5, "random", torch.Generator().manual_seed(1))
    train(net, target, CFG, 30, mask=mask)
    for w, k in zip(net.weights, mask.keep):
        assert not w.detach()[~k].any() and w.detach()[k].all()


def test_snapshots_for_rewinding(target):
    net = _net()
    init = net.state()
    snap0 = train(net, target, CFG, 5, snapshot_at=0)
    assert all(torch.equal(a, b) for a, b in zip(snap0[0], init[0]))
    net = _net()
    snap = train(net, target, CFG, 20, snapshot_at=10)
    short = _net()
    train(short, target, CFG, 20, progress=None)  # the snapshot is mid-run, not the end
    assert not torch.equal(snap[0][1], short.weights[1].detach())
    assert train(_net(), target, CFG, 5) is None


def test_region_and_weight_fn(target):
    net = _net()
    region = torch.arange(0, 16)  # the first row only
    train(net, target, CFG, 100, region=region)
    sub = type(target)(target.coords[region], target.colours[region])
    assert evaluate(net, sub) > evaluate(net, target) + 3
    seen = []
    train(_net(), target, CFG, 3, weight_fn=lambda ws: seen.append(len(ws)) or [w * 1.0 for w in ws])
    assert seen == [3, 3, 3]


def test_evaluate_quantizes_to_8_bits_and_clamps(target):
    net = _net()
    n = target.n
    colours = target.colours.clone()
    exact = type(target)(target.coords, colours)
    with torch.no_grad():
        for w in net.weights:
            w.zero_()
        net.biases[-1].fill_(5.0)  # output far above 1: clamped to white
    exact.colours[:] = 1.0
    perfect = mse_to_psnr(0.0)
    assert evaluate(net, exact) == pytest.approx(perfect)
    assert evaluate(net, exact, pixels=7) == pytest.approx(perfect) and n > 7
    exact.colours[:] = 1.0 - 1 / 255  # 254.5 on the 8-bit scale: half a level away
    assert evaluate(net, exact) == pytest.approx(mse_to_psnr((1 / 255) ** 2), rel=1e-5)
    assert math.isfinite(evaluate(_net(), target, pixels=10_000))
    assert np.isfinite(evaluate(_net(), target, chunk=7))


@pytest.mark.parametrize("pe_levels", [0, 6])
def test_fused_step_is_the_same_function(pe_levels):
    """encoder/fused.py's loss and gradients are the reference path's (Siren.forward and autograd)
    within float rounding, under a mask and a weight transform as in pruning and QAT."""
    from inrcodec.encoder import fused

    gen = torch.Generator().manual_seed(3)
    net = Siren(Architecture(hidden=24, layers=3, pe_levels=pe_levels), torch.Generator().manual_seed(1))
    coords = torch.rand(500, 2, generator=gen) * 2 - 1
    colours = torch.rand(500, 3, generator=gen) * 2 - 1
    mask = Mask.dense(list(net.weights)).prune(list(net.weights), 0.3, "random", gen)
    idx = torch.randint(0, 500, (256,), generator=gen)

    def weights():
        return [w * 0.5 for w in mask.apply(list(net.weights))]

    ref = torch.mean((net(coords[idx], weights()) - colours[idx]) ** 2)
    ref_grads = torch.autograd.grad(ref, list(net.parameters()))
    ws = fused.Workspace()
    for rows in (fused.table(coords, colours, pe_levels), None):  # gathered from the table, or computed
        x, y = fused.gather(ws, rows, coords, colours, pe_levels, idx)
        loss = fused.mse(net, x, y, ws, weights(), list(net.biases))[0]
        grads = torch.autograd.grad(loss, list(net.parameters()))
        assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
        for g, r in zip(grads, ref_grads):
            assert torch.allclose(g, r, rtol=1e-4, atol=1e-6 * float(r.abs().max())), float((g - r).abs().max())
    # weighted per pixel (the importance sampler's loss), and each pixel's error reported
    pixel_w = torch.rand(256, generator=gen) * 2
    per_pixel = ((net(coords[idx], weights()) - colours[idx]) ** 2).mean(1)
    ref = (per_pixel * pixel_w).mean()
    ref_grads = torch.autograd.grad(ref, list(net.parameters()))
    loss, errors = fused.mse(net, x, y, ws, weights(), list(net.biases), pixel_w)
    assert torch.allclose(errors, per_pixel.detach(), rtol=1e-4, atol=1e-7) and not errors.requires_grad
    grads = torch.autograd.grad(loss, list(net.parameters()))
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-6 * float(r.abs().max())), float((g - r).abs().max())
    with pytest.raises(RuntimeError, match="once per forward"):
        loss = fused.mse(net, x, y, ws, weights(), list(net.biases))[0]
        loss.backward(retain_graph=True)
        loss.backward()


def test_fused_training_repeats_and_tracks_the_reference(target):
    """Same seed, same net with the fused step; masked weights stay zero; and a fit with it ends
    within float noise of the reference fit's PSNR."""
    fast = replace(CFG, fused=True)
    nets = [_net(), _net()]
    for net in nets:
        train(net, target, fast, 60)
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters()))
    ref = _net()
    train(ref, target, CFG, 60)
    assert abs(evaluate(nets[0], target) - evaluate(ref, target)) < 0.1
    net = _net()
    mask = Mask.dense(list(net.weights)).prune(list(net.weights), 0.5, "random", torch.Generator().manual_seed(1))
    train(net, target, fast, 30, mask=mask)
    for w, k in zip(net.weights, mask.keep):
        assert not w.detach()[~k].any() and w.detach()[k].all()


def test_error_sampler_draws_where_the_error_is():
    from inrcodec.encoder import sampling

    s = sampling.make("error", pool=100, batch=1000)
    s.observe(torch.arange(100), torch.full((100,), 1e-6))
    s.observe(torch.tensor([7]), torch.tensor([1.0]))
    idx = s.draw(torch.Generator().manual_seed(0))
    assert idx.shape == (1000,)
    # Half the batch is uniform (about 5 hits of pixel 7), the other half nearly all pixel 7.
    assert 450 < int((idx == 7).sum()) < 560
    with pytest.raises(ValueError):
        sampling.make("nonsense", 10, 2)


def test_uniform_sampler_draws_what_the_fit_always_drew():
    from inrcodec.encoder import sampling

    a = sampling.make("uniform", 1000, 64).draw(torch.Generator().manual_seed(3))
    b = torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_error_samplers_train_and_the_fused_step_tracks_the_reference():
    arr = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    target = Target.of(arr)
    cfg = FitConfig(steps=30, batch=64, sampler="error")
    arch = Architecture(hidden=8, layers=2, pe_levels=2)
    net = Siren(arch, torch.Generator().manual_seed(0))
    uniform = Siren(arch, torch.Generator().manual_seed(0))
    before = evaluate(net, target)
    train(net, target, cfg, cfg.steps)
    train(uniform, target, replace(cfg, sampler="uniform"), cfg.steps)
    assert evaluate(net, target) > before
    # The sampler is in use: the same seed and steps train another network than uniform draws.
    assert not torch.equal(net.weights[0], uniform.weights[0])
    # The fused step learns the same errors, so it draws the same pixels at first and ends within
    # float noise of the reference step's fit, for both samplers that learn from the error.
    for name in ("error", "importance"):
        nets = {}
        for fast in (False, True):
            nets[fast] = Siren(arch, torch.Generator().manual_seed(0))
            train(nets[fast], target, replace(cfg, sampler=name, fused=fast), cfg.steps)
        assert abs(evaluate(nets[True], target) - evaluate(nets[False], target)) < 0.05
        a, b = nets[True].weights[0].detach(), nets[False].weights[0].detach()
        assert not torch.equal(a, b) and torch.allclose(a, b, atol=1e-5)


def test_error_sampler_edge_cases():
    from inrcodec.encoder import sampling

    one = sampling.make("error", pool=10, batch=1)  # no weighted draw in a 1-pixel batch
    assert one.draw(torch.Generator().manual_seed(0)).shape == (1,)
    with pytest.raises(ValueError, match="at most"):
        sampling.make("error", pool=(1 << 24) + 1, batch=8)
    # The importance sampler's tiled draw has no such limit (the presets use it: a 24 MP photo)
    big = sampling.make("importance", pool=(1 << 24) + 5, batch=8)
    assert big.draw(torch.Generator().manual_seed(0)).max() < (1 << 24) + 5


def test_importance_sampler_weights_make_the_loss_unbiased():
    from inrcodec.encoder import sampling

    for pool, batch in ((64, 20000), (61, 20001)):  # whole tiles of 16, and a short last tile and odd batch
        s = sampling.make("importance", pool=pool, batch=batch)
        errors = torch.ones(pool)
        errors[48:] = 20.0  # the last tile's pixels: most of the error
        s.observe(torch.arange(pool), errors)
        idx = s.draw(torch.Generator().manual_seed(0))
        values = torch.arange(pool, dtype=torch.float32)
        # The weighted batch mean estimates the plain mean over all pixels, however skewed the draws.
        assert float((values[idx] * s.weights()).mean()) == pytest.approx(float(values.mean()), rel=0.02)
        last = int((idx >= 48).sum()) / batch
        assert last > 0.4  # uniform draws give it a quarter or less
        assert idx.min() >= 0 and idx.max() < pool
    # a larger share drawn by error (the grid family's probe): still unbiased, more of the batch there
    s = sampling.make("importance", pool=64, batch=20000, share=0.75)
    errors = torch.ones(64)
    errors[48:] = 20.0
    s.observe(torch.arange(64), errors)
    idx = s.draw(torch.Generator().manual_seed(0))
    values = torch.arange(64, dtype=torch.float32)
    assert float((values[idx] * s.weights()).mean()) == pytest.approx(float(values.mean()), rel=0.02)
    assert int((idx >= 48).sum()) / 20000 > 0.6
    with pytest.raises(ValueError, match="share drawn by error"):
        sampling.make("importance", pool=64, batch=8, share=1.0)
