"""Rate-distortion rounding of a packed latent-grid file's latents (issue 15): encode side only.

Training ends by rounding each latent to its nearest integer, but the nearest integer is not
the one that costs least: the synthesis was quantized after training, the file's context model
is the integer twin of the one trained, and training's noise was never the rounding itself. This
pass moves latents of the finest ``levels`` by +-1 wherever the file's own D + lambda R says so,
both measured exactly: D by the NumPy decoder's render (the pixels a user gets) and R by the
range coder's tables (``checkerboard.moved_bits``). The format does not change; a decoder sees
other integers.

A latent reaches the pixels within its interpolation taps, so on a level the latents whose row
and column indices agree modulo the taps per axis (2 bilinear, 4 bicubic) touch disjoint
pixels: a render of the group moved (after one of it unmoved) gives every latent of the group its
own change of distortion, per move and latent channel. The context model's decode groups come in
their order (the checkerboard's anchors before the rest), so that a latent's table, which the
groups before it set, is the one it will be coded with. A latent's effect on the tables of
the latents that read it as context is left out of its choice; instead each level's moves are
kept only if the whole file's D + lambda R (its real bytes, its rendered pixels) went down, and
dropped if they would make a file the format cannot hold (a residual past its limit).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from inrcodec import coords
from inrcodec.decoder.latent import render, taps
from inrcodec.format.checkerboard import PassCache, moved_bits
from inrcodec.format.errors import FormatError
from inrcodec.format.latent import LatentFile, read, write

MOVES = (-1, 1)  # the integer moves tried for each latent


def cost(f: LatentFile, arr: np.ndarray, lam: float, threads: int | None) -> tuple[float, bytes, float]:
    """(D + lambda R, the file, its MSE on 0..255): D the MSE of [0, 1] colours of its render,
    R its bits per pixel, as ``encoder.latent.pack`` weighs them."""
    data = write(f)
    h, w = arr.shape[:2]
    err = float(np.mean((render(f, w, h, threads).astype(np.float64) - arr) ** 2))
    return file_cost(data, err, lam, h * w), data, err


def file_cost(data: bytes, err: float, lam: float, pixels: int) -> float:
    """D + lambda R of a file: D the MSE of [0, 1] colours (``err`` on 0..255), R its bits per pixel."""
    return err / 255.0**2 + lam * len(data) * 8 / pixels


def owners(centres: np.ndarray, n: int, bicubic: bool, residue: int) -> np.ndarray:
    """For each centre, the one tap index on an n-sample axis that is ``residue`` modulo the taps
    per axis and has a nonzero weight (-1 if none): which latent of a colour group reaches it."""
    axis_taps = taps(centres, n, bicubic)
    out = np.full(centres.size, -1)
    for index, weight in axis_taps:
        hit = (index % len(axis_taps) == residue) & (weight != 0)
        out[hit] = index[hit]
    return out


def _pixel_errors(f: LatentFile, arr: np.ndarray, threads: int | None) -> np.ndarray:
    """(h, w): each pixel's squared error of [0, 1] colours, mean over channels."""
    h, w = arr.shape[:2]
    img = render(f, w, h, threads).astype(np.float64)
    return np.mean((img - arr) ** 2, axis=2) / 255.0**2


def _with(f: LatentFile, level: int, q: np.ndarray) -> LatentFile:
    latents = list(f.latents)
    latents[level] = q
    return replace(f, latents=latents)


def refine_level(f: LatentFile, arr: np.ndarray, lam: float, level: int, threads: int | None = None) -> LatentFile:
    """``f`` with the latents of ``level`` moved by +-1 where that lowers their own D + lambda R
    (``lam`` per bit per pixel, D summed over the pixels they reach)."""
    h, w = arr.shape[:2]
    bicubic = f.header.interpolation == 1
    period = 4 if bicubic else 2
    xs, ys = coords.axis_np(w), coords.axis_np(h)
    q = f.latents[level].copy()
    channels, lh, lw = q.shape
    cache = PassCache()
    scheme = f.header.scheme
    base = _pixel_errors(f, arr, threads)
    for group, parities in enumerate(scheme.groups):
        colours = [(a, b) for a in range(period) for b in range(period) if (a % 2, b % 2) in parities]
        for a, b in colours:
            rows, cols = owners(ys, lh, bicubic, a), owners(xs, lw, bicubic, b)
            reached = (rows[:, None] >= 0) & (cols[None, :] >= 0)
            owner = (rows[:, None] * lw + cols[None, :])[reached]
            for c in range(channels):
                f = _with(f, level, q)
                bits = moved_bits(f.latents, f.context, level, group, (0, *MOVES), scheme, cache)
                bits = bits[:, c, a::period, b::period]
                best_cost, best = lam * bits[0], np.zeros(bits.shape[1:], np.int64)
                best_k = np.zeros(bits.shape[1:], np.int64)  # best's index in errors
                errors = [base]  # each pixel's error with the group unmoved, then moved by each move
                for k, move in enumerate(MOVES, start=1):
                    moved = q.copy()
                    moved[c, a::period, b::period] += move
                    errors.append(_pixel_errors(_with(f, level, moved), arr, threads))
                    change = errors[k] - base
                    dist = np.bincount(owner, weights=change[reached], minlength=lh * lw).reshape(lh, lw)
                    trial = dist[a::period, b::period] + lam * bits[k]
                    better = trial < best_cost
                    best_cost[better], best[better], best_k[better] = trial[better], move, k
                q[c, a::period, b::period] += best
                # A pixel sees one latent of the group, so its error now is the render's where its
                # latent took the move chosen: no render of the moved group needed.
                chosen = np.zeros((lh, lw), np.int64)
                chosen[a::period, b::period] = best_k
                base = base.copy()
                base[reached] = np.choose(chosen.reshape(-1)[owner], [e[reached] for e in errors])
    return _with(f, level, q)


def refine(data: bytes, arr: np.ndarray, lam: float, levels: int, threads: int | None = None) -> tuple[bytes, float]:
    """The file ``data`` (a version 8 or 9 latent file with a context model) of the
    (H, W, C) uint8 image ``arr`` after the pass on its ``levels`` finest levels, coarsest of
    them first, each level's moves kept only where the file's D + lambda R went down; and the
    MSE (0..255) of its decode."""
    f = read(data)
    best, kept, err = cost(f, arr, lam, threads)
    if not levels:
        return kept, err
    for level in reversed(range(min(levels, len(f.latents)))):
        try:
            trial = refine_level(f, arr, lam, level, threads)
            total, trial_data, trial_err = cost(trial, arr, lam, threads)
        except FormatError:  # a move pushed another latent's residual past what the stream holds
            continue
        if total < best:
            f, best, kept, err = trial, total, trial_data, trial_err
    return kept, err
