"""The figures every report shares, defined once: bits per pixel of a file (bytes on disk)."""

from __future__ import annotations


def bpp(n_bytes: int, width: int, height: int) -> float:
    """Bits per pixel of ``n_bytes`` coding a ``width`` x ``height`` image."""
    return 8 * n_bytes / (width * height)
