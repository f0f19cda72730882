"""The image an experiment runs on: the source, cropped or shrunk to a size that fits the time."""

from __future__ import annotations

import numpy as np

from inrcodec import image


def square(arr: np.ndarray, size: int | None) -> np.ndarray:
    """Centre-crop to the largest square and resize it to ``size`` (Lanczos); None: unchanged."""
    if size is None:
        return arr
    h, w = arr.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    sq = np.ascontiguousarray(arr[y0 : y0 + s, x0 : x0 + s])
    return sq if s == size else image.resize(sq, size, size)


def shrink(arr: np.ndarray, size: int | None) -> np.ndarray:
    """Resize (Lanczos, aspect kept) so that the longer side is at most ``size``; None: unchanged."""
    h, w = arr.shape[:2]
    if size is None or max(h, w) <= size:
        return arr
    scale = size / max(h, w)
    return image.resize(arr, max(1, round(w * scale)), max(1, round(h * scale)))
