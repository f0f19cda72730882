"""The Python API's encoder entry points (``inrcodec.encode``): nothing of the encoder, not even
its config, loads until one runs, so ``import inrcodec`` stays a decoder's import."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np


def encode(
    image: str | os.PathLike | np.ndarray,
    preset: str | None = None,
    bpp: float | None = None,
    device: str | None = None,
    progress=None,
    **coder,
) -> bytes:
    """Encode a path or an (H, W, C) uint8 array to ``.inr`` bytes.

    ``preset`` None is the default (``config.DEFAULT_PRESET``); ``bpp`` caps the rate; extra
    keyword arguments replace CoderConfig fields (e.g. ``weight_coder="auto"``).
    """
    return encode_with_stats(image, preset, bpp, device, progress, **coder).data


def encode_with_stats(image, preset=None, bpp=None, device=None, progress=None, **coder):
    """Like :func:`encode`, but returns the Encoded (bytes and stats)."""
    from inrcodec import config
    from inrcodec import image as imageio
    from inrcodec.encoder.pipeline import encode_array

    arr = image if isinstance(image, np.ndarray) else imageio.load(image)
    cfg = config.preset(preset or config.DEFAULT_PRESET, bpp=bpp)
    if coder:
        cfg = replace(cfg, coder=replace(cfg.coder, **coder))
    return encode_array(arr, cfg, device, progress)
