"""encoder/pipeline.py and the package API: whole encodes of a 48x32 crop with a tiny network."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers import BODY_AT, STATS_KEYS, tiny_config

import inrcodec
from inrcodec import config, image
from inrcodec.decoder import decode
from inrcodec.encoder import coding, pipeline
from inrcodec.format import container


def check_encoded(enc, arr, floor: float) -> np.ndarray:
    """The stats tell the truth about the bytes, and the bytes decode above ``floor`` dB."""
    h, w, c = arr.shape
    s = enc.stats
    assert STATS_KEYS <= set(s)
    assert s["bytes"] == len(enc.data)
    assert s["bpp"] == 8 * len(enc.data) / (w * h)
    assert (s["width"], s["height"], s["channels"]) == (w, h, c)
    stream = container.read(enc.data)
    assert s["sections"] == stream.section_bytes
    assert BODY_AT + sum(s["sections"].values()) + 4 == len(enc.data)  # magic, version, header; CRC
    decoded = decode(enc.data, device="cpu")
    p = image.psnr(decoded, arr)
    assert p == pytest.approx(s["psnr"], abs=1e-9)  # the reported PSNR is the decoded file's
    assert p > floor, f"{p:.2f} dB"
    return decoded


def test_scalar_round_trip(encoded_scalar, crop):
    check_encoded(encoded_scalar, crop, floor=33.0)
    s = encoded_scalar.stats
    assert s["coders"] == ["scalar"] * 3
    # IMP reached the target density (0.6 of 336 weights) and the file stores that mask.
    assert 0.55 < s["density"] <= 0.6 and s["rounds"] >= 2
    stream = container.read(encoded_scalar.data)
    assert stream.masks is not None and stream.masks.mean() == pytest.approx(s["density"])
    assert (stream.header.hidden, stream.header.layers) == (16, 2)


def test_sinr_round_trip(encoded_sinr, crop):
    check_encoded(encoded_sinr, crop, floor=30.0)
    stream = container.read(encoded_sinr.data)
    assert encoded_sinr.stats["coders"] == ["sinr"] * 3
    assert all(layer.sinr[:3] == (16, 64, 12) for layer in stream.layers)


def test_same_seed_same_bytes_through_the_api(encoded_scalar, crop, monkeypatch):
    """inrcodec.encode() with the same settings and seed repeats the file byte for byte (CPU)."""
    monkeypatch.setitem(config.PRESETS, "tiny", tiny_config())
    calls = []
    data = inrcodec.encode(crop, preset="tiny", device="cpu", progress=lambda *a: calls.append(a))
    assert data == encoded_scalar.data
    # Progress: fit, then prune rounds, then quantize; steps never go backwards and end at the total.
    stages = [c[0] for c in calls]
    assert stages[0] == "fit" and stages[-1] == "quantize" and any(st.startswith("prune") for st in stages)
    done = [c[1] for c in calls]
    assert done == sorted(done) and done[-1] == calls[-1][2]


def test_rate_cap(crop):
    """With a bpp cap the file stays at or under it, by pruning further than the preset asks."""
    cfg = replace(tiny_config(density=1.0, steps=200), bpp=1.7)
    enc = pipeline.encode_array(crop, cfg, "cpu")
    check_encoded(enc, crop, floor=30.0)
    assert len(enc.data) * 8 <= 1.7 * crop.shape[0] * crop.shape[1]
    assert enc.stats["density"] < 1.0


def test_unreachable_rate_is_an_error(crop):
    cfg = replace(tiny_config(density=1.0, steps=20), bpp=0.01, prune=replace(tiny_config().prune, rate=0.9, steps=5))
    what = (
        r"cannot reach 0.01 bpp: this network's smallest file, at density 0\.\d\d, "
        r"took [\d.]+ bpp \(\d+ bytes, the cap \d+\); the grid-\* presets go lower"
    )
    with pytest.raises(ValueError, match=what):
        pipeline.encode_array(crop, cfg, "cpu")


def test_auto_coder_keeps_sinr_only_where_it_wins(encoded_scalar):
    """code() with weight_coder=auto on the decoded network: each layer picks the smaller of
    equally accurate codes, and what it returns is what the decoder rebuilds."""
    import torch

    from inrcodec.decoder.network import layer_arrays
    from inrcodec.encoder.mask import Mask

    stream = container.read(encoded_scalar.data)
    ws, bs = layer_arrays(stream)
    weights = [torch.from_numpy(w) for w in ws]
    mask = Mask(tuple(torch.from_numpy(k) for k in container.split_masks(stream.masks, stream.header)))
    coder = replace(tiny_config().coder, weight_coder="auto", sinr_k=8, sinr_m=16, sinr_s=8)
    coded = coding.code(weights, [torch.from_numpy(b) for b in bs], mask, stream.header, coder, 8)
    assert set(coded.coders) <= {"scalar", "sinr"} and len(coded.coders) == 3
    again = container.read(coded.data)
    assert [container.WEIGHT_CODERS[c.coder] for c in again.layers] == coded.coders
    for w, w2 in zip(layer_arrays(again)[0], coded.weights):
        np.testing.assert_array_equal(w, w2.numpy())


def test_presets_are_well_formed():
    assert config.DEFAULT_PRESET in config.LATENT_PRESETS and config.SIREN_DEFAULT_PRESET in config.PRESETS
    for name, cfg in config.PRESETS.items():
        assert config.preset(name) == cfg
        assert 0 < cfg.prune.density <= 1 and cfg.fit.steps > 0 and cfg.coder.weight_coder in ("scalar", "sinr", "auto")
    assert config.preset("fast", bpp=0.5).bpp == 0.5
    with pytest.raises(ValueError, match="unknown preset"):
        config.preset("nope")


def test_rewind_past_the_dense_fit_is_refused(crop):
    cfg = tiny_config(steps=10)
    cfg = replace(cfg, prune=replace(cfg.prune, rewind="early:50"))
    with pytest.raises(ValueError, match="--steps 10: pruning rewinds the weights to step 50 of the dense fit"):
        pipeline.encode_array(crop, cfg, "cpu")


def test_bit_allocation_matches_coding_whole_files(crop):
    """allocate_bits codes each (layer, depth) once and compares one section's bytes; the greedy
    it implements, run on whole files (code every candidate, compare len(file), evaluate the
    network the decoder rebuilds), picks the same depths."""

    from inrcodec.encoder.allocate import allocate_bits
    from inrcodec.encoder.fit import evaluate
    from inrcodec.encoder.prune import prune_rounds
    from inrcodec.encoder.session import Session

    cfg = tiny_config(steps=120, density=1.0, hidden=24, layers=2, bits=(5, 6, 7, 8, 9, 10), max_loss_db=0.5)
    cfg = replace(cfg, arch=replace(cfg.arch, out_features=crop.shape[2], pe_levels=2))
    session = Session.create(crop, cfg, "cpu")
    target, header = session.target, session.header
    net = session.network()
    snap = next(prune_rounds(net, target, cfg))

    ref = evaluate(net, target, pixels=cfg.eval_pixels)
    levels = sorted(cfg.coder.bits)
    bits = [levels[-1]] * len(snap.weights)
    size = len(coding.code(snap.weights, snap.biases, snap.mask, header, cfg.coder, bits).data)
    while True:
        best = None
        for i in range(len(bits)):
            if bits[i] == levels[0]:
                continue
            trial = bits.copy()
            trial[i] = levels[levels.index(bits[i]) - 1]
            c = coding.code(snap.weights, snap.biases, snap.mask, header, cfg.coder, trial)
            p = evaluate(net, target, c.weights, c.biases, pixels=cfg.eval_pixels)
            saved = size - len(c.data)
            if ref - p <= cfg.coder.max_loss_db and saved > 0 and (best is None or (ref - p) / saved < best[0]):
                best = ((ref - p) / saved, trial, len(c.data))
        if best is None:
            break
        _, bits, size = best
    got = allocate_bits(session, net, snap)
    assert got == bits and got != [levels[-1]] * len(bits)  # the same choice, and a real one


def test_residual_coding_from_a_prior(crop, monkeypatch):
    """With a prior the file names it (version 4), the fit starts from it, the residuals are coded,
    and the stats' PSNR is the real decoder's; an L1 weight pulls the weights towards the prior."""
    import torch
    from helpers import install_prior

    from inrcodec.decoder.arrays import layer_arrays
    from inrcodec.encoder.session import Session
    from inrcodec.format import container

    cfg = tiny_config(steps=150, density=1.0, hidden=16, layers=2, qat_steps=0)
    plain = Session.create(crop, cfg, "cpu")
    prior = Session.create(crop, replace(cfg, fit=replace(cfg.fit, seed=5)), "cpu").network().state()
    install_prior(monkeypatch, 30001, [w.numpy() for w in prior[0]], [b.numpy() for b in prior[1]], plain.header)
    assert Session.create(crop, replace(cfg, prior="auto"), "cpu").header.prior == 30001

    def distance(l1: float) -> tuple[float, bytes]:
        c = replace(cfg, prior="30001", fit=replace(cfg.fit, l1=l1))
        enc = pipeline.encode_array(crop, c, "cpu")
        ws, _bs = layer_arrays(container.read(enc.data))
        assert image.psnr(decode(enc.data), crop) == pytest.approx(enc.stats["psnr"], abs=1e-9)
        d = np.mean([np.abs(w - p.numpy()).mean() for w, p in zip(ws, prior[0])])
        return float(d), enc.data

    free, data = distance(0.0)
    stream = container.read(data)
    assert data[4] == 4 and stream.header.prior == 30001
    pulled, _ = distance(1.0)
    assert pulled < 0.8 * free
    with pytest.raises(ValueError, match="unknown prior '77'"):
        Session.create(crop, replace(cfg, prior="77"), "cpu")
    assert torch.equal(Session.create(crop, replace(cfg, prior="30001"), "cpu").network().weights[0], prior[0][0])


def test_a_prior_with_a_shared_mask(crop, monkeypatch):
    """A prior that carries a mask (format v6): the fit trains under it, the file has no MASKS
    section and codes exactly the weights it keeps, and the encoder refuses to prune it further."""
    from helpers import install_prior

    from inrcodec.decoder.arrays import layer_arrays
    from inrcodec.encoder.session import Session
    from inrcodec.format import container

    cfg = tiny_config(steps=120, density=1.0, hidden=16, layers=2, qat_steps=10)
    plain = Session.create(crop, cfg, "cpu")
    ws, bs = plain.network().state()
    rng = np.random.default_rng(0)
    masks = [rng.random(tuple(w.shape)) < 0.5 for w in ws]
    install_prior(monkeypatch, 30002, [w.numpy() for w in ws], [b.numpy() for b in bs], plain.header, masks)
    shared = replace(cfg, prior="30002")
    enc = pipeline.encode_array(crop, shared, "cpu")
    stream = container.read(enc.data)
    assert enc.data[4] == 6 and stream.header.prior == 30002 and "masks" not in stream.section_bytes
    fitted, _ = layer_arrays(stream)
    for w, m in zip(fitted, masks):
        assert not w[~m].any() and np.count_nonzero(w[m]) > 0.8 * m.sum()
    kept = sum(int(m.sum()) for m in masks) / sum(m.size for m in masks)
    assert enc.stats["density"] == pytest.approx(kept)
    assert image.psnr(decode(enc.data), crop) == pytest.approx(enc.stats["psnr"], abs=1e-9)
    assert enc.stats["psnr"] > 18
    (ladder,) = pipeline.encode_ladder(crop, shared, [], "cpu")  # the benchmark's path: the same file
    assert ladder.data == enc.data
    with pytest.raises(ValueError, match="carries a shared mask"):
        Session.create(crop, replace(shared, prune=replace(cfg.prune, density=0.5)), "cpu")
    with pytest.raises(ValueError, match="carries a shared mask"):
        Session.create(crop, replace(shared, bpp=0.5), "cpu")


def test_range_coder_choice_is_measured(crop):
    """entropy_coder=auto never writes a larger file than either coder alone, and range coded
    files decode to what their stats say."""
    cfg = tiny_config(steps=100, density=1.0, hidden=16, layers=2, qat_steps=0)
    sizes = {}
    for name in ("brotli", "range", "auto"):
        enc = pipeline.encode_array(crop, replace(cfg, coder=replace(cfg.coder, entropy_coder=name)), "cpu")
        assert image.psnr(decode(enc.data), crop) == pytest.approx(enc.stats["psnr"], abs=1e-9)
        sizes[name] = len(enc.data)
    assert sizes["auto"] <= min(sizes["brotli"], sizes["range"]) + 2  # + the version 4 header's prior field


def test_rate_distortion_depths_and_rounding(crop):
    """With rd_lambda the depths minimise MSE + lambda bpp; the rounding pass keeps a change only
    where the measured cost falls, so it never ends above the file it started from."""
    from inrcodec.metrics import rd_cost

    cfg = tiny_config(steps=200, density=1.0, hidden=16, layers=2, qat_steps=20, bits=(4, 5, 6, 7, 8))
    h, w, _c = crop.shape  # 48x32: fewer pixels than eval_pixels, so the measured cost is the file's
    costs = {}
    for rounding, moves in ((False, "toward-zero"), (True, "toward-zero"), (True, "both")):
        coder = replace(cfg.coder, rd_lambda=60.0, rd_rounding=rounding, rd_round_moves=moves)
        enc = pipeline.encode_array(crop, replace(cfg, coder=coder), "cpu")
        costs[rounding, moves] = rd_cost(enc.stats["psnr"], enc.stats["bytes"], 60.0, h * w)
        assert min(enc.stats["bits"]) < 8  # the cost took bits away somewhere
    assert costs[True, "toward-zero"] <= costs[False, "toward-zero"] + 1e-9
    assert costs[True, "both"] <= costs[False, "toward-zero"] + 1e-9
    with pytest.raises(ValueError, match="rd_round_moves"):
        replace(cfg.coder, rd_round_moves="nearest")


def test_rounding_moves_go_both_ways_only_when_asked():
    """Towards zero, a zero never moves and a weight moves only towards zero; with both, a weight
    whose gradient asks for +1 gets +1 (a zero included), and each move is the cheaper of the two."""
    from inrcodec.encoder.coding import round_moves

    q = np.array([0, 0, 2, -3, 1, 1])
    grad = np.array([-5.0, 5.0, -5.0, 0.0, 0.0, 0.0])  # the loss falls as weight 0 grows and weight 1 shrinks
    pred, step = round_moves(q, grad, 0.1, 0.01, both=False)
    assert np.isinf(pred[:2]).all() and list(step[2:]) == [-1, 1, -1, -1]
    assert pred[2] > 0  # towards zero against its gradient: the loss rises
    pred, step = round_moves(q, grad, 0.1, 0.01, both=True)
    assert list(step[:3]) == [1, -1, 1] and (pred[:3] < 0).all()
    assert np.isfinite(pred).all()


@pytest.mark.slow
def test_rate_control_on_the_ladder_keeps_the_widest_ladder_point_under_the_cap(crop):
    """With ``widths`` a rate cap chooses the ladder width: between two ladder files' sizes the
    result is at least as good as the narrower one (which fits), never over the cap; the wider
    fit's ladder file was over, so it was also tried at fewer bits. A cap above both is the wider
    ladder file itself, byte for byte."""
    from inrcodec.config import RATE_BYTES_PER_PARAM, at_width, preset

    base = replace(preset("low", bpp=1.0), widths=(56, 40), coder=replace(preset("low").coder, qat_steps=20))
    h, w, _c = crop.shape
    files = {x: pipeline.encode_array(crop, at_width(base, x), "cpu") for x in (56, 40)}
    assert len(files[40].data) < len(files[56].data)
    between = (len(files[40].data) + len(files[56].data)) // 2
    enc = pipeline.encode_array(crop, replace(base, bpp=8 * between / (h * w)), "cpu")
    rc = enc.stats["rate_control"]
    assert len(enc.data) <= rc["cap_bytes"] == between
    params = {x: replace(at_width(base, x).arch, out_features=3).n_params() for x in (56, 40)}
    starts_wide = params[56] * RATE_BYTES_PER_PARAM <= between  # else 40 first, then 56 if 40's rate says it fits
    expected = (
        [56, 40] if starts_wide else [40, 56] if len(files[40].data) / params[40] * params[56] <= between else [40]
    )
    assert [t["hidden"] for t in rc["tried"]] == expected
    assert {t["hidden"]: t["ladder_bytes"] for t in rc["tried"]} == {x: len(files[x].data) for x in expected}
    assert enc.stats["psnr"] >= files[40].stats["psnr"]
    assert enc.data == files[40].data or rc["hidden"] == 56  # the ladder point, or the wider fit at fewer bits
    above = pipeline.encode_array(crop, replace(base, bpp=8 * (len(files[56].data) + 10) / (h * w)), "cpu")
    assert above.data == files[56].data and 56 in [t["hidden"] for t in above.stats["rate_control"]["tried"]]


def test_a_fit_from_a_prior_takes_the_chosen_l1_weight():
    """Issue 14 item 3: the L1 weight chosen on the held-out photos is what a prior's fit uses; a fit
    without a prior keeps none, and a config that names its own fit keeps its own."""
    from inrcodec import config

    assert config.override("medium", prior="1").fit.l1 == config.PRIOR_L1 > 0
    assert config.override("medium", prior="auto").fit.l1 == config.PRIOR_L1  # used only if a prior resolves
    assert config.override("medium").fit.l1 == 0 and config.override("medium", prior="none").fit.l1 == 0
    own = replace(config.PRESETS["medium"].fit, l1=1e-3)
    assert config.preset("medium", prior="1", fit=own).fit.l1 == 1e-3
