"""The decoder: bytes -> network -> pixels. Imports only format/, siren, coords and image.

``decode`` picks the NumPy CPU path (decoder/cpu.py) unless an accelerator may be present, so
decoding on a CPU never loads torch; the torch path (``rebuild`` ...) is imported on first use.
"""

from inrcodec.decoder.render import decode, decode_parsed, output_size, parse, pick_device, render

__all__ = [
    "RegionNets",
    "decode",
    "decode_parsed",
    "output_size",
    "parse",
    "pick_device",
    "rebuild",
    "rebuild_regions",
    "render",
]


def __getattr__(name: str):
    if name in ("RegionNets", "rebuild", "rebuild_regions"):
        from inrcodec.decoder import network

        return getattr(network, name)
    raise AttributeError(name)
