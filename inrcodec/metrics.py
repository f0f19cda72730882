"""The figures every report shares, defined once: bits per pixel of a file (bytes on disk), and the
rate-distortion cost the encoder minimises."""

from __future__ import annotations


def bpp(n_bytes: int, width: int, height: int) -> float:
    """Bits per pixel of ``n_bytes`` coding a ``width`` x ``height`` image."""
    return 8 * n_bytes / (width * height)


def rd_cost(psnr_db: float, n_bytes: int, lam: float, pixels: int) -> float:
    """D + lambda R: the MSE (8-bit scale) of ``psnr_db`` plus ``lam`` times the bits per pixel of
    ``n_bytes``."""
    return 255.0**2 / 10 ** (psnr_db / 10) + lam * bpp(n_bytes, pixels, 1)
