"""The Python API's encoder entry points (``inrcodec.encode``): nothing of the encoder, not even
its config, loads until one runs, so ``import inrcodec`` stays a decoder's import."""

from __future__ import annotations

import functools
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

    ``preset`` None is the default (``config.DEFAULT_PRESET``, ``grid-medium``), or the SIREN's
    (``config.SIREN_DEFAULT_PRESET``) when an option only the SIREN has is given: keyword
    arguments that replace CoderConfig fields (e.g. ``weight_coder="auto"``). A latent-grid preset
    (``grid-low`` ... ``grid-max``) writes format version 8 (9: grid-low, grid-max) and takes none of those, only
    ``steps=`` and ``seed=``, as on the command line, and trains on ``device`` "cpu" (its
    default, whatever the machine has) or "cuda";
    ``bpp`` (a rate cap) with one, or with no preset, fits the grid ladder's points until the best
    file under the cap (``encoder.latent_rate``; then ``steps`` is refused).
    """
    return encode_with_stats(image, preset, bpp, device, progress, **coder).data


def encode_with_stats(image, preset=None, bpp=None, device=None, progress=None, **coder):
    """Like :func:`encode`, but returns the stats with the bytes (``.data``): an Encoded, for a
    latent-grid preset the latent encoder's Fitted, and with a cap on one rate control's Capped."""
    from inrcodec import config
    from inrcodec import image as imageio
    from inrcodec.encoder.pipeline import encode_array

    if bpp is not None and not 0 < bpp < float("inf"):  # as the command line's --bpp (nan fails both)
        raise ValueError(f"bpp {bpp!r}: the rate cap must be a finite number above 0")
    if preset is None:  # as the command line: an option only the SIREN has picks its default
        siren = any(v is not None for k, v in coder.items() if k not in ("steps", "seed"))
        preset = config.SIREN_DEFAULT_PRESET if siren or not config.grid_trains_on(device) else config.DEFAULT_PRESET
    device = device or None  # "" as None: the default choice, as before the check
    if why := config.device_problem(device):  # before the image is read, as the command line
        raise ValueError(f"device {why}")
    latent_cfg = config.LATENT_PRESETS.get(preset)
    if latent_cfg is not None:
        # The command line's options and refusals, before the image is even read.
        own = {k: coder.pop(k) for k in ("steps", "seed") if coder.get(k) is not None}
        given = [name for name, value in coder.items() if value is not None]
        if given:
            what = f"not for the latent-grid presets ({preset}: they take bpp, steps and seed)"
            raise ValueError(f"{', '.join(given)}: {what}")
        device = config.latent_device(device)
        if bpp is not None and "steps" in own:
            raise ValueError("steps: not with bpp on the latent-grid presets (each ladder point has its own)")
        latent_cfg = replace(latent_cfg, **own) if bpp is None else config.latent_cap(bpp, own.get("seed"))
    arr = image if isinstance(image, np.ndarray) else imageio.load(image)
    if latent_cfg is not None:
        from inrcodec.encoder import latent, latent_rate

        on_step = None if progress is None else lambda done, total, psnr: progress("fit", done, total, psnr)
        if isinstance(latent_cfg, config.LatentCap):
            fit = functools.partial(latent.fit, device=device)
            return latent_rate.fit_to_cap(arr, latent_cfg, lambda point: (on_step, None), fit=fit)
        return latent.fit(arr, latent_cfg, on_step, device=device)
    cfg = config.preset(preset, bpp=bpp)
    if coder:
        cfg = replace(cfg, coder=replace(cfg.coder, **coder))
    return encode_array(arr, cfg, device, progress)
