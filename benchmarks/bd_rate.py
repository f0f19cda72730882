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
Where either curve's fit falls somewhere over the shared range or swings past its points (by more
than a tenth of their range; points bunched at one end make a cubic do both, and a rate–quality
curve does neither), both curves are integrated along straight lines between their points instead.
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


def _kept(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    keep = _span(x, lo, hi)
    return x[keep], y[keep]


def _poly(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The least-squares polynomial of degree min(3, n - 1) through the kept points."""
    return np.polyfit(x, y, min(3, len(x) - 1))


def _bends(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> bool:
    """Whether the fit misbehaves over [lo, hi]: it falls somewhere (both a curve's log-rate as a
    function of PSNR and its PSNR as a function of log-rate rise), or it leaves the kept points'
    range by more than a tenth of that range (a cubic through points bunched at one end can swing
    far past them while rising; a least-squares fit over many points only grazes the ends)."""
    x, y = _kept(x, y, lo, hi)
    if len(x) < 3:
        return False
    fit = _poly(x, y)
    t = np.linspace(lo, hi, 129)
    along, slope = np.polyval(fit, t), np.polyval(np.polyder(fit), t)
    margin = 0.1 * (y.max() - y.min())
    return bool(np.any(slope < 0) or along.min() < y.min() - margin or along.max() > y.max() + margin)


def _fit_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, lines: bool = False) -> float:
    """Integral over [lo, hi] of the polynomial fitted to y(x) near [lo, hi], or (``lines``) of
    the straight lines between the kept points."""
    x, y = _kept(x, y, lo, hi)
    if lines:
        return _linear_integral(x, y, lo, hi)
    poly = np.polyint(_poly(x, y))
    return float(np.polyval(poly, hi) - np.polyval(poly, lo))


def _linear_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Integral over [lo, hi] of the piecewise-linear curve through the points, its first and last
    segments extended beyond them (points at the same x merged into their mean y)."""
    xs, inverse = np.unique(x, return_inverse=True)
    ys = np.bincount(inverse, weights=y) / np.bincount(inverse)
    if len(xs) == 1:
        return float(ys[0] * (hi - lo))

    def at(t: np.ndarray) -> np.ndarray:
        first = ys[0] + (ys[1] - ys[0]) * (t - xs[0]) / (xs[1] - xs[0])
        last = ys[-1] + (ys[-1] - ys[-2]) * (t - xs[-1]) / (xs[-1] - xs[-2])
        return np.where(t < xs[0], first, np.where(t > xs[-1], last, np.interp(t, xs, ys)))

    grid = np.unique(np.concatenate([[lo, hi], xs[(xs > lo) & (xs < hi)]]))
    values = at(grid)
    return float(np.sum((values[1:] + values[:-1]) * np.diff(grid)) / 2)


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
    lines = _bends(qt, lt, lo, hi) or _bends(qa, la, lo, hi)  # one method for both curves
    diff = (_fit_integral(qt, lt, lo, hi, lines) - _fit_integral(qa, la, lo, hi, lines)) / (hi - lo)
    return float((np.exp(diff) - 1.0) * 100.0)


def bd_psnr(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """Average PSNR difference of the test curve against the anchor at equal rate, in dB."""
    la, qa = _curve(rate_anchor, psnr_anchor)
    lt, qt = _curve(rate_test, psnr_test)
    lo, hi = max(la.min(), lt.min()), min(la.max(), lt.max())
    if hi <= lo:
        ra, rt = np.exp([la.min(), la.max()]), np.exp([lt.min(), lt.max()])
        raise NoOverlap(f"rate ranges do not overlap ({ra[0]:.3f}-{ra[1]:.3f} vs {rt[0]:.3f}-{rt[1]:.3f})")
    lines = _bends(lt, qt, lo, hi) or _bends(la, qa, lo, hi)
    return float((_fit_integral(lt, qt, lo, hi, lines) - _fit_integral(la, qa, lo, hi, lines)) / (hi - lo))


def overlap(psnr_anchor, psnr_test) -> tuple[float, float] | None:
    """The PSNR range a BD-rate is averaged over (None: no overlap)."""
    lo, hi = max(min(psnr_anchor), min(psnr_test)), min(max(psnr_anchor), max(psnr_test))
    return (float(lo), float(hi)) if hi > lo else None
