"""The latents' rate-distortion rounding (encoder/latent_rdo.py) and the rates it reads
(checkerboard.moved_bits)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from helpers import ROUNDING_CFG, noisy_ramp

from inrcodec import coords
from inrcodec.config import LatentConfig
from inrcodec.decoder.latent import render, taps
from inrcodec.encoder import latent, latent_rdo
from inrcodec.format import checkerboard as cb
from inrcodec.format.latent import read, write

CFG = ROUNDING_CFG
_image = noisy_ramp


@pytest.fixture(scope="module")
def fitted() -> tuple[np.ndarray, bytes]:
    arr = _image()
    return arr, latent.fit(arr, CFG).data


@pytest.mark.parametrize("bicubic", [False, True])
@pytest.mark.parametrize("n, size", [(24, 24), (12, 24), (6, 24), (3, 24), (1, 5), (8, 13)])
def test_a_colour_group_reaches_each_centre_through_one_latent_at_most(bicubic, n, size):
    """What lets one render price a whole group: no centre is reached by two latents of a group."""
    centres = coords.axis_np(size)
    axis_taps = taps(centres, n, bicubic)
    for residue in range(len(axis_taps)):
        owner = latent_rdo.owners(centres, n, bicubic, residue)
        for index, weight in axis_taps:
            hit = (index % len(axis_taps) == residue) & (weight != 0)
            assert np.array_equal(index[hit], owner[hit])  # the one latent of the group it reaches
        reached = [(index % len(axis_taps) == residue) & (weight != 0) for index, weight in axis_taps]
        assert np.array_equal(np.logical_or.reduce(reached), owner >= 0)


def _reference_refine_level(f, arr, lam, level):
    """refine_level by brute force: in the same order of passes, groups and channels, each latent
    of a group priced by a render with it alone moved (its change of the whole image's error) and
    its moved_bits; the group's choices applied together."""
    period = 4 if f.header.interpolation == 1 else 2
    q = f.latents[level].copy()
    scheme = f.header.scheme
    for group, parities in enumerate(scheme.groups):
        for a, b in [(a, b) for a in range(period) for b in range(period) if (a % 2, b % 2) in parities]:
            for c in range(q.shape[0]):
                f = latent_rdo._with(f, level, q)
                base = latent_rdo._pixel_errors(f, arr, None)
                bits = cb.moved_bits(f.latents, f.context, level, group, (0, -1, 1), scheme=scheme)
                choice = np.zeros(q.shape[1:], np.int64)
                for i in range(a, q.shape[1], period):
                    for j in range(b, q.shape[2], period):
                        costs = [lam * bits[0, c, i, j]]
                        for k, move in enumerate((-1, 1), start=1):
                            moved = q.copy()
                            moved[c, i, j] += move
                            change = latent_rdo._pixel_errors(latent_rdo._with(f, level, moved), arr, None) - base
                            costs.append(change.sum() + lam * bits[k, c, i, j])
                        choice[i, j] = (0, -1, 1)[int(np.argmin(costs))]
                q[c] += choice
    return latent_rdo._with(f, level, q)


@pytest.mark.parametrize(
    "h, w, changes",
    [
        (9, 13, {"channels": 2}),
        (11, 10, {"interpolation": "bicubic"}),
        (7, 9, {"finest": 1, "channels": 2}),
        (10, 11, {"context": "four-pass", "channels": 2}),
        (11, 10, {"context": "four-pass", "interpolation": "bicubic"}),
    ],
)
def test_each_latent_is_priced_as_if_it_alone_moved(h, w, changes):
    """The grouped renders credit each latent exactly its own change of the image's error: the
    pass chooses what moving each latent alone would (odd sizes, two channels, bicubic taps)."""
    arr = _image(h, w)
    cfg = replace(CFG, levels=2, steps=40, batch=64, rate_sample=64, **changes)
    f = read(latent.fit(arr, cfg).data)
    rng = np.random.default_rng(1)
    f = replace(f, latents=[q + rng.integers(-1, 2, q.shape) for q in f.latents])  # something to undo
    for level in range(len(f.latents)):
        fast = latent_rdo.refine_level(f, arr, cfg.lam, level)
        slow = _reference_refine_level(f, arr, cfg.lam, level)
        assert np.array_equal(fast.latents[level], slow.latents[level])
        assert not np.array_equal(fast.latents[level], f.latents[level])  # it moved some


def test_moved_bits_are_the_coders_information(fitted):
    _, data = fitted
    f = read(data)
    per_level = cb.level_bits(f.latents, f.context)
    for level in range(len(f.latents)):
        total = 0.0
        for group in (0, 1):
            bits = cb.moved_bits(f.latents, f.context, level, group, (0, -1, 1))
            here = cb.member(cb.CHECKERBOARD, *f.latents[level].shape[1:], group)
            assert np.all(np.isfinite(bits[0][:, here])) and np.all(np.isinf(bits[:, :, ~here]))
            total += float(bits[0][:, here].sum())
        assert total == pytest.approx(per_level[level], rel=1e-9, abs=1e-9)


def test_a_finest_non_anchor_moved_changes_its_own_bits_alone():
    """A finest non-anchor is no latent's context: moving it changes the coder's information by
    exactly what moved_bits says, in either latent channel."""
    arr = _image(12, 14)
    f = read(latent.fit(arr, replace(CFG, channels=2, levels=2, steps=40, batch=64, rate_sample=64)).data)
    before = cb.level_bits(f.latents, f.context)[0]
    bits = cb.moved_bits(f.latents, f.context, 0, 1, (0, -1, 1))
    positions = np.argwhere(np.isfinite(bits[1]) & np.isfinite(bits[2]))
    assert {int(c) for c, _, _ in positions} == {0, 1}
    for c, i, j in positions[:: max(1, len(positions) // 12)]:
        for k, move in ((1, -1), (2, 1)):
            moved = [q.copy() for q in f.latents]
            moved[0][c, i, j] += move
            change = cb.level_bits(moved, f.context)[0] - before
            assert change == pytest.approx(bits[k, c, i, j] - bits[0, c, i, j], abs=1e-6)


def test_refining_lowers_the_files_cost_and_keeps_it_a_file(fitted):
    arr, data = fitted
    f = read(data)
    assert write(f) == data  # the pass rewrites what it read byte for byte
    assert latent_rdo.refine(data, arr, CFG.lam, 0)[0] == data
    # latents nudged off their fitted integers: the pass must find its way back down
    rng = np.random.default_rng(0)
    nudged = [q + rng.integers(-1, 2, q.shape) for q in f.latents]
    start = write(replace(f, latents=nudged))
    before = latent_rdo.cost(read(start), arr, CFG.lam, None)[0]
    out, err = latent_rdo.refine(start, arr, CFG.lam, 3)
    after, _, after_err = latent_rdo.cost(read(out), arr, CFG.lam, None)
    assert after < before and out != start
    assert after_err == err
    decoded = render(read(out), arr.shape[1], arr.shape[0]).astype(np.float64)
    assert float(np.mean((decoded - arr) ** 2)) == err


def test_fit_with_the_pass_reports_its_file(fitted):
    arr, data = fitted
    out = latent.fit(arr, replace(CFG, rdo_levels=3))
    plain = latent_rdo.cost(read(data), arr, CFG.lam, None)[0]
    assert latent_rdo.cost(read(out.data), arr, CFG.lam, None)[0] <= plain
    mse = np.mean((render(read(out.data), arr.shape[1], arr.shape[0]).astype(np.float64) - arr) ** 2)
    assert out.psnr == pytest.approx(10 * math.log10(255**2 / mse))
    assert out.bpp == len(out.data) * 8 / (arr.shape[0] * arr.shape[1])


def test_a_level_whose_moves_the_format_cannot_hold_is_dropped(fitted, monkeypatch):
    """A move that pushed another latent's residual past the stream's limit would make write()
    refuse the file: that level keeps its latents and the encode goes on."""
    from inrcodec.format.errors import FormatError

    arr, data = fitted
    calls = []

    def refuse(f, arr, lam, level, threads=None):
        calls.append(level)
        raise FormatError("a latent lies 16384 from its predicted centre")

    monkeypatch.setattr(latent_rdo, "refine_level", refuse)
    out, err = latent_rdo.refine(data, arr, CFG.lam, 3)
    assert out == data and calls == [2, 1, 0]
    assert err == latent_rdo.cost(read(data), arr, CFG.lam, None)[2]


def test_the_bar_names_the_stages_after_the_fit():
    """Coding and the rounding move no step: the bar says which one runs, at the fit's end."""
    from inrcodec.encoder.progress import AfterFit

    heard: list[tuple] = []
    bar = AfterFit(lambda *report: heard.append(report))
    arr = _image(12, 14)
    latent.fit(arr, replace(CFG, steps=200, batch=64, rate_sample=64, rdo_levels=2), bar.step, bar.stage)
    assert [h[0] for h in heard] == ["fit", "fit", "code", "round"]
    assert heard[-1][1:3] == heard[-3][1:3] == (200, 200) and heard[-1][3] == heard[-3][3]
    heard.clear()
    latent.fit(arr, replace(CFG, steps=100, batch=64, rate_sample=64), bar.step, bar.stage)
    assert [h[0] for h in heard] == ["fit", "code"]


def test_the_pass_needs_the_context_model_and_levels_it_has():
    with pytest.raises(ValueError, match="context model"):
        LatentConfig(rdo_levels=1)
    with pytest.raises(ValueError, match="rdo_levels"):
        LatentConfig(levels=3, context="checkerboard", rdo_levels=4)
