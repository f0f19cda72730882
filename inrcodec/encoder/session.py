"""The encoder's core: what every encode of one image sets up once, and how its files are measured.

A :class:`Session` holds the image, the config (its network's outputs set to the image's
channels), the device, the header, the training target and the seed policy: the network starts
from ``torch.Generator().manual_seed(cfg.fit.seed)``. Every encoder (one ticket, one ticket per
region, a ladder of operating points), the ablations and the experiments start from one, and
:meth:`Session.measure` is the one place that turns bytes into reported figures, by decoding
them with the real decoder: rates are bytes on disk, PSNR is of what a user would decode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from inrcodec import priors
from inrcodec.config import EncodeConfig, prior_id
from inrcodec.decoder import decode
from inrcodec.encoder.fit import State, Target
from inrcodec.encoder.mask import Mask
from inrcodec.format import container
from inrcodec.image import psnr
from inrcodec.metrics import bpp
from inrcodec.siren import Siren, default_device


@dataclass(frozen=True)
class Session:
    """One image's encode set-up (see the module docstring)."""

    arr: np.ndarray  # (H, W, C) uint8, the source
    cfg: EncodeConfig  # with arch.out_features == C
    device: torch.device  # where the network trains
    header: container.Header  # the file's header: image and network shape
    target: Target  # every pixel centre and its colour, on ``device``
    anchor: State | None = None  # the prior's (weights, biases) on ``device``: the residuals' origin
    shared: Mask | None = None  # the prior's shared mask (format v6): every fit trains under it

    @staticmethod
    def create(arr: np.ndarray, cfg: EncodeConfig, device: str | torch.device | None = None) -> Session:
        h, w, c = arr.shape
        cfg = replace(cfg, arch=replace(cfg.arch, out_features=c))
        dev = device if isinstance(device, torch.device) else default_device(device)
        a = cfg.arch
        prior = prior_id(cfg)
        header = container.Header(w, h, c, a.hidden, a.layers, a.omega0, a.omega_hidden, a.pe_levels, prior)
        anchor = shared = None
        if prior:
            ws, bs = priors.arrays(prior)
            to_device = lambda arrays: [torch.from_numpy(x.copy()).to(dev) for x in arrays]  # noqa: E731
            anchor = (to_device(ws), to_device(bs))
            masks = priors.mask(prior)  # prior_id has refused pruning and rate caps with one
            if masks is not None:
                shared = Mask(tuple(to_device(masks)))
        return Session(arr, cfg, dev, header, Target.of(arr, dev), anchor, shared)

    def network(self) -> Siren:
        """A fresh network: the prior's weights (zero where its shared mask prunes), or the SIREN
        initialisation from the config's seed (same seed, same weights)."""
        net = Siren(self.cfg.arch, torch.Generator().manual_seed(self.cfg.fit.seed)).to(self.device)
        if self.anchor is not None:
            net.load(*self.anchor)
        return net

    def measure(self, data: bytes) -> tuple[dict, np.ndarray]:
        """The figures of a file and its decoded pixels: bytes, bpp, PSNR against the source (decoded
        by the real decoder on the same kind of device: NumPy on a CPU, torch on an accelerator),
        image size, section bytes, decode seconds."""
        h, w, c = self.arr.shape
        t = time.perf_counter()
        decoded = decode(data, device=str(self.device))
        seconds = time.perf_counter() - t
        stats = {
            "bytes": len(data),
            "bpp": bpp(len(data), w, h),
            "psnr": psnr(decoded, self.arr),
            "width": w,
            "height": h,
            "channels": c,
            "sections": container.read(data).section_bytes,
            "seconds": {"decode": round(seconds, 3)},
        }
        return stats, decoded
