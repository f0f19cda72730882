"""Power spectra of images: the lottery experiment's high-frequency energy (HFE) and its floor.

NumPy only (no torch). See docs/lottery.md, "What is measured, precisely".
"""

from __future__ import annotations

import numpy as np

from inrcodec import image


def _luma(arr: np.ndarray) -> np.ndarray:
    x = arr.astype(np.float64)
    y = x[..., :3] @ np.array([0.299, 0.587, 0.114]) if arr.shape[2] >= 3 else x[..., 0]
    return y - y.mean()


def power_spectrum(arr: np.ndarray) -> np.ndarray:
    """|FFT|^2 of the mean-removed luminance (BT.601 weights; the channel itself for grey)."""
    return np.abs(np.fft.fft2(_luma(arr))) ** 2


def radius(h: int, w: int) -> np.ndarray:
    """Normalized radial frequency of every FFT bin: sqrt(fx^2 + fy^2) / 0.5 cycles/pixel."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    return np.sqrt(fx**2 + fy**2) / 0.5


def hf_share(arr: np.ndarray, r0: float) -> float:
    """Share of the spectral energy at normalized radius r > r0 (0 for a flat image)."""
    p = power_spectrum(arr)
    total = float(p.sum())
    return float(p[radius(*arr.shape[:2]) > r0].sum()) / total if total > 0 else 0.0


def flat_psnr(arr: np.ndarray) -> float:
    """PSNR of the flat image of the mean colour: what a network that learned nothing scores."""
    mean = np.round(arr.reshape(-1, arr.shape[2]).astype(np.float64).mean(0)).astype(np.uint8)
    return image.psnr(np.broadcast_to(mean, arr.shape).copy(), arr)
