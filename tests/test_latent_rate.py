"""encoder/latent_rate.py: the latent-grid family's rate control, on three tiny points whose files
are fitted once here, so each search's answer can be checked against every point's own file."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from helpers import REPO, noisy_ramp

from inrcodec import config
from inrcodec.config import LatentCap, LatentConfig
from inrcodec.encoder import latent, latent_rate

POINTS = tuple(
    LatentConfig(lam=lam, levels=3, hidden=8, steps=40, batch=256, lr_latent=0.1) for lam in (1e-1, 1e-2, 1e-4)
)


@pytest.fixture(scope="module")
def files() -> list[latent.Fitted]:
    out = [latent.fit(noisy_ramp(), p) for p in POINTS]
    sizes = [len(f.data) for f in out]
    assert sizes == sorted(set(sizes)), sizes  # the searches below need three distinct rates, in order
    return out


def cap(files, bpp: float, guess: float) -> LatentCap:
    """A search over POINTS whose typical rates are each file's own times ``guess``."""
    return LatentCap(bpp, POINTS, tuple(f.bpp * guess for f in files))


def between(lo: latent.Fitted, hi: latent.Fitted) -> float:
    return (lo.bpp + hi.bpp) / 2


def tried(result: latent_rate.Capped) -> list[float]:
    return [t["lam"] for t in result.tried]


def test_a_right_guess_takes_one_fit_and_gives_that_points_file_byte_for_byte(files):
    result = latent_rate.fit_to_cap(noisy_ramp(), cap(files, between(files[1], files[2]), 1.0))
    assert result.fitted.data == files[1].data and result.point == POINTS[1]
    assert tried(result) == [POINTS[1].lam]
    assert result.tried[0]["fits"] and result.tried[0]["bytes"] == len(files[1].data)


def test_a_cap_above_every_file_gives_the_top_point(files):
    result = latent_rate.fit_to_cap(noisy_ramp(), cap(files, files[2].bpp * 1.01, 1.0))
    assert result.fitted.data == files[2].data


def test_the_search_climbs_when_the_image_codes_smaller_than_its_guess(files):
    """Every guess three times too high: no point is expected to fit, so the lowest is fitted;
    its file rescales the guesses, and the search climbs to the highest point under the cap."""
    c = cap(files, between(files[1], files[2]), 3.0)
    assert c.typical_bpp[0] > c.bpp  # nothing expected to fit at first
    result = latent_rate.fit_to_cap(noisy_ramp(), c)
    assert tried(result) == [POINTS[0].lam, POINTS[1].lam]
    assert result.fitted.data == files[1].data


def test_the_search_steps_down_when_the_image_codes_larger_than_its_guess(files):
    """Every guess a third of the truth: the top point is fitted first, is over the cap, and the
    rescaled guesses send the search down to the point that fits."""
    c = cap(files, between(files[0], files[1]), 1 / 3)
    assert c.typical_bpp[2] <= c.bpp  # the top expected to fit at first
    reports = []
    result = latent_rate.fit_to_cap(noisy_ramp(), c, report=reports.append)
    assert tried(result) == [POINTS[2].lam, POINTS[0].lam]
    assert [t["fits"] for t in result.tried] == [False, True]
    assert result.fitted.data == files[0].data
    assert "over the cap" in reports[0] and "under the cap" in reports[1]


def test_a_file_of_exactly_the_caps_bytes_fits_and_one_byte_less_does_not(files):
    h, w, _ = noisy_ramp().shape
    exact = len(files[1].data) * 8 / (h * w)
    assert latent_rate.cap_bytes(cap(files, exact, 1.0), h, w) == len(files[1].data)
    assert latent_rate.fit_to_cap(noisy_ramp(), cap(files, exact, 1.0)).fitted.data == files[1].data
    short = (len(files[1].data) - 1) * 8 / (h * w)
    assert latent_rate.fit_to_cap(noisy_ramp(), cap(files, short, 1.0)).fitted.data == files[0].data


def test_a_cap_under_the_lowest_file_fails_naming_the_cap_and_what_the_lowest_took(files):
    what = r"cannot reach [\d.]+ bpp: the ladder's lowest point \(λ 0\.1\) took [\d.]+ bpp \(\d+ bytes, the cap \d+\)"
    with pytest.raises(ValueError, match=what):
        latent_rate.fit_to_cap(noisy_ramp(), cap(files, files[0].bpp / 2, 1.0))


def test_progress_is_asked_for_each_point_fitted(files):
    asked, steps = [], []

    def progress_for(point):
        asked.append(point.lam)
        return (lambda done, total, psnr: steps.append(done)), None

    latent_rate.fit_to_cap(noisy_ramp(), cap(files, between(files[0], files[1]), 1 / 3), progress_for)
    assert asked == [POINTS[2].lam, POINTS[0].lam]
    assert steps.count(POINTS[0].steps) == 2  # each fit ran to its end


def test_detail_is_the_mean_luma_step_across_plus_down():
    flat = np.full((4, 6, 3), 90, np.uint8)
    assert latent_rate.detail(flat) == 0.0
    stripes = np.zeros((4, 6, 1), np.uint8)
    stripes[:, 1::2] = 200  # grey: every step across is 200, none down
    assert latent_rate.detail(stripes) == pytest.approx(200.0)
    rgb = np.zeros((4, 6, 4), np.uint8)  # RGBA: the alpha channel does not count
    rgb[1::2, :, 1] = 100  # green rows: steps down of 58.7 (BT.601 luma), none across
    rgb[..., 3] = np.arange(6) * 40
    assert latent_rate.detail(rgb) == pytest.approx(58.7)
    assert latent_rate.detail(np.zeros((1, 1, 3), np.uint8)) == 0.0  # one pixel: no neighbours


def test_the_first_guess_scales_the_typical_rates_by_the_images_detail(files):
    """Typical rates three times the truth: without a guess the search must climb from the lowest
    point; a guess that reads a third from the image's detail goes straight to the right point."""
    c = cap(files, between(files[1], files[2]), 3.0)
    assert tried(latent_rate.fit_to_cap(noisy_ramp(), c)) == [POINTS[0].lam, POINTS[1].lam]
    d = latent_rate.detail(noisy_ramp())
    third = replace(c, guess=(math.log(1 / 3) - 0.5 * math.log(d), 0.5))  # exp(a) d^0.5 = 1/3
    assert latent_rate.first_scale(third, d) == pytest.approx(1 / 3)
    reports = []
    result = latent_rate.fit_to_cap(noisy_ramp(), third, report=reports.append)  # the detail measured on the image
    assert tried(result) == [POINTS[1].lam] and result.fitted.data == files[1].data
    assert result.first_guess == pytest.approx(1 / 3)
    assert reports[0] == f"detail {d:.1f}: its files expected at 0.33x the photos' typical rates"
    assert len(reports) == 2  # the guess, then the one fit
    assert tried(latent_rate.fit_to_cap(noisy_ramp(), third, image_detail=d * 9)) != [POINTS[1].lam]
    # a flat image's guess stops at the floor instead of going to zero
    assert latent_rate.first_scale(third, 0.0) == latent_rate.first_scale(third, latent_rate.DETAIL_FLOOR)
    # an absurd guess gives an absurd scale (the search then fits the lowest or the top point), never an error
    assert latent_rate.first_scale(replace(c, guess=(1e6, 0.0)), d) > 1e20
    assert latent_rate.first_scale(replace(c, guess=(-1e6, 0.0)), d) < 1e-20


def test_a_cap_refuses_what_cannot_be_searched():
    for bad in (0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite number above 0"):
            LatentCap(bad, POINTS, (0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="each with its typical"):
        LatentCap(0.1, POINTS, (0.1, 0.2))
    with pytest.raises(ValueError, match="ascending"):
        LatentCap(0.1, POINTS, (0.3, 0.2, 0.1))
    with pytest.raises(ValueError, match="slack"):
        LatentCap(0.1, POINTS, (0.1, 0.2, 0.3), slack=0.9)
    with pytest.raises(ValueError, match="first guess"):
        LatentCap(0.1, POINTS, (0.1, 0.2, 0.3), guess=(0.0, float("nan")))
    for bad in (None, 1.0, (1.0,), ("a", "b"), (1.0, 2.0, 3.0)):
        with pytest.raises(ValueError, match="first guess"):
            LatentCap(0.1, POINTS, (0.1, 0.2, 0.3), guess=bad)
    pair = LatentCap(0.1, POINTS, (0.1, 0.2, 0.3), guess=[1, np.float32(0.5)]).guess
    assert pair == (1.0, 0.5) and all(type(g) is float for g in pair)


def test_the_ladders_cap_orders_the_presets_points_by_their_typical_rate_and_carries_the_seed():
    c = config.latent_cap(0.5, seed=7)
    assert sorted(p.lam for p in c.points) == sorted(p.lam for p in config.LATENT_PRESET_LADDER)
    assert list(c.typical_bpp) == sorted(c.typical_bpp)
    assert {p.seed for p in c.points} == {7}
    assert [p.lam for p in c.points] == sorted(config.LATENT_RATE_BPP, key=config.LATENT_RATE_BPP.get)
    assert {replace(p, seed=0) for p in c.points} == set(config.LATENT_PRESET_LADDER)
    named = {config.latent_preset_name(p) for p in c.points} - {None}
    assert named == set(config.LATENT_PRESETS) - {"grid-medium"}  # the fast default is off the ladder


def test_the_typical_rates_are_the_ladders_means_on_the_tuning_photos():
    """LATENT_RATE_BPP is the committed fits of the presets' ladder on photo001-photo004, not a guess."""
    run = REPO / "benchmarks/results/latent/steps-x1.5-at/photos"
    doc = json.loads((run / "latent-proto.json").read_text())
    assert doc["images"] == [f"photo{i:03d}" for i in range(1, 5)] and doc["complete"]
    from benchmarks.latent_grid import point_config

    ran = [point_config(p) for p in doc["provenance"]["config"]["points"]]
    assert set(config.LATENT_PRESET_LADDER) == set(ran)  # the run's points are the presets' as they are
    means = {float(c["setting"].removeprefix("lam=")): round(c["bpp"], 4) for c in doc["curve"]}
    assert {p.lam: means[p.lam] for p in config.LATENT_PRESET_LADDER} == config.LATENT_RATE_BPP


def test_the_first_guess_is_the_fit_on_photographs_outside_the_tuning_set():
    """LATENT_RATE_GUESS is the committed least-squares fit of benchmarks.rate_guess on
    photo009-photo020, not a guess."""
    doc = json.loads((REPO / "benchmarks/results/latent/rate-guess/rate-guess.json").read_text())
    assert min(doc["details"]) == "photo009" and "photo008" not in doc["details"]
    assert (round(doc["a"], 4), round(doc["b"], 4)) == config.LATENT_RATE_GUESS
    assert config.latent_cap(0.5).guess == config.LATENT_RATE_GUESS


def test_the_python_api_takes_a_cap_for_the_grid_family(files, monkeypatch):
    """inrcodec.encode(..., bpp=) with no preset or a grid-* one searches the grid ladder as the
    command line does; with steps= it is refused (each point has its own)."""
    import inrcodec

    search = cap(files, between(files[1], files[2]), 1.0)
    monkeypatch.setattr(config, "latent_cap", lambda bpp, seed=None: replace(search, bpp=bpp))
    assert inrcodec.encode(noisy_ramp(), bpp=search.bpp) == files[1].data
    assert inrcodec.encode(noisy_ramp(), "grid-low", bpp=search.bpp) == files[1].data
    with pytest.raises(ValueError, match="steps: not with bpp"):
        inrcodec.encode(noisy_ramp(), "grid-low", bpp=search.bpp, steps=5)
    for preset in (None, "medium"):  # either family: refused before any work
        with pytest.raises(ValueError, match="finite number above 0"):
            inrcodec.encode(noisy_ramp(), preset, bpp=float("nan"))
