"""The CPU decoder: the SIREN evaluated with NumPy, without importing torch.

Importing torch takes longer than rendering a whole Kodak image, so on a machine without an
accelerator the decoder never loads it. The arithmetic is the network's forward pass in float32:
the Fourier features of the coordinates (as inrcodec.siren.fourier_features), then
x W^T + b, sin(omega * .), clamped to [-1, 1] and rounded to 8 bits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from inrcodec import blas, coords
from inrcodec.pixels import from_unit

CHUNK_PIXELS = 1 << 13  # pixels at once: 3.7 MB of activations at width 112 stay in cache (0.80 -> 0.67 s)
MAX_THREADS = 8  # bands rendered concurrently (NumPy's sin and matmul release the GIL)
ROW_GROUP = 64  # rows per bias addition (add_rows)
THREADS_ENV = "INRCODEC_THREADS"  # caps the threads, like OMP_NUM_THREADS (the benchmark sets 1 per worker)


class RenderAborted(Exception):
    """The render a reader of :class:`RowsDone` followed stopped before its rows were done."""


class RowsDone:
    """Which rows of an image being rendered are final, for a reader that follows the bands (the
    PNG writer, which then compresses the first rows while the last ones render instead of after):
    bands finish in any order; :meth:`wait` returns once every row above ``y`` is done."""

    def __init__(self, height: int) -> None:
        self.height = height
        self._cond = threading.Condition()
        self._ends: dict[int, int] = {}  # finished bands past the done prefix: start -> end
        self._top = 0  # rows 0 .. _top - 1 are done
        self._aborted = False

    def mark(self, y0: int, y1: int) -> None:
        """Rows y0 .. y1 - 1 are final."""
        with self._cond:
            self._ends[y0] = y1
            while self._top in self._ends:
                self._top = self._ends.pop(self._top)
            self._cond.notify_all()

    def finish(self) -> None:
        """Every row is final (a render that does not mark its bands marks them all at the end)."""
        with self._cond:
            self._top = self.height
            self._ends.clear()
            self._cond.notify_all()

    def abort(self) -> None:
        """The render failed: :meth:`wait` raises RenderAborted from now on."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def wait(self, y: int) -> None:
        """Block until rows 0 .. y - 1 are final; RenderAborted once the render has failed or was
        interrupted (even with every row done: a writer's last call then keeps its file out)."""
        with self._cond:
            while not self._aborted and self._top < min(y, self.height):
                self._cond.wait()
            if self._aborted:
                raise RenderAborted("the render stopped")


def output_array(height: int, width: int, channels: int, out: np.ndarray | None) -> np.ndarray:
    """``out`` if given (a caller's (height, width, channels) uint8 array, one a writer may follow),
    else a new one."""
    if out is None:
        return np.empty((height, width, channels), dtype=np.uint8)
    if out.shape != (height, width, channels) or out.dtype != np.uint8:
        raise ValueError(f"out must be a ({height}, {width}, {channels}) uint8 array, not {out.dtype} {out.shape}")
    return out


def fourier_freqs(levels: int) -> np.ndarray:
    """f_k = float32(pi) 2^k, k < levels, as float32 (the torch encoder's values)."""
    return np.float32(np.pi) * (2.0 ** np.arange(levels)).astype(np.float32)


def fourier_features(xy: np.ndarray, levels: int) -> np.ndarray:
    """(N, 2) -> (N, 2 (1 + 2L)) float32: xy, sin(f_k c), cos(f_k c), f_k = float32(pi) 2^k
    (docs/format.md, version 3); the arguments are the torch encoder's, bit for bit."""
    if levels == 0:
        return xy
    args = (xy[:, :, None] * fourier_freqs(levels)).reshape(len(xy), -1)  # c0 k0..kL-1, c1 k0..kL-1
    return np.concatenate([xy, np.sin(args), np.cos(args)], axis=1)


def forward(
    xy: np.ndarray,
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    omega0: float,
    omega_hidden: float,
    pe_levels: int = 0,
) -> np.ndarray:
    """The SIREN at ``xy`` (N, 2) float32: sine layers, then the linear output layer."""
    h = fourier_features(xy, pe_levels) @ weights[0].T
    add_rows(h, biases[0])
    h *= np.float32(omega0)
    np.sin(h, out=h)
    return forward_from(h, weights[1:], biases[1:], omega_hidden)


def forward_from(
    h: np.ndarray,
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    omega_hidden: float,
    scratch: list[np.ndarray] | None = None,
) -> np.ndarray:
    """The rest of the network after the first sine layer's output ``h``. With ``scratch`` (two
    flat float32 arrays of at least rows x widest layer each), every product is written into
    them in turn instead of a new array: the same operations, so the same values, without
    allocating (and first-touching) a few megabytes per layer and chunk."""
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        out = None
        if scratch is not None:
            buf = scratch[i % 2]
            out = buf[: h.shape[0] * w.shape[0]].reshape(h.shape[0], w.shape[0])
            if np.may_share_memory(out, h):  # never: h is the other buffer or the caller's
                out = None
        h = np.matmul(h, w.T, out=out)
        add_rows(h, b)
        if i < last:
            h *= np.float32(omega_hidden)
            np.sin(h, out=h)
    return h


def add_rows(h: np.ndarray, b: np.ndarray) -> None:
    """``h += b`` for (N, k) ``h``, in place: the same float32 additions, with ROW_GROUP rows
    viewed as one row of ROW_GROUP k values (b tiled to match). Broadcast over rows of k, NumPy's
    inner loop runs k values at a time (80 in a hidden layer, 3 in the output one), and its
    per-call cost was more than the additions: 0.24 -> 0.11 ms for an 8192 x 80 band."""
    n, k = h.shape
    full = n - n % ROW_GROUP if h.flags.c_contiguous else 0  # a view, never a copy, is added to
    if full:
        rows = h[:full].reshape(full // ROW_GROUP, ROW_GROUP * k)
        np.add(rows, np.tile(b, ROW_GROUP), out=rows)
    h[full:] += b


def axis_term(c: np.ndarray, w0: np.ndarray, axis: int, levels: int) -> np.ndarray:
    """One coordinate's share of the first layer, (len(c), out): its value, sines and cosines
    (fourier_features' columns for that axis) times the matching columns of W0.

    Every Fourier feature depends on x alone or on y alone, so on a grid W0 γ(x, y) + b0 is a
    per-column term plus a per-row term plus b0: two small products and a broadcast sum instead of
    a (pixels × 2(1+2L)) product. The sum is ordered differently from the product, so pixels may
    differ from the torch path by float rounding (docs/pipeline.md, "Decoding").
    """
    args = c[:, None] * fourier_freqs(levels)  # the same float32 products as fourier_features
    feats = np.concatenate([c[:, None], np.sin(args), np.cos(args)], axis=1)
    n = levels
    cols = np.r_[axis, 2 + axis * n : 2 + (axis + 1) * n, 2 + (2 + axis) * n : 2 + (3 + axis) * n]
    return feats @ w0[:, cols].T


def default_threads() -> int:
    """$INRCODEC_THREADS if set, else the CPU count."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, not {value!r}")
    return int(value)


def render(
    weights: list[list[np.ndarray]],
    biases: list[np.ndarray],
    omega0: float,
    omega_hidden: float,
    width: int,
    height: int,
    labels: np.ndarray | None = None,
    threads: int | None = None,
    pe_levels: int = 0,
    out: np.ndarray | None = None,
    rows: RowsDone | None = None,
) -> np.ndarray:
    """(height, width, C) uint8 pixels; ``weights[k]`` is the ticket of region k (one entry
    without regions), ``labels`` the stored label map resampled by coords.label_rows_np,
    ``threads`` how many bands run at once (default: $INRCODEC_THREADS, else one per CPU;
    at most MAX_THREADS), ``pe_levels`` the header's Fourier levels; into ``out`` if given,
    each band marked done in ``rows`` as it is written."""
    channels = biases[-1].shape[0]
    out = output_array(height, width, channels, out)
    rows_per = max(1, CHUNK_PIXELS // width)
    split = labels is None and pe_levels > 0  # the first layer by axis (axis_term), one ticket
    if split:
        per_col = axis_term(coords.axis_np(width), weights[0][0], 0, pe_levels)  # the same for every band
        per_row = axis_term(coords.axis_np(height), weights[0][0], 1, pe_levels) + biases[0]

    widest = max(b.shape[0] for b in biases)
    local = threading.local()

    def scratch() -> list[np.ndarray]:
        """Three flat buffers per rendering thread, made once: the first layer's output and the
        two that the later layers' products alternate between."""
        if not hasattr(local, "bufs"):
            local.bufs = [np.empty(rows_per * width * widest, dtype=np.float32) for _ in range(3)]
        return local.bufs

    def band(y0: int) -> None:
        # The bands are fixed by CHUNK_PIXELS alone, whatever the thread count, so every band
        # does the same arithmetic whether it runs alone or beside others: same pixels.
        y1 = min(height, y0 + rows_per)
        if split:
            first, *pair = scratch()
            n_out = per_col.shape[1]
            h = first[: (y1 - y0) * width * n_out].reshape(y1 - y0, width, n_out)
            np.add(per_row[y0:y1, None, :], per_col[None, :, :], out=h)
            h = h.reshape((y1 - y0) * width, n_out)
            h *= np.float32(omega0)
            np.sin(h, out=h)
            vals = forward_from(h, weights[0][1:], biases[1:], omega_hidden, pair)
        elif labels is None:
            vals = forward(coords.rows_np(y0, y1, height, width), weights[0], biases, omega0, omega_hidden, pe_levels)
        else:
            xy = coords.rows_np(y0, y1, height, width)
            lab = coords.label_rows_np(labels, y0, y1, height, width)
            vals = np.empty((xy.shape[0], channels), dtype=np.float32)
            for k, ws in enumerate(weights):
                sel = np.flatnonzero(lab == k)
                if sel.size:
                    vals[sel] = forward(xy[sel], ws, biases, omega0, omega_hidden, pe_levels)
        out[y0:y1] = from_unit(np.clip(vals, -1.0, 1.0)).reshape(y1 - y0, width, channels)
        if rows is not None:
            rows.mark(y0, y1)

    run_bands(band, range(0, height, rows_per), threads)
    return out


def run_bands(band: Callable[[int], None], starts: range, threads: int | None = None) -> None:
    """``band(y0)`` for every start, on up to ``threads`` threads (default: $INRCODEC_THREADS, else
    one per CPU; at most MAX_THREADS). The bands are fixed by the caller, whatever the thread
    count, so every band does the same arithmetic whether it runs alone or beside others."""
    n = min(threads or default_threads(), MAX_THREADS, len(starts))
    # One BLAS thread per band, also when the bands run one after another: bands on n threads,
    # each matmul on n BLAS threads, would oversubscribe the cores (measured on 2 cores: 0.46 s
    # against 0.25 s for 768x512), and bands run one at a time with OpenBLAS's two spinning
    # threads were 3.8x slower than on one BLAS thread while other jobs held the second core
    # (768x512 on one render thread, load 2.9: 1.28 s in release 1.2, 0.34 s here). The products'
    # values do not depend on BLAS's thread count (tests/test_decoder.py).
    with blas.one_thread():
        if n <= 1:
            for y0 in starts:
                band(y0)
        else:
            with ThreadPoolExecutor(n) as pool:
                list(pool.map(band, starts))  # list(): re-raises a band's exception here
