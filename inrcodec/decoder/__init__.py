"""The decoder: bytes -> network -> pixels. Imports only format/, siren, coords and image."""

from inrcodec.decoder.rebuild import rebuild
from inrcodec.decoder.render import decode, output_size, render

__all__ = ["decode", "output_size", "rebuild", "render"]
