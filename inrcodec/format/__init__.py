"""The ``.inr`` bitstream: header, sections, container, entropy coding, the seeded dictionary.

Shared by encoder and decoder; it imports neither, nor Pillow (tests/test_imports.py).
"""

from inrcodec.format.errors import FormatError
from inrcodec.format.header import FORMAT_VERSION, MAGIC, MAX_PIXELS

__all__ = ["FORMAT_VERSION", "MAGIC", "MAX_PIXELS", "FormatError"]
