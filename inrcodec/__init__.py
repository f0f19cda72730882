"""inrcodec: images stored as small sine-activated networks (SIREN), pruned and coded.

    >>> import inrcodec
    >>> data = inrcodec.encode("img.png")          # bytes of an .inr file
    >>> pixels = inrcodec.decode(data, size=1024)  # (H, W, C) uint8, any resolution

Importing the package registers a Pillow plugin, so ``Image.open("x.inr")`` works.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from inrcodec.decoder import decode  # loads no torch: the CPU path is NumPy
from inrcodec.format import FORMAT_VERSION, FormatError

__version__ = "1.2.0"
__all__ = ["FORMAT_VERSION", "FormatError", "__version__", "decode", "encode"]


def encode(
    image: str | os.PathLike | np.ndarray,
    preset: str = "medium",
    bpp: float | None = None,
    device: str | None = None,
    progress=None,
    **coder,
) -> bytes:
    """Encode a path or an (H, W, C) uint8 array to ``.inr`` bytes.

    ``bpp`` caps the rate; extra keyword arguments replace CoderConfig fields
    (e.g. ``weight_coder="auto"``).
    """
    return encode_with_stats(image, preset, bpp, device, progress, **coder).data


def encode_with_stats(image, preset="medium", bpp=None, device=None, progress=None, **coder):
    """Like :func:`encode`, but returns the Encoded (bytes and stats)."""
    from inrcodec import config
    from inrcodec import image as imageio
    from inrcodec.encoder.pipeline import encode_array

    arr = image if isinstance(image, np.ndarray) else imageio.load(image)
    cfg = config.preset(preset, bpp=bpp)
    if coder:
        cfg = replace(cfg, coder=replace(cfg.coder, **coder))
    return encode_array(arr, cfg, device, progress)


from inrcodec import pillow_plugin as _pillow_plugin  # noqa: E402,F401  (registers Image.open)
