"""Bjøntegaard delta rate and delta PSNR (G. Bjøntegaard, VCEG-M33, 2001).

BD-rate: fit log(rate) as a cubic polynomial of PSNR for each curve, integrate both over the PSNR
range the curves share, and turn the mean log-rate difference into a percentage: the average extra
rate the test curve needs for the same quality (negative: it saves bits). BD-PSNR swaps the axes:
PSNR as a cubic of log(rate), integrated over the shared log-rate range, in dB (positive: test is
better).

With four points per curve this is VCEG-M33 exactly. Curves here often have more (a JPEG ladder
spans 23 to 42 dB): each curve is first cut to the points that span the shared range (those inside
it and the nearest one beyond each end), then fitted by least squares (a lower degree when fewer than
four points remain), so one cubic is never stretched over a range the other curve does not reach.
Where that fit is not monotone over the shared range (points bunched at one end make a cubic
swing; a rate–quality curve is monotone), the curve is integrated along straight lines between its
points instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class NoOverlap(ValueError):
    """The two curves share no quality (or rate) range, so there is nothing to average."""


def _span(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Indices of the points of x inside [lo, hi] plus the nearest one beyond each end."""
    order = np.argsort(x)
    xs = x[order]
    first = max(int(np.searchsorted(xs, lo, side="right")) - 1, 0)
    last = min(int(np.searchsorted(xs, hi, side="left")), len(xs) - 1)
    return order[first : last + 1]


def _fit_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Integral over [lo, hi] of the polynomial (degree min(3, n-1)) fitted to y(x) near [lo, hi];
    of the straight lines between the points where that polynomial is not monotone there (a
    rate–quality curve is)."""
    keep = _span(x, lo, hi)
    x, y = x[keep], y[keep]
    deg = min(3, len(x) - 1)
    fit = np.polyfit(x, y, deg)
    slope = np.polyval(np.polyder(fit), np.linspace(lo, hi, 129))
    if deg > 1 and not (np.all(slope >= 0) or np.all(slope <= 0)):
        return _linear_integral(x, y, lo, hi)
    poly = np.polyint(fit)
    return float(np.polyval(poly, hi) - np.polyval(poly, lo))


def _linear_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Integral over [lo, hi] of the piecewise-linear curve through the points (x sorted; the end
    segments extended). A rate–quality curve is monotone; a cubic through points bunched at one
    end of the range can swing far outside them between (kodim08's lowest grid points, three
    within 0.23 dB, gave the cubic +657,899 % against the SIREN), and lines cannot."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    grid = np.unique(np.concatenate([[lo, hi], x[(x > lo) & (x < hi)]]))
    at = np.interp(grid, x, y)
    for end, (a, b) in ((0, (0, 1)), (-1, (-2, -1))):  # np.interp holds ends flat: extend the lines
        if grid[end] < x[0] or grid[end] > x[-1]:
            at[end] = y[a] + (y[b] - y[a]) * (grid[end] - x[a]) / (x[b] - x[a])
    return float(np.sum((at[1:] + at[:-1]) * np.diff(grid)) / 2)


def _curve(rate: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r, q = np.asarray(rate, dtype=np.float64), np.asarray(quality, dtype=np.float64)
    if r.shape != q.shape or r.ndim != 1:
        raise ValueError("rate and quality must be 1-D sequences of the same length")
    if len(r) < 2:
        raise ValueError("a curve needs at least two points")
    if np.any(r <= 0) or not np.all(np.isfinite(q)):
        raise ValueError("rates must be positive and qualities finite")
    return np.log(r), q


def bd_rate(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """Average rate difference of the test curve against the anchor at equal PSNR, in percent."""
    la, qa = _curve(rate_anchor, psnr_anchor)
    lt, qt = _curve(rate_test, psnr_test)
    lo, hi = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    if hi <= lo:
        raise NoOverlap(f"PSNR ranges do not overlap ({qa.min():.2f}-{qa.max():.2f} vs {qt.min():.2f}-{qt.max():.2f})")
    diff = (_fit_integral(qt, lt, lo, hi) - _fit_integral(qa, la, lo, hi)) / (hi - lo)
    return float((np.exp(diff) - 1.0) * 100.0)


def bd_psnr(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """Average PSNR difference of the test curve against the anchor at equal rate, in dB."""
    la, qa = _curve(rate_anchor, psnr_anchor)
    lt, qt = _curve(rate_test, psnr_test)
    lo, hi = max(la.min(), lt.min()), min(la.max(), lt.max())
    if hi <= lo:
        ra, rt = np.exp([la.min(), la.max()]), np.exp([lt.min(), lt.max()])
        raise NoOverlap(f"rate ranges do not overlap ({ra[0]:.3f}-{ra[1]:.3f} vs {rt[0]:.3f}-{rt[1]:.3f})")
    return float((_fit_integral(lt, qt, lo, hi) - _fit_integral(la, qa, lo, hi)) / (hi - lo))


def overlap(psnr_anchor, psnr_test) -> tuple[float, float] | None:
    """The PSNR range a BD-rate is averaged over (None: no overlap)."""
    lo, hi = max(min(psnr_anchor), min(psnr_test)), min(max(psnr_anchor), max(psnr_test))
    return (float(lo), float(hi)) if hi > lo else None
