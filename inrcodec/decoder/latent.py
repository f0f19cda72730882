"""The latent-grid family's decoder (format versions 5, 7, 8 and 9), in NumPy: the reference for its pixels.

Each grid is sampled at every output pixel's centre, bilinearly or bicubically, by the convention
of torch's ``grid_sample`` with ``align_corners=False`` and border padding, which the encoder
trains with (grid coordinate ``((x + 1) * n - 1) / 2``), beside the pixel's Fourier features,
through the synthesis (sine layers, or ReLU for the ablation). Sampling is separable on a pixel grid, so each
band of rows interpolates the grid's rows once, then its columns. float32 throughout, in a fixed
order of operations, as the SIREN's CPU decoder.
"""

from __future__ import annotations

import numpy as np

from inrcodec import coords
from inrcodec.decoder.cpu import RowsDone, fourier_freqs, output_array, run_bands
from inrcodec.format.latent import LatentFile
from inrcodec.pixels import from_unit

BAND_PIXELS = 1 << 15  # pixels evaluated at once


A = np.float32(-0.75)  # the cubic convolution kernel's parameter (Keys; torch's bicubic)


def taps(centres: np.ndarray, n: int, bicubic: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """(index, float32 weight) of each tap of each centre on an n-sample axis. Bilinear: the
    position clamped to [0, n - 1], two taps. Bicubic: four taps around the unclamped position,
    each index clamped to the grid (border padding)."""
    one = np.float32(1)
    pos = ((centres + one) * np.float32(n) - one) / np.float32(2)
    if not bicubic:
        pos = np.clip(pos, np.float32(0), np.float32(n - 1))
        lo = np.floor(pos)
        t = (pos - lo).astype(np.float32)
        lo = lo.astype(np.int64)
        return [(lo, one - t), (np.minimum(lo + 1, n - 1), t)]
    lo = np.floor(pos)
    t = (pos - lo).astype(np.float32)
    lo = lo.astype(np.int64)

    def near(x):  # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + one

    def far(x):  # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    weights = [far(t + one), near(t), near(one - t), far(np.float32(2) - t)]
    return [(np.clip(lo + k, 0, n - 1), w.astype(np.float32)) for k, w in zip((-1, 0, 1, 2), weights)]


def _sample(grid: np.ndarray, rows: list, cols: list) -> np.ndarray:
    """(C, h, w) float32 grid at the outer product of row and column taps -> (rows, cols, C)."""
    g = grid.transpose(1, 2, 0)  # (h, w, C)
    by_row = sum(g[i] * w[:, None, None] for i, w in rows)
    return sum(by_row[:, i] * w[None, :, None] for i, w in cols)


def render(
    f: LatentFile,
    width: int,
    height: int,
    threads: int | None = None,
    out: np.ndarray | None = None,
    rows: RowsDone | None = None,
) -> np.ndarray:
    """(height, width, C) uint8 pixels of the file decoded at any size; bands of rows run on up to
    ``threads`` threads (cpu.run_bands: the same pixels at any count); into ``out`` if given, each
    band marked done in ``rows`` as it is written (cpu.render's)."""
    h = f.header
    grids = [q.astype(np.float32) for q in f.latents]
    tensors = f.synthesis()
    weights, biases = tensors[0::2], tensors[1::2]
    omega = np.float32(h.omega)
    xs, ys = coords.axis_np(width), coords.axis_np(height)
    bicubic = h.interpolation == 1
    col_taps = [taps(xs, g.shape[2], bicubic) for g in grids]
    # Each Fourier feature depends on x or on y alone: sin and cos of the same float32 arguments
    # as cpu.fourier_features (x f_k, y f_k), computed per column once and per row, then broadcast.
    freqs = fourier_freqs(h.pe_levels)
    x_args, y_args = xs[:, None] * freqs, ys[:, None] * freqs
    x_sin, x_cos, y_sin, y_cos = np.sin(x_args), np.cos(x_args), np.sin(y_args), np.cos(y_args)
    n_latent = sum(g.shape[0] for g in grids)
    n_in = n_latent + 4 * h.pe_levels
    out = output_array(height, width, h.channels, out)
    rows_per = max(1, BAND_PIXELS // width)

    def band(y0: int) -> None:
        y1 = min(height, y0 + rows_per)
        n = (y1 - y0) * width
        # The synthesis' input, in the order its first layer's columns expect (the encoder's
        # concatenation): each grid's channels, then sin x, sin y, cos x, cos y of the Fourier
        # arguments (cpu.fourier_features without xy itself).
        a = np.empty((y1 - y0, width, n_in), dtype=np.float32)
        at = 0
        for g, cols in zip(grids, col_taps):
            a[:, :, at : at + g.shape[0]] = _sample(g, taps(ys[y0:y1], g.shape[1], bicubic), cols)
            at += g.shape[0]
        for part in (x_sin[None], y_sin[y0:y1, None], x_cos[None], y_cos[y0:y1, None]):
            a[:, :, at : at + h.pe_levels] = part
            at += h.pe_levels
        a = a.reshape(n, n_in)
        for w, b in zip(weights[:-1], biases[:-1]):
            a = a @ w.T
            a += b
            if h.activation == 0:
                a *= omega
                np.sin(a, out=a)
            else:
                np.maximum(a, np.float32(0), out=a)
        a = a @ weights[-1].T
        a += biases[-1]
        out[y0:y1] = from_unit(a).reshape(y1 - y0, width, -1)
        if rows is not None:
            rows.mark(y0, y1)

    run_bands(band, range(0, height, rows_per), threads)
    return out


def render_torch(f: LatentFile, width: int, height: int, device: str) -> np.ndarray:
    """The same pixels from torch on ``device`` (a GPU): ``grid_sample`` on the grids, the synthesis
    as matrix products, in bands. Agrees with :func:`render` within float rounding (one grey
    level); the NumPy render is the reference."""
    import torch
    import torch.nn.functional as F

    h = f.header
    mode = ("bilinear", "bicubic")[h.interpolation]
    grids = [torch.from_numpy(q.astype(np.float32))[None].to(device) for q in f.latents]
    tensors = [torch.from_numpy(t).to(device) for t in f.synthesis()]
    weights, biases = tensors[0::2], tensors[1::2]
    out = np.empty((height, width, h.channels), dtype=np.uint8)
    rows_per = max(1, (BAND_PIXELS * 8) // width)
    with torch.no_grad():
        for y0 in range(0, height, rows_per):
            y1 = min(height, y0 + rows_per)
            xy = coords.rows(y0, y1, height, width, device)
            grid = xy[None, None]
            feats = [
                F.grid_sample(g, grid, mode=mode, padding_mode="border", align_corners=False)[0, :, 0].T for g in grids
            ]
            a = torch.cat([*feats, _fourier_torch(xy, h.pe_levels)], dim=1)
            for w, b in zip(weights[:-1], biases[:-1]):
                a = a @ w.T + b
                a = torch.sin(h.omega * a) if h.activation == 0 else torch.relu(a)
            a = (a @ weights[-1].T + biases[-1]).cpu().numpy()
            out[y0:y1] = from_unit(a).reshape(y1 - y0, width, -1)
    return out


def _fourier_torch(xy, levels: int):
    """sin and cos of the Fourier arguments (decoder/cpu.py's definition, without xy itself)."""
    import math

    import torch

    if levels == 0:
        return xy[:, :0]
    freqs = torch.tensor(math.pi, dtype=torch.float32) * 2.0 ** torch.arange(levels, dtype=torch.float32)
    args = (xy[:, :, None] * freqs.to(xy.device)).flatten(1)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)
