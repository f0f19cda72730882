"""The ``.inr`` bitstream: container, entropy coding, the seeded dictionary. Shared by both sides."""

from inrcodec.format.container import FORMAT_VERSION, MAGIC, FormatError

__all__ = ["FORMAT_VERSION", "MAGIC", "FormatError"]
