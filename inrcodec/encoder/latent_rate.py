"""Rate control for the latent-grid family: the best point of the ladder whose file fits a cap.

A latent-grid file's size follows the image as much as its lambda (one point's file on the tuning
photos takes 0.6x to 1.8x that point's mean bpp), so no table can say in advance which point
fits: the search measures. It first scales every point's typical rate by a guess from the image
itself (its detail: how much neighbouring pixels differ, which predicts its files' sizes to
about ±20 %: a spread of 0.18 in log rate on photo009-photo020, 0.43 without it) and fits the
highest point then expected to fit the cap; then it scales every point's typical rate by what
this image's last file took against its own, and moves up while a higher point is expected to
fit, down while the file is over the cap. Every file it makes is that ladder point's file byte
for byte (the same :func:`latent.fit`), and the one with the highest PSNR under the cap is kept:
one fit when the first guess is right, two to four when it is not (docs/benchmark.md, "Rate
control for the family").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from inrcodec.config import LatentCap, LatentConfig, latent_preset_name
from inrcodec.encoder import latent

# (point) -> the fit's step and stage callbacks (latent.fit's on_step, on_stage), or None
ProgressFor = Callable[[LatentConfig], tuple[Callable | None, Callable | None] | None]


@dataclass(frozen=True)
class Capped:
    """The file rate control chose, its point, and every point it fitted on the way."""

    fitted: latent.Fitted  # the kept file and its figures
    point: LatentConfig  # the ladder point it is the file of
    tried: list[dict]  # per fit: lam, preset (None: an unnamed point), bytes, bpp, psnr, fits, cpu_seconds
    first_guess: float = 1.0  # the image's files against the typical ones, as guessed before any fit

    @property
    def data(self) -> bytes:
        """The file's bytes (as an Encoded's and a Fitted's ``data``)."""
        return self.fitted.data


LUMA = np.array([0.299, 0.587, 0.114])  # BT.601's weights of R, G, B
DETAIL_FLOOR = 0.5  # below this (a flat image) the guess stops falling: the top point is tried first


def detail(arr: np.ndarray) -> float:
    """The (H, W, C) uint8 image's mean absolute luma step (0..255) between horizontal
    neighbours plus that between vertical ones: a few milliseconds, and on photo009-photo020 it
    cuts the spread of an image's files against the typical ones from 0.43 to 0.18 in log rate.
    Grey images use their one channel, alpha is ignored, and a one-pixel-wide (or -high) image
    has no step that way (0). Fitted on photographs (detail 5-34): for a flat or synthetic
    image the guess is an extrapolation, which the search's fits correct."""
    a = arr.astype(np.float64)
    y = a[..., :3] @ LUMA if a.shape[2] >= 3 else a[..., 0]
    across = float(np.abs(np.diff(y, axis=1)).mean()) if y.shape[1] > 1 else 0.0
    down = float(np.abs(np.diff(y, axis=0)).mean()) if y.shape[0] > 1 else 0.0
    return across + down


def first_scale(cap: LatentCap, image_detail: float) -> float:
    """The guess of this image's files against the typical ones, before any is fitted."""
    a, b = cap.guess
    # clamped so that an absurd guess gives a huge (or tiny) scale, never an OverflowError
    return math.exp(min(max(a + b * math.log(max(image_detail, DETAIL_FLOOR)), -50.0), 50.0))


def cap_bytes(cap: LatentCap, height: int, width: int) -> int:
    """The largest file the cap allows (as the SIREN's rate control counts it)."""
    return int(cap.bpp * height * width / 8)


def next_point(cap: LatentCap, fits: int, over: int, scale: float) -> int | None:
    """The index to fit next: the highest point strictly between the highest that fitted (``fits``;
    -1 none) and the lowest that did not (``over``; len(points) none) whose typical rate times
    ``scale`` is within the cap. None when there is none; but while nothing has fitted, the lowest
    point is tried even if it is not expected to fit (it may, and it is the cheapest to fit)."""
    expected = [k for k in range(fits + 1, over) if cap.typical_bpp[k] * scale <= cap.bpp * cap.slack]
    if expected:
        return expected[-1]
    if fits < 0 and over > 0:
        return 0
    return None


def fit_to_cap(
    arr: np.ndarray,
    cap: LatentCap,
    progress_for: ProgressFor | None = None,
    report: Callable[[str], None] | None = None,
    fit: Callable[..., latent.Fitted] = latent.fit,
    image_detail: float | None = None,
) -> Capped:
    """The highest-PSNR file among the ladder points fitted for ``arr`` that fit ``cap``.

    ``fit`` is :func:`latent.fit` (benchmarks.grid_rate_control replays the search with the
    committed files of a ladder run instead, and passes ``image_detail``, else measured on
    ``arr``). Raises ValueError if even the lowest point's file is over the cap."""
    h, w, _ = arr.shape
    limit = cap_bytes(cap, h, w)
    if image_detail is None:
        image_detail = detail(arr)
    fits, over, scale = -1, len(cap.points), first_scale(cap, image_detail)
    guess = scale
    if report and cap.guess != (0.0, 0.0):
        report(f"detail {image_detail:.1f}: its files expected at {guess:.2f}x the photos' typical rates")
    best: tuple[latent.Fitted, LatentConfig] | None = None
    tried: list[dict] = []
    k = next_point(cap, fits, over, scale)
    while k is not None:
        point = cap.points[k]
        callbacks = progress_for(point) if progress_for else None
        fitted = fit(arr, point, *(callbacks or (None, None)))
        ok = len(fitted.data) <= limit
        name = latent_preset_name(point)
        tried.append(
            {
                "lam": point.lam,
                "preset": name,
                "bytes": len(fitted.data),
                "bpp": fitted.bpp,
                "psnr": fitted.psnr,
                "fits": ok,
                "cpu_seconds": round(fitted.seconds, 3),
            }
        )
        if report:
            verdict = "under" if ok else "over"
            label = f"{name} (λ {point.lam:g})" if name else f"λ {point.lam:g}"
            report(f"{label}: {fitted.bpp:.4f} bpp, {verdict} the cap of {cap.bpp:g}")
        if ok:
            fits = k
            if best is None or fitted.psnr > best[0].psnr:
                best = (fitted, point)
        else:
            over = k
        # This image's files against the photos': the next guess of every point's rate.
        scale = fitted.bpp / cap.typical_bpp[k] if fitted.bpp > 0 else scale
        k = next_point(cap, fits, over, scale)
    if best is None:
        lowest = tried[-1]
        raise ValueError(
            f"cannot reach {cap.bpp:g} bpp: the ladder's lowest point (λ {lowest['lam']:g}) took "
            f"{lowest['bpp']:.4f} bpp ({lowest['bytes']} bytes, the cap {limit})"
        )
    return Capped(best[0], best[1], tried, guess)
