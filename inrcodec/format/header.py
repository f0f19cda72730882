"""The ``.inr`` header: magic, version and typed fields, each with the range it may hold.

The header is declared once, as :data:`HEADER_FIELDS`: name, struct code, first version with the
field, allowed values, meaning. :func:`check_header` is the one validation of those ranges; the
writer calls it before packing (:func:`pack_header`) and the reader after unpacking
(:func:`parse_header`), so a header that one side accepts the other side accepts too, and an
out-of-range value is a :class:`FormatError` that names the field and its range.
"""

from __future__ import annotations

import math
import numbers
import struct
from dataclasses import dataclass

from inrcodec.format.errors import FormatError

MAGIC = b"INRC"
FORMAT_VERSION = 6  # the newest SIREN version; a file is written at the lowest that holds it (``version_for``)
READABLE_VERSIONS = (1, 2, 3, 4, 6)  # of this container; 5 is the latent-grid family (format/latent.py)
SHARED_MASK_VERSION = 6  # v6: the header's prior carries the mask (no MASKS section); v4's header layout

MAX_PIXELS = 64 * 1024 * 1024  # width x height of the largest image coded or decoded (decompression bombs)
MAX_HIDDEN = 1024
MAX_LAYERS = 16
MAX_PE_LEVELS = 12  # v3: highest frequency pi 2^11, still resolved by float32 arguments
MAX_OMEGA = 1e4  # frequency factors lie strictly between 0 and this


@dataclass(frozen=True)
class Field:
    """One header field as stored: a little-endian integer or float32, and what it may hold."""

    name: str
    code: str  # struct code: "B" u8, "H" u16, "f" f32
    since: int  # the first format version that has the field
    allowed: range | tuple[int, ...] | None  # integers: the allowed values; None: a float in (0, MAX_OMEGA)
    meaning: str

    def describe(self) -> str:
        """The allowed values in words, as docs/format.md's header table and error messages give them."""
        if self.allowed is None:
            return f"finite, 0 < {self.name} < {MAX_OMEGA:g}"
        if isinstance(self.allowed, range):
            return f"{self.allowed.start}..{self.allowed.stop - 1}"
        return ", ".join(map(str, self.allowed[:-1])) + f" or {self.allowed[-1]}"

    def check(self, value) -> None:
        """FormatError unless ``value`` is one this field can store and a reader accepts."""
        stored = ""
        if self.allowed is None:
            ok = isinstance(value, numbers.Real) and math.isfinite(value)
            if ok:
                try:  # the value as stored: rounded to float32
                    (f32,) = struct.unpack("<f", struct.pack("<f", value))
                except OverflowError:
                    f32 = math.inf
                ok = 0 < f32 < MAX_OMEGA
                stored = "" if f32 == value else f" ({f32!r} as float32)"
        else:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value in self.allowed
        if not ok:
            raise FormatError(
                f"header field {self.name} = {value!r}{stored} is out of range (allowed: {self.describe()})"
            )


# The header, in byte order; a file of version v holds the fields with ``since <= v``.
HEADER_FIELDS: tuple[Field, ...] = (
    Field("width", "H", 1, range(1, 65536), "image width in pixels at native size"),
    Field("height", "H", 1, range(1, 65536), "image height in pixels at native size"),
    Field("channels", "B", 1, (1, 3, 4), "1: grey, 3: RGB, 4: RGBA; the network's outputs, in this order"),
    Field("hidden", "H", 1, range(1, MAX_HIDDEN + 1), "width of every hidden layer"),
    Field("layers", "B", 1, range(1, MAX_LAYERS + 1), "sine layers, first included"),
    Field("omega0", "f", 1, None, "frequency factor of the first sine layer"),
    Field("omega_hidden", "f", 1, None, "frequency factor of the other sine layers"),
    Field("pe_levels", "B", 3, range(0, MAX_PE_LEVELS + 1), "Fourier levels L of the coordinates (0: raw coordinates)"),
    Field("prior", "H", 4, range(0, 65536), "ID of the shipped prior the weights are residuals from (0: none)"),
    Field("n_sections", "B", 1, range(0, 256), "number of sections that follow"),
)


def header_fields(version: int) -> list[str]:
    """The names of the fields a file of ``version`` stores, in byte order."""
    return [f.name for f in HEADER_FIELDS if f.since <= version]


def header_struct(version: int) -> struct.Struct:
    """The header's byte layout in a file of ``version`` (after the magic and the version byte)."""
    return struct.Struct("<" + "".join(f.code for f in HEADER_FIELDS if f.since <= version))


@dataclass(frozen=True)
class Header:
    """What the decoder needs to rebuild the network (and nothing the encoder chose privately)."""

    width: int
    height: int
    channels: int
    hidden: int
    layers: int
    omega0: float
    omega_hidden: float
    pe_levels: int = 0  # v3; 0 in versions 1 and 2
    prior: int = 0  # v4; 0 (no prior) in versions 1 to 3

    def shapes(self) -> list[tuple[int, int]]:
        """(out, in) of each linear map, first to last."""
        dims = [2 * (1 + 2 * self.pe_levels)] + [self.hidden] * self.layers + [self.channels]
        return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]


def check_header(header: Header, n_sections: int = 0) -> None:
    """The one validation of a header, for writer and reader: every field within its range, and
    width x height within MAX_PIXELS. Raises FormatError naming the first field that is not."""
    values = dict(vars(header), n_sections=n_sections)
    for f in HEADER_FIELDS:
        f.check(values[f.name])
    if header.width * header.height > MAX_PIXELS:
        raise FormatError(
            f"header fields width x height = {header.width}x{header.height} are over the {MAX_PIXELS} pixel limit"
        )


def pack_header(header: Header, n_sections: int, version: int = FORMAT_VERSION) -> bytes:
    """Magic, version byte and header of a file of ``version``; FormatError if out of range or if
    that version cannot hold a field's value."""
    check_header(header, n_sections)
    values = dict(vars(header), n_sections=n_sections)
    for f in HEADER_FIELDS:
        if f.since > version and values[f.name] != getattr(Header, f.name, 0):
            raise FormatError(f"header field {f.name} needs format version {f.since}, not {version}")
    layout = header_struct(version)
    return MAGIC + bytes([version]) + layout.pack(*(values[name] for name in header_fields(version)))


def parse_header(data: bytes | memoryview, version: int) -> tuple[Header, int]:
    """(header, n_sections) from the header bytes of a file of ``version``, validated like a written one.

    ``data`` starts after the magic and the version byte and holds at least ``header_struct(version).size`` bytes.
    """
    values = dict(zip(header_fields(version), header_struct(version).unpack_from(data)))
    n_sections = values.pop("n_sections")
    header = Header(**values)
    check_header(header, n_sections)
    return header, n_sections
