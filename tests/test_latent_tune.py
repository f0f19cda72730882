"""Fine-tuning the networks on the file's integer latents (encoder/latent_tune.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import ROUNDING_CFG, noisy_ramp

from inrcodec import coords
from inrcodec.config import LatentConfig
from inrcodec.decoder.latent import render
from inrcodec.encoder import latent, latent_rdo, latent_tune
from inrcodec.format.latent import read
from inrcodec.pixels import to_unit

CFG = ROUNDING_CFG
_image = noisy_ramp


def _fitted(arr: np.ndarray, cfg: LatentConfig = CFG) -> tuple[latent.LatentImage, bytes]:
    """The model as training left it, and its packed file."""
    kept = {}
    pack = latent.pack

    def keep(model, cfg, arr):
        kept["model"] = model
        return pack(model, cfg, arr)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(latent, "pack", keep)
        data = latent.fit(arr, cfg).data
    return kept["model"], data


def _loss(model: latent.LatentImage, arr: np.ndarray) -> float:
    """The fit's loss over every pixel and every latent (no sampling)."""
    h, w, c = arr.shape
    with torch.no_grad():
        pred = model(coords.grid(h, w), [y.detach() for y in model.latents])
        mse = float(torch.mean((pred - torch.from_numpy(to_unit(arr).reshape(-1, c))) ** 2)) / 4
        at, levels, _ = model.pyramid.sample(0, None)
        near, ok, anchor = model.pyramid.contexts(at, levels)
        flat = model.flat.detach()
        bits = float(model.arm.bits(flat[at], flat[near] * ok, anchor, levels).sum())
    return mse + model.cfg.lam * bits / (h * w)


def _cost(data: bytes, arr: np.ndarray) -> float:
    return latent_rdo.cost(read(data), arr, CFG.lam, None)[0]


def test_hold_sets_the_files_integers_and_freezes_them():
    arr = _image()
    cfg = replace(CFG, rdo_levels=3)
    model, data = _fitted(arr, cfg)
    # the rounding moved latents away from the integers training left: hold must take the file's
    assert any(not torch.equal(y[0], torch.from_numpy(q).float()) for y, q in zip(model.rounded(), read(data).latents))
    latent_tune.hold(model, data)
    assert not model.flat.requires_grad
    for y, q in zip(model.latents, read(data).latents):
        assert torch.equal(y[0], torch.from_numpy(q).float())
    # packed again, the latents are the file's, whatever the networks do
    assert [q.tolist() for q in read(latent.pack(model, cfg, arr)[0]).latents] == [
        q.tolist() for q in read(data).latents
    ]


def test_training_lowers_the_fits_loss_and_moves_only_the_networks():
    arr = _image()
    model, data = _fitted(arr)
    latent_tune.hold(model, data)
    flat = model.flat.detach().clone()
    before = _loss(model, arr)
    latent_tune.train(model, arr, 200, seed=0)
    assert torch.equal(model.flat, flat)
    assert _loss(model, arr) < before


def test_the_tuned_file_costs_no_more_and_is_what_the_fit_reports():
    arr = _image()
    cfg = replace(CFG, rdo_levels=3)
    plain = latent.fit(arr, cfg)
    tuned = latent.fit(arr, replace(cfg, tune_steps=200))
    assert tuned.data != plain.data  # on this image the tuned file was kept
    assert _cost(tuned.data, arr) < _cost(plain.data, arr)
    mse = np.mean((render(read(tuned.data), arr.shape[1], arr.shape[0]).astype(np.float64) - arr) ** 2)
    assert tuned.psnr == pytest.approx(10 * math.log10(255**2 / mse))
    assert tuned.bpp == len(tuned.data) * 8 / (arr.shape[0] * arr.shape[1])


def test_the_tuned_fit_is_deterministic():
    arr = _image()
    cfg = replace(CFG, rdo_levels=3, tune_steps=100)
    assert latent.fit(arr, cfg).data == latent.fit(arr, cfg).data


def test_on_file_hears_every_stages_file_and_leaves_the_fit_as_it_was():
    """fit(on_file=...) only listens: the same file as without it, and each stage's file with the
    error it was measured at, the written one among them."""
    arr = _image()
    cfg = replace(CFG, rdo_levels=3, tune_steps=200)
    heard = []
    fitted = latent.fit(arr, cfg, on_file=lambda stage, data, err: heard.append((stage, data, err)))
    assert fitted.data == latent.fit(arr, cfg).data
    assert [stage for stage, _, _ in heard] == ["code", "round", "tune", "round again"]  # the tuned file kept
    assert heard[-1][1] == fitted.data
    assert fitted.psnr == pytest.approx(10 * math.log10(255**2 / heard[-1][2]))
    for _, data, err in heard:
        mse = np.mean((render(read(data), arr.shape[1], arr.shape[0]).astype(np.float64) - arr) ** 2)
        assert err == pytest.approx(mse)


def test_a_tuning_that_costs_more_is_dropped(monkeypatch):
    arr = _image()
    cfg = replace(CFG, rdo_levels=3)
    plain = latent.fit(arr, cfg)

    def spoil(model, arr, steps, seed):
        with torch.no_grad():
            model.linears[-1].bias.add_(0.5)

    monkeypatch.setattr(latent_tune, "train", spoil)
    assert latent.fit(arr, replace(cfg, tune_steps=10)).data == plain.data


def test_a_tuned_file_the_format_cannot_hold_is_dropped(monkeypatch):
    """A tuned context network can move a predicted centre so far that a latent's residual leaves
    the stream's range: write() refuses that file, and the encode keeps the one before."""
    from inrcodec.format.errors import FormatError

    arr = _image()
    cfg = replace(CFG, rdo_levels=3)
    plain = latent.fit(arr, cfg)
    pack, calls = latent.pack, []

    def refuse_second(model, cfg, arr):
        calls.append(1)
        if len(calls) > 1:
            raise FormatError("a latent lies 16384 from its predicted centre")
        return pack(model, cfg, arr)

    monkeypatch.setattr(latent, "pack", refuse_second)
    assert latent.fit(arr, replace(cfg, tune_steps=50)).data == plain.data and len(calls) == 2


def test_the_bar_names_tuning_and_the_second_rounding():
    from inrcodec.encoder.progress import AfterFit

    heard: list[tuple] = []
    bar = AfterFit(lambda *report: heard.append(report))
    latent.fit(_image(), replace(CFG, rdo_levels=3, tune_steps=200), bar.step, bar.stage)
    assert [h[0] for h in heard if h[0] != "fit"] == ["code", "round", "tune", "round"]


def test_tune_steps_are_checked():
    with pytest.raises(ValueError, match="tune_steps"):
        LatentConfig(tune_steps=-1)
