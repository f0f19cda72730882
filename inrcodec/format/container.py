"""The ``.inr`` container: magic, version, header, length-prefixed sections, CRC32.

Every byte is described in docs/format.md; this package is the reference implementation, in
three layers: :mod:`~inrcodec.format.header` (the typed header fields and their one validation),
:mod:`~inrcodec.format.sections` (each section's payload, packed and parsed) and this module
(the file: sections in their order, framed, then the CRC). All integers are little-endian.
Parsing validates every field before anything is allocated, so a malformed file raises
:class:`FormatError` and nothing else.

Version 2 adds region-adaptive tickets: a REGIONS section (a grid, or a coded label map) and, in
the MASKS section, one mask per region over the one stored weight tensor. A version 2 file
without a REGIONS section has exactly the layout of version 1; version 1 files are still read.
Version 3 adds one header byte, ``pe_levels``: the Fourier encoding of the coordinates that the
first layer sees. Versions 1 and 2 are read as ``pe_levels = 0`` (raw coordinates). Version 4 adds the ``prior``
field and the range coder; version 6 (5 is the latent-grid family, ``format/latent.py``) keeps
version 4's header and lets the prior carry a shared mask: the file has no MASKS section and codes
exactly the weights that mask keeps.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from inrcodec.format import entropy
from inrcodec.format.errors import FormatError
from inrcodec.format.header import (
    FORMAT_VERSION,
    HEADER_FIELDS,
    MAGIC,
    MAX_HIDDEN,
    MAX_LAYERS,
    MAX_PE_LEVELS,
    MAX_PIXELS,
    READABLE_VERSIONS,
    SHARED_MASK_VERSION,
    Header,
    check_header,
    header_fields,
    header_struct,
    pack_header,
    parse_header,
)
from inrcodec.format.sections import (
    CODER_SCALAR,
    CODER_SINR,
    MAX_DICT_ENTRIES,
    MAX_LABEL_CELLS,
    MAX_REGION_MASK_BITS,
    MAX_REGIONS,
    REGION_GRID,
    REGION_KINDS,
    REGION_LABELS,
    SECTION_FRAME,
    SECTION_LAYER,
    SECTION_MASKS,
    SECTION_NAMES,
    SECTION_REGIONS,
    WEIGHT_CODERS,
    LayerCode,
    Regions,
    pack_bits,
    pack_layer,
    pack_masks,
    pack_patterns,
    pack_regions,
    pack_section,
    parse_layer,
    parse_masks,
    parse_regions,
)

__all__ = [
    "CODER_SCALAR", "CODER_SINR", "FORMAT_VERSION", "HEADER_FIELDS", "MAGIC", "MAX_DICT_ENTRIES", "MAX_HIDDEN",
    "MAX_LABEL_CELLS", "MAX_LAYERS", "MAX_PE_LEVELS", "MAX_PIXELS", "MAX_REGIONS", "MAX_REGION_MASK_BITS",
    "READABLE_VERSIONS", "REGION_GRID", "REGION_KINDS", "REGION_LABELS", "SECTION_FRAME", "SECTION_LAYER",
    "SECTION_MASKS", "SECTION_NAMES", "SECTION_REGIONS", "SHARED_MASK_VERSION", "WEIGHT_CODERS", "Bitstream",
    "FormatError", "Header", "LayerCode", "Regions", "check_header", "header_fields", "header_struct", "n_weights",
    "pack_bits", "pack_header", "pack_layer", "pack_masks", "pack_patterns", "pack_regions", "pack_section",
    "parse_header", "parse_layer", "parse_masks", "parse_regions", "read", "shared_mask", "split_masks", "write",
]  # fmt: skip

_CRC = struct.Struct("<I")


@dataclass(frozen=True)
class Bitstream:
    """A parsed ``.inr`` file."""

    header: Header
    masks: np.ndarray | None  # bool, all weight matrices concatenated row-major; None = dense
    layers: list[LayerCode] = field(default_factory=list)
    section_bytes: dict[str, int] = field(default_factory=dict)  # payload bytes per section name
    version: int = FORMAT_VERSION  # the file's format version
    regions: Regions | None = None  # v2; None: one region, the whole image
    region_masks: np.ndarray | None = None  # v2: bool (K, n weights), one mask per region; None: all use ``masks``


def n_weights(header: Header) -> list[int]:
    """The number of weights of each linear map."""
    return [o * i for o, i in header.shapes()]


def version_for(header: Header, layers: list[LayerCode]) -> int:
    """The lowest version that holds the file: 6 for a prior with a shared mask, 4 for another
    prior or a range coded layer, else 3, so a file that uses nothing new is byte for byte what the
    previous release wrote."""
    if shared_mask(header) is not None:
        return SHARED_MASK_VERSION
    if header.prior or any(layer.entropy_coder == entropy.RANGE for layer in layers):
        return 4
    return 3


def shared_mask(header: Header) -> np.ndarray | None:
    """The flat mask (bool, all weight matrices row-major) that the header's prior carries, or None
    (no prior, or a dense one). FormatError if this build lacks the prior or its mask has other
    shapes than the header's network."""
    if not header.prior:
        return None
    from inrcodec import priors  # the registry reads package data; only files with a prior need it

    masks = priors.mask(header.prior)
    if masks is None:
        return None
    if [m.shape for m in masks] != header.shapes():
        raise FormatError(f"prior {header.prior} is for another network than this file's")
    return np.concatenate([m.reshape(-1) for m in masks])


def write(
    header: Header,
    masks: np.ndarray | None,
    layers: list[LayerCode],
    quality: int = 11,
    regions: Regions | None = None,
    region_masks: np.ndarray | None = None,
) -> bytes:
    """Serialize a bitstream; the inverse of :func:`read`. A header field out of its range is a
    FormatError (the check :func:`read` makes).

    ``masks`` is the mask the layers are coded against; with ``regions`` of K > 1 regions it is
    the union of the K ``region_masks`` (bool, (K, n weights); None: every region uses ``masks``).
    """
    sections: list[tuple[int, bytes]] = []
    shared = shared_mask(header)
    if shared is not None:  # v6: the prior's mask is the file's; nothing of it is written
        if regions is not None or masks is None or not np.array_equal(masks, shared):
            raise FormatError(f"prior {header.prior} carries a mask: the layers must be coded on it, without regions")
        masks = None
    if regions is not None:
        sections.append((SECTION_REGIONS, pack_regions(regions, quality)))
    mask_payload = pack_masks(masks, quality, regions, region_masks)
    if mask_payload is not None:
        sections.append((SECTION_MASKS, mask_payload))
    for layer in layers:
        sections.append((SECTION_LAYER, pack_layer(layer, quality)))
    out = bytearray(pack_header(header, len(sections), version_for(header, layers)))
    for kind, payload in sections:
        out += pack_section(kind, payload)
    out += _CRC.pack(zlib.crc32(out))
    return bytes(out)


def read(data: bytes) -> Bitstream:
    """Parse and validate a whole file. Raises FormatError (only) on anything malformed."""
    if len(data) < len(MAGIC) + 1:
        raise FormatError("file too short to be an .inr file")
    if data[: len(MAGIC)] != MAGIC:
        raise FormatError("not an .inr file (bad magic)")
    version = data[len(MAGIC)]
    if version not in READABLE_VERSIONS:
        raise FormatError(
            f"unsupported .inr format version {version} (this decoder reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))})"
        )
    body_at = len(MAGIC) + 1 + header_struct(version).size
    if len(data) < body_at + _CRC.size:
        raise FormatError("file truncated in the header")
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(data[: -_CRC.size]) != crc:
        raise FormatError("CRC mismatch: the file is corrupt or truncated")
    header, n_sections = parse_header(memoryview(data)[len(MAGIC) + 1 : body_at], version)
    body = memoryview(data)[body_at : len(data) - _CRC.size]
    sizes = n_weights(header)
    coders = (entropy.BROTLI, entropy.RANGE) if version >= 4 else (entropy.BROTLI,)
    # Only a version 6 file needs its prior to be parsed (the mask says how many values each layer
    # codes); a version 4 file naming a prior with a mask is refused when decoded (decoder/arrays.py).
    shared = shared_mask(header) if version == SHARED_MASK_VERSION else None
    if version == SHARED_MASK_VERSION and shared is None:
        raise FormatError(
            f"a version {SHARED_MASK_VERSION} file must name a prior with a mask "
            + (f"(prior {header.prior} has none)" if header.prior else "(it names no prior)")
        )
    masks = shared
    regions = None
    region_masks = None
    layers: list[LayerCode] = []
    section_bytes: dict[str, int] = {}
    pos = 0
    for _ in range(n_sections):
        if pos + SECTION_FRAME.size > len(body):
            raise FormatError("file truncated in a section header")
        kind, length = SECTION_FRAME.unpack_from(body, pos)
        pos += SECTION_FRAME.size
        if pos + length > len(body):
            raise FormatError("section runs past the end of the file")
        payload = bytes(body[pos : pos + length])
        pos += length
        if shared is not None and kind != SECTION_LAYER:
            raise FormatError(f"a version {SHARED_MASK_VERSION} file has only LAYER sections (the mask is its prior's)")
        if kind == SECTION_REGIONS and version >= 2:
            if section_bytes:
                raise FormatError("regions section misplaced (it must come first)")
            regions = parse_regions(payload, header)
            if regions.count * sum(sizes) > MAX_REGION_MASK_BITS:
                raise FormatError("too many regions for this network size")
        elif kind == SECTION_MASKS:
            if masks is not None or layers:
                raise FormatError("mask section misplaced")
            masks, region_masks = parse_masks(payload, sum(sizes), regions)
        elif kind == SECTION_LAYER:
            survivors = sizes if masks is None else _survivors(masks, sizes)
            layer = parse_layer(payload, header, survivors, coders)
            if layer.index != len(layers):
                raise FormatError("layer sections out of order")
            layers.append(layer)
        else:
            raise FormatError(f"unknown section kind {kind}")
        name = SECTION_NAMES[kind] + (str(len(layers) - 1) if kind == SECTION_LAYER else "")
        section_bytes[name] = SECTION_FRAME.size + length
    if pos != len(body):
        raise FormatError("trailing bytes after the last section")
    if len(layers) != len(sizes):
        raise FormatError(f"expected {len(sizes)} layer sections, found {len(layers)}")
    return Bitstream(
        header=header,
        masks=masks,
        layers=layers,
        section_bytes=section_bytes,
        version=version,
        regions=regions,
        region_masks=region_masks,
    )


def _survivors(masks: np.ndarray, sizes: list[int]) -> list[int]:
    out, start = [], 0
    for n in sizes:
        out.append(int(masks[start : start + n].sum()))
        start += n
    return out


def split_masks(masks: np.ndarray | None, header: Header) -> list[np.ndarray]:
    """The flat mask bits as one bool (out, in) array per layer (all True when dense)."""
    out, start = [], 0
    for o, i in header.shapes():
        if masks is None:
            out.append(np.ones((o, i), dtype=bool))
        else:
            out.append(masks[start : start + o * i].reshape(o, i))
        start += o * i
    return out
