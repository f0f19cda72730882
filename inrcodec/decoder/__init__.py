"""The decoder: bytes -> network -> pixels. Imports only format/, siren, coords and image."""

from inrcodec.decoder.rebuild import RegionNets, rebuild, rebuild_regions
from inrcodec.decoder.render import decode, output_size, render

__all__ = ["RegionNets", "decode", "output_size", "rebuild", "rebuild_regions", "render"]
