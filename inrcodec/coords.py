"""The one coordinate convention shared by encoder and decoder.

Pixel centres map to [-1, 1] on each axis: column i of a width-W image sits at
x = (2i + 1) / W - 1, so the same continuous image is sampled at any size.
"""

from __future__ import annotations

import torch


def axis(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Pixel-centre coordinates of one axis of length ``n`` (float32)."""
    i = torch.arange(n, dtype=torch.float64, device=device)
    return ((2.0 * i + 1.0) / n - 1.0).to(torch.float32)


def grid(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """All pixel centres of a height x width image, row-major, as (H*W, 2) with (x, y) columns."""
    ys = axis(height, device)
    xs = axis(width, device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def rows(y0: int, y1: int, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Coordinates of rows y0..y1-1 of a height x width image: lets the decoder render in bands."""
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
    i = torch.arange(n, dtype=torch.int64, device=device)
    return torch.div((2 * i + 1) * n_cells, 2 * n, rounding_mode="floor")


def label_rows(labels: torch.Tensor, y0: int, y1: int, height: int, width: int) -> torch.Tensor:
    """Labels of rows y0..y1-1 of a height x width image sampled from the (map height, map width)
    label map ``labels``, flat and row-major like :func:`rows`."""
    mh, mw = labels.shape
    r = cells(height, mh, labels.device)[y0:y1]
    c = cells(width, mw, labels.device)
    return labels[r][:, c].reshape(-1)
