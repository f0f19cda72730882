"""inrcodec: images stored as small sine-activated networks (SIREN), pruned and coded.

    >>> import inrcodec
    >>> data = inrcodec.encode("img.png")          # bytes of an .inr file
    >>> pixels = inrcodec.decode(data, size=1024)  # (H, W, C) uint8, any resolution

Importing the package registers a Pillow plugin, so ``Image.open("x.inr")`` works.
"""

from inrcodec import pillow_plugin as _pillow_plugin  # noqa: F401  (registers Image.open)
from inrcodec.api import encode, encode_with_stats
from inrcodec.decoder import decode  # loads no torch: the CPU path is NumPy
from inrcodec.format import FORMAT_VERSION, FormatError

__version__ = "2.0.0.dev0"
__all__ = ["FORMAT_VERSION", "FormatError", "__version__", "decode", "encode", "encode_with_stats"]
