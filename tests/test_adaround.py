"""encoder/adaround.py: learned rounding onto the quantizer's grid, and its place in the encode."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import tiny_config

from inrcodec.encoder import adaround
from inrcodec.encoder.coding import code, quantization_steps
from inrcodec.encoder.fit import Target, train
from inrcodec.encoder.mask import Mask
from inrcodec.encoder.session import Session
from inrcodec.format import container
from inrcodec.siren import Siren


def test_soft_choice_starts_at_the_fraction_and_saturates():
    rest = torch.linspace(0.01, 0.99, 50)
    torch.testing.assert_close(adaround.soft(adaround.initial(rest)), rest, atol=1e-5, rtol=0)
    assert adaround.soft(torch.tensor([-20.0, 20.0])).tolist() == [0.0, 1.0]  # rectified: exactly 0 and 1
    assert adaround.soft(torch.tensor([0.0])).item() == pytest.approx(0.5)  # V >= 0 is "round up"


def test_beta_is_off_during_warm_up_then_anneals_from_20_to_2():
    n = 100
    assert adaround.beta(0, n) is None and adaround.beta(19, n) is None
    assert adaround.beta(20, n) == pytest.approx(20.0)
    assert adaround.beta(n, n) == pytest.approx(2.0)
    values = [adaround.beta(s, n) for s in range(20, n)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_rounding_term_is_zero_at_decided_choices():
    h = torch.tensor([0.0, 1.0, 0.5, 0.25])
    torch.testing.assert_close(adaround.rounding_term(h, 2.0), torch.tensor([0.0, 0.0, 1.0, 0.75]))


@pytest.fixture(scope="module")
def fitted(crop):
    """A tiny SIREN fitted to the crop, half its weights pruned, its 5-bit steps (rounding matters);
    no fine-tuning, so AdaRound takes the paper's start (the unrounded weights)."""
    cfg = tiny_config(steps=300, adaround_steps=150, qat_steps=0)
    session = Session.create(crop, cfg, "cpu")
    net = session.network()
    train(net, session.target, cfg.fit, cfg.fit.steps)
    weights, biases = net.state()
    mask = Mask.dense(weights).prune(weights, 0.5)
    weights = mask.apply(weights)
    net.load(weights, biases)
    steps = quantization_steps(weights, mask, 5)
    return session, net, (weights, biases), mask, steps


def test_learned_weights_lie_on_the_grid_one_level_from_the_weight(fitted):
    session, net, state, mask, steps = fitted
    out = adaround.learn(net, session.target, session.cfg, state, mask, steps, [5] * len(steps))
    for w, a, k, s in zip(state[0], out, mask.keep, steps):
        q = a / s
        torch.testing.assert_close(q, torch.round(q), atol=1e-4, rtol=0)  # on the grid
        assert torch.all(q.abs() <= 15.0 + 1e-4)  # within the 5-bit levels the coder keeps
        assert torch.all(a[~k] == 0)  # pruned weights stay pruned
        x = w / s
        assert torch.all((torch.round(q) >= torch.floor(x) - 1e-4) & (torch.round(q) <= torch.ceil(x) + 1e-4))


def test_the_coder_stores_exactly_the_learned_levels(fitted):
    session, net, state, mask, steps = fitted
    out = adaround.learn(net, session.target, session.cfg, state, mask, steps, [5] * len(steps))
    coded = code(out, state[1], mask, session.header, session.cfg.coder, 5, steps=steps)
    for lc, a, k, s in zip(container.read(coded.data).layers, out, mask.keep, steps):
        expected = np.round(a.numpy()[k.numpy()] / np.float32(s)).astype(np.int64)
        np.testing.assert_array_equal(lc.values_q, expected)
    for decoded, a in zip(coded.weights, out):
        torch.testing.assert_close(decoded, a, atol=1e-6, rtol=0)


def _mse(net: Siren, target: Target, weights, biases) -> float:
    with torch.no_grad():
        return float(torch.mean((net(target.coords, weights, biases) - target.colours) ** 2))


def test_learned_rounding_fits_the_image_better_than_nearest(fitted):
    """What it is for: at a coarse depth the image's error after AdaRound is below nearest rounding's."""
    session, net, state, mask, steps = fitted
    nearest = [torch.round(w / s) * s for w, s in zip(state[0], steps)]
    out = adaround.learn(net, session.target, session.cfg, state, mask, steps, [5] * len(steps))
    assert _mse(net, session.target, out, state[1]) < 0.97 * _mse(net, session.target, nearest, state[1])


def test_auto_starts_at_the_nearest_levels_only_after_fine_tuning(fitted):
    coder = fitted[0].cfg.coder
    starts = {q: adaround.start(replace(fitted[0].cfg, coder=replace(coder, qat_steps=q))) for q in (0, 20)}
    assert starts == {0: "unrounded", 20: "nearest"}
    assert adaround.start(replace(fitted[0].cfg, coder=replace(coder, adaround_start="unrounded"))) == "unrounded"


@pytest.mark.parametrize("begin", ["nearest", "unrounded"])
def test_either_start_hardens_to_nearest_rounding(fitted, begin):
    """Without steps both starts (the fraction; the nearest level) give nearest rounding."""
    session, net, state, mask, steps = fitted
    cfg = replace(session.cfg, coder=replace(session.cfg.coder, adaround_steps=0, adaround_start=begin))
    out = adaround.learn(net, session.target, cfg, state, mask, steps, [5] * len(steps))
    for w, a, s in zip(state[0], out, steps):
        torch.testing.assert_close(a, torch.round(w / s) * s, atol=1e-6, rtol=0)


def test_residuals_from_an_anchor_are_stored_as_the_learned_levels(fitted):
    """With a prior's weights as the origin the residuals are rounded, each one level at most from
    the nearest, and the coder stores exactly them (pruned weights: zero, as the decoder rebuilds)."""
    session, net, state, mask, steps = fitted
    anchor = ([w * 0.5 + 0.003 for w in state[0]], list(state[1]))
    res_steps = quantization_steps(state[0], mask, 5, anchor)
    out = adaround.learn(net, session.target, session.cfg, state, mask, res_steps, [5] * len(steps), anchor)
    coded = code(out, state[1], mask, session.header, session.cfg.coder, 5, steps=res_steps, anchor=anchor)
    for lc, a, w, o, k, s in zip(container.read(coded.data).layers, out, state[0], anchor[0], mask.keep, res_steps):
        q = ((a - o)[k] / s).numpy()
        np.testing.assert_allclose(q, np.round(q), atol=1e-4)
        np.testing.assert_array_equal(lc.values_q, np.round(q).astype(np.int64))
        x = ((w - o)[k] / s).numpy()
        assert np.all((np.round(q) >= np.floor(x) - 1e-4) & (np.round(q) <= np.ceil(x) + 1e-4))
        assert torch.all(a[~k] == 0)


def test_the_same_seed_learns_the_same_levels(fitted):
    session, net, state, mask, steps = fitted
    runs = [adaround.learn(net, session.target, session.cfg, state, mask, steps, [5] * len(steps)) for _ in range(2)]
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_an_encode_with_adaround_stores_other_levels_and_reports_its_steps(crop):
    """The encode runs AdaRound (its file holds other integers than nearest rounding's, in a file
    of the same format that decodes to the PSNR it reports) and its bar counts AdaRound's steps."""
    from inrcodec import decode
    from inrcodec.encoder.pipeline import encode_array
    from inrcodec.image import psnr

    calls = []
    cfg = tiny_config(steps=120, density=1.0, adaround_steps=150, adaround_start="unrounded")
    enc = encode_array(crop, cfg, "cpu", progress=lambda *a: calls.append(a))
    plain = encode_array(crop, replace(cfg, coder=replace(cfg.coder, adaround_steps=0)), "cpu")
    levels = zip(container.read(enc.data).layers, container.read(plain.data).layers)
    assert any(not np.array_equal(a.values_q, b.values_q) for a, b in levels)
    assert container.read(enc.data).header.prior == 0  # no new format: only which integers it holds
    assert psnr(decode(enc.data), crop) == pytest.approx(enc.stats["psnr"], abs=1e-9)
    stage, done, total, _psnr = calls[-1]
    assert (stage, done, total) == ("quantize", total, 120 + 20 + 150)  # fit, fine-tuning, AdaRound


def test_region_tickets_refuse_adaround(crop):
    from inrcodec.encoder import region_spec, rtl

    with pytest.raises(ValueError, match="AdaRound"):
        rtl.encode_regions(crop, tiny_config(adaround_steps=10), region_spec.parse_spec("grid:1x2"), device="cpu")


@pytest.mark.parametrize(
    "field",
    [
        {"adaround_steps": -1},
        {"adaround_lr": 0.0},
        {"adaround_reg": -1.0},
        {"adaround_steps": 9, "weight_coder": "sinr"},
        {"adaround_steps": 9, "weight_coder": "auto"},
        {"adaround_start": "fraction"},
    ],
)
def test_bad_settings_are_refused(field):
    with pytest.raises(ValueError, match="adaround"):
        replace(tiny_config().coder, **field)
