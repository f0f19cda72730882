"""The one coordinate convention shared by encoder and decoder.

Pixel centres map to [-1, 1] on each axis: column i of a width-W image sits at
x = (2i + 1) / W - 1, so the same continuous image is sampled at any size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: the NumPy decoder path never loads it
    import torch


def axis_np(n: int) -> np.ndarray:
    """Pixel-centre coordinates of one axis of length ``n``: float64 arithmetic, one rounding to
    float32 (so the torch and NumPy paths hold identical coordinates)."""
    i = np.arange(n, dtype=np.float64)
    return ((2.0 * i + 1.0) / n - 1.0).astype(np.float32)


def rows_np(y0: int, y1: int, height: int, width: int) -> np.ndarray:
    """NumPy twin of :func:`rows`: (N, 2) float32 (x, y) of rows y0..y1-1."""
    ys = axis_np(height)[y0:y1]
    xs = axis_np(width)
    return np.stack([np.tile(xs, len(ys)), np.repeat(ys, len(xs))], axis=1)


def cells_np(n: int, n_cells: int) -> np.ndarray:
    """NumPy twin of :func:`cells` (exact integer arithmetic)."""
    i = np.arange(n, dtype=np.int64)
    return ((2 * i + 1) * n_cells) // (2 * n)


def label_rows_np(labels: np.ndarray, y0: int, y1: int, height: int, width: int) -> np.ndarray:
    """NumPy twin of :func:`label_rows`."""
    mh, mw = labels.shape
    return labels[cells_np(height, mh)[y0:y1]][:, cells_np(width, mw)].reshape(-1)


def axis(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Pixel-centre coordinates of one axis of length ``n`` (float32)."""
    import torch

    return torch.from_numpy(axis_np(n)).to(device)


def grid(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """All pixel centres of a height x width image, row-major, as (H*W, 2) with (x, y) columns."""
    import torch

    ys = axis(height, device)
    xs = axis(width, device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def rows(y0: int, y1: int, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Coordinates of rows y0..y1-1 of a height x width image: lets the decoder render in bands."""
    import torch

    ys = axis(height, device)[y0:y1]
    xs = axis(width, device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def cells(n: int, n_cells: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """For each of ``n`` pixel centres of an axis, the cell holding it when [-1, 1] is cut into
    ``n_cells`` equal cells: floor((2i + 1) * n_cells / (2n)), in exact integer arithmetic.

    This is nearest-neighbour sampling on pixel centres (the cell whose centre is nearest); a
    centre exactly on a boundary goes to the upper cell. Label maps and region grids are
    resampled to any output size with it, by encoder and decoder alike.
    """
    import torch

    return torch.from_numpy(cells_np(n, n_cells)).to(device)


def label_rows(labels: torch.Tensor, y0: int, y1: int, height: int, width: int) -> torch.Tensor:
    """Labels of rows y0..y1-1 of a height x width image sampled from the (map height, map width)
    label map ``labels``, flat and row-major like :func:`rows`."""
    mh, mw = labels.shape
    r = cells(height, mh, labels.device)[y0:y1]
    c = cells(width, mw, labels.device)
    return labels[r][:, c].reshape(-1)
