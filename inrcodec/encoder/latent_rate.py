"""Rate control for the latent-grid family: the best point of the ladder whose file fits a cap.

A latent-grid file's size follows the image as much as its lambda (one point's file on the tuning
photos takes 0.6x to 1.8x that point's mean bpp), so no table can say in advance which point
fits: the search measures. It fits the highest point whose typical rate fits the cap; then it
scales every point's typical rate by what this image's last file took against its own, and moves
up while a higher point is expected to fit, down while the file is over the cap. Every file it
makes is that ladder point's file byte for byte (the same :func:`latent.fit`), and the one with
the highest PSNR under the cap is kept: one fit when the first guess is right, two to four when
the image codes much smaller or larger than the photos did (on Kodak 2.0 on the mean, at most 4).
"""

from __future__ import annotations

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

    @property
    def data(self) -> bytes:
        """The file's bytes (as an Encoded's and a Fitted's ``data``)."""
        return self.fitted.data


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
) -> Capped:
    """The highest-PSNR file among the ladder points fitted for ``arr`` that fit ``cap``.

    ``fit`` is :func:`latent.fit` (benchmarks.grid_rate_control replays the search with the
    committed files of a ladder run instead). Raises ValueError if even the lowest point's file
    is over the cap."""
    h, w, _ = arr.shape
    limit = cap_bytes(cap, h, w)
    fits, over, scale = -1, len(cap.points), 1.0
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
    return Capped(best[0], best[1], tried)
