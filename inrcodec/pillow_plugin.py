"""Pillow plugin: ``Image.open("x.inr")`` decodes at native size after ``import inrcodec``."""

from __future__ import annotations

from PIL import Image, ImageFile

from inrcodec.format.container import MAGIC


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


class InrImageFile(ImageFile.ImageFile):
    format = "INR"
    format_description = "inrcodec implicit neural representation"

    def _open(self) -> None:
        from inrcodec.decoder import parse
        from inrcodec.format import FormatError

        try:
            stream = parse(self.fp.read())
        except FormatError as e:
            raise SyntaxError(str(e)) from None
        self._stream = stream  # parsed once: load() renders it
        h = stream.header
        self._mode = {1: "L", 3: "RGB", 4: "RGBA"}[h.channels]
        self._size = (h.width, h.height)
        self.tile = []

    def load(self):
        if self.tile is not None and getattr(self, "_decoded", None) is None:
            from inrcodec.decoder import decode_parsed

            arr = decode_parsed(self._stream)
            img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, self.mode)
            self.im = img.im
            self._decoded = True
        return super().load()


Image.register_open(InrImageFile.format, InrImageFile, _accept)
Image.register_extension(InrImageFile.format, ".inr")
