"""Evaluate the SIREN at any size, in bands of rows, so memory stays bounded at any resolution."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from typing import TYPE_CHECKING

import numpy as np

from inrcodec import coords
from inrcodec.format import MAX_PIXELS, FormatError, container
from inrcodec.format import latent as latent_format
from inrcodec.pixels import from_unit

if TYPE_CHECKING:  # torch is loaded only when the torch path runs
    from inrcodec.decoder.cpu import RowsDone
    from inrcodec.decoder.network import RegionNets
    from inrcodec.siren import Siren

CHUNK_PIXELS = 1 << 17  # pixels evaluated at once: ~100 MB of activations at width 96


def output_size(
    native: tuple[int, int], size: int | None = None, width: int | None = None, height: int | None = None
) -> tuple[int, int]:
    """(width, height) to render: native, longer side ``size`` (aspect kept), or explicit.

    Given only one of width/height, the other follows the aspect ratio.
    """
    nw, nh = native
    if size is not None:
        if width is not None or height is not None:
            raise ValueError("give --size or --width/--height, not both")
        scale = size / max(nw, nh)
        width, height = max(1, round(nw * scale)), max(1, round(nh * scale))
    elif width is not None and height is None:
        height = max(1, round(nh * width / nw))
    elif height is not None and width is None:
        width = max(1, round(nw * height / nh))
    elif width is None and height is None:
        width, height = nw, nh
    if width < 1 or height < 1:
        raise ValueError("output size must be positive")
    if width * height > MAX_PIXELS:
        raise ValueError(f"output {width}x{height} is over the {MAX_PIXELS} pixel limit")
    return width, height


def render(net: Siren, width: int, height: int, regions: RegionNets | None = None) -> np.ndarray:
    """(height, width, C) uint8 pixels of the network sampled at pixel centres.

    With ``regions`` (v2), each pixel is evaluated by the ticket of its region, the label map
    resampled to this size by coords.label_rows (nearest neighbour on pixel centres).
    """
    import torch

    with torch.no_grad():
        return _render(net, width, height, regions)


def _render(net: Siren, width: int, height: int, regions: RegionNets | None) -> np.ndarray:
    device = next(net.parameters()).device
    out = np.empty((height, width, net.arch.out_features), dtype=np.uint8)
    rows_per = max(1, CHUNK_PIXELS // width)
    for y0 in range(0, height, rows_per):
        y1 = min(height, y0 + rows_per)
        xy = coords.rows(y0, y1, height, width, device)
        if regions is None:
            vals = net(xy)
        else:
            vals = regions.evaluate(net, xy, coords.label_rows(regions.labels, y0, y1, height, width))
        vals = vals.clamp_(-1.0, 1.0).cpu().numpy()
        out[y0:y1] = from_unit(vals).reshape(y1 - y0, width, -1)
    return out


def parse(data: bytes) -> container.Bitstream | latent_format.LatentFile:
    """The whole file read and checked: a LatentFile (versions 5, 7, 8 and 9, the latent-grid family) or a
    Bitstream (versions 1-4 and 6, the SIREN); a version neither reads is refused with the list of
    both. Raises FormatError."""
    at = len(container.MAGIC)
    if data[:at] == container.MAGIC and len(data) > at and data[at] not in READABLE:
        raise FormatError(
            f"unsupported .inr format version {data[at]} (this decoder reads versions {', '.join(map(str, READABLE))})"
        )
    return latent_format.read(data) if latent_format.is_latent(data) else container.read(data)


# every version this decoder reads: the SIREN's container's and the latent-grid family's
READABLE = tuple(sorted({*container.READABLE_VERSIONS, *latent_format.VERSIONS}))


def decode(
    data: bytes,
    size: int | None = None,
    width: int | None = None,
    height: int | None = None,
    device: str | None = None,
) -> np.ndarray:
    """Bytes of an ``.inr`` file -> (H, W, C) uint8 image at the requested size.

    ``device`` None picks an accelerator when one may be present (torch), else the NumPy CPU
    path; "cpu" always takes the NumPy path; "cuda"/"mps" (or "torch-cpu") use torch.
    """
    return decode_parsed(parse(data), size, width, height, device)


def decode_parsed(
    stream: container.Bitstream | latent_format.LatentFile,
    size: int | None = None,
    width: int | None = None,
    height: int | None = None,
    device: str | None = None,
    out: np.ndarray | None = None,
    rows: RowsDone | None = None,
) -> np.ndarray:
    """:func:`decode` of a file :func:`parse` has read (a caller that read its header first
    need not parse it twice: version 5's read decodes every latent). With ``out`` (the output
    size's uint8 array) the pixels go there, and the NumPy renders mark each band in ``rows`` as
    it is done (cpu.RowsDone: a writer may follow them); every row is marked by the return."""
    w, h = output_size((stream.header.width, stream.header.height), size, width, height)
    device = pick_device(device)
    if device == "cpu":
        from inrcodec.decoder import cpu

        if isinstance(stream, latent_format.LatentFile):  # versions 5, 7, 8 and 9: the latent-grid family
            from inrcodec.decoder import latent

            arr = latent.render(stream, w, h, out=out, rows=rows)
        else:
            from inrcodec.decoder.arrays import layer_arrays, region_weights

            weights, biases = layer_arrays(stream)
            labels = None if stream.regions is None else stream.regions.label_map().astype(np.int64)
            hd = stream.header
            ws = region_weights(stream, weights)
            arr = cpu.render(
                ws, biases, hd.omega0, hd.omega_hidden, w, h, labels, pe_levels=hd.pe_levels, out=out, rows=rows
            )
    elif isinstance(stream, latent_format.LatentFile):
        from inrcodec.decoder import latent

        arr = latent.render_torch(stream, w, h, "cpu" if device == "torch-cpu" else device)
    else:
        from inrcodec.decoder.network import rebuild, rebuild_regions

        net = rebuild(stream, "cpu" if device == "torch-cpu" else device)
        arr = render(net, w, h, rebuild_regions(stream, net))
    if out is not None and arr is not out:
        out[...] = arr
        arr = out
    if rows is not None:
        rows.finish()
    return arr


def pick_device(device: str | None) -> str:
    """The decoder's device. Without a request, torch is imported only where an accelerator may
    exist (an NVIDIA driver, Apple silicon, Windows, or torch already loaded by the caller)."""
    if device:
        return device
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    maybe = (
        os.path.exists("/proc/driver/nvidia/version")
        or (sys.platform == "darwin" and platform.machine() == "arm64")
        or sys.platform == "win32"
        or "torch" in sys.modules
    )
    if not maybe:
        return "cpu"
    from inrcodec.siren import default_device

    found = str(default_device())
    return "cpu" if found == "cpu" else found
