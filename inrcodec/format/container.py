"""The ``.inr`` container: magic, version, a declarative header, length-prefixed sections, CRC32.

Every byte is described in docs/format.md; this file is the reference implementation. All
integers are little-endian. Parsing validates every field before anything is allocated, so a
malformed file raises :class:`FormatError` and nothing else.

Version 2 adds region-adaptive tickets: a REGIONS section (a grid, or a coded label map) and, in
the MASKS section, one mask per region over the one stored weight tensor. A version 2 file
without a REGIONS section has exactly the layout of version 1; version 1 files are still read.
Version 3 adds one header byte, ``pe_levels``: the Fourier encoding of the coordinates that the
first layer sees. Versions 1 and 2 are read as ``pe_levels = 0`` (raw coordinates).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from inrcodec.format import entropy
from inrcodec.format.dictionary import MAX_ATOMS, MAX_LENGTH
from inrcodec.format.errors import FormatError
from inrcodec.image import MAX_PIXELS

MAGIC = b"INRC"
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
MAX_HIDDEN = 1024
MAX_LAYERS = 16
MAX_DICT_ENTRIES = 1 << 22
MAX_REGIONS = 64  # regions (tickets) per file, v2
MAX_LABEL_CELLS = 1 << 24  # cells of a stored label map, v2
MAX_REGION_MASK_BITS = 1 << 26  # regions x weights, v2: bounds the decoded masks to 64 MB
MAX_PE_LEVELS = 12  # v3: highest frequency pi 2^11, still resolved by float32 arguments

# The header as a declarative list: (name, struct code, first version with it, meaning).
# Order is the byte order; a file of version v holds the fields with ``since <= v``.
HEADER_FIELDS: tuple[tuple[str, str, int, str], ...] = (
    ("width", "H", 1, "image width in pixels at native size, 1..65535"),
    ("height", "H", 1, "image height in pixels at native size, 1..65535"),
    ("channels", "B", 1, "1 (grey), 3 (RGB) or 4 (RGBA); network outputs, in this order"),
    ("hidden", "H", 1, "width of every hidden layer, 1..1024"),
    ("layers", "B", 1, "sine layers, first included, 1..16"),
    ("omega0", "f", 1, "frequency factor of the first sine layer"),
    ("omega_hidden", "f", 1, "frequency factor of the other sine layers"),
    ("pe_levels", "B", 3, "Fourier levels L of the coordinate encoding, 0..12 (0: raw coordinates)"),
    ("n_sections", "B", 1, "number of sections that follow"),
)


def header_fields(version: int) -> list[str]:
    return [name for name, _, since, _ in HEADER_FIELDS if since <= version]


def header_struct(version: int) -> struct.Struct:
    return struct.Struct("<" + "".join(code for _, code, since, _ in HEADER_FIELDS if since <= version))


# Section kinds (table indices as stored).
SECTION_MASKS = 1
SECTION_LAYER = 2
SECTION_REGIONS = 3  # v2
SECTION_NAMES = {SECTION_MASKS: "masks", SECTION_LAYER: "layer", SECTION_REGIONS: "regions"}
_SECTION = struct.Struct("<BI")  # kind, payload length

# Region kinds (table indices as stored, v2).
REGION_GRID = 0
REGION_LABELS = 1
REGION_KINDS = ("grid", "labels")
_REGIONS_GRID = struct.Struct("<BBB")  # kind, rows, cols
_REGIONS_LABELS = struct.Struct("<BBHH")  # kind, regions, map width, map height; then Brotli labels

# Weight coders (table indices as stored).
CODER_SCALAR = 0
CODER_SINR = 1
WEIGHT_CODERS = ("scalar", "sinr")

# Fixed part of a layer section: index, weight coder, entropy coder, bias step, weight/coef step,
# bias symbol width, value symbol width.
_LAYER = struct.Struct("<BBBffBB")
_SINR = struct.Struct("<HHBI")  # k, m, s, dictionary seed


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

    def shapes(self) -> list[tuple[int, int]]:
        dims = [2 * (1 + 2 * self.pe_levels)] + [self.hidden] * self.layers + [self.channels]
        return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]


@dataclass(frozen=True)
class LayerCode:
    """One linear layer as stored: quantized biases and coded surviving weights."""

    index: int
    coder: int  # CODER_SCALAR or CODER_SINR
    bias_step: float
    bias_q: np.ndarray  # int64, one per output
    step: float  # scalar: weight step; sinr: coefficient step
    values_q: np.ndarray  # scalar: surviving weights (mask order); sinr: coefficients (n_vec, s)
    sinr: tuple[int, int, int, int] | None = None  # (k, m, s, seed) for SINR
    indices: np.ndarray | None = None  # sinr: atom indices (n_vec, s)
    entropy_coder: int = entropy.BROTLI


@dataclass(frozen=True)
class Regions:
    """Which pixels each ticket serves (v2): a label map over [-1, 1]^2, cut into equal cells.

    ``grid`` stores only rows and cols (cell r, c has label r * cols + c); ``labels`` stores the
    map itself. Pixel labels at any output size: :func:`inrcodec.coords.label_rows`.
    """

    kind: int  # REGION_GRID or REGION_LABELS
    count: int  # number of regions K, 1..MAX_REGIONS
    rows: int = 0  # grid only
    cols: int = 0  # grid only
    labels: np.ndarray | None = None  # labels only: uint8 (map height, map width), values < count

    @staticmethod
    def grid(rows: int, cols: int) -> Regions:
        return Regions(REGION_GRID, rows * cols, rows=rows, cols=cols)

    def label_map(self) -> np.ndarray:
        """The (map height, map width) uint8 label map, for either kind."""
        if self.kind == REGION_GRID:
            return np.arange(self.rows * self.cols, dtype=np.uint8).reshape(self.rows, self.cols)
        assert self.labels is not None
        return self.labels


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
    return [o * i for o, i in header.shapes()]


def _pack_layer(layer: LayerCode, quality: int) -> bytes:
    bias_u = entropy.zigzag(layer.bias_q)
    bw = entropy.symbol_width(bias_u)
    val_u = entropy.zigzag(layer.values_q.reshape(-1))
    vw = entropy.symbol_width(val_u)
    head = _LAYER.pack(layer.index, layer.coder, layer.entropy_coder, layer.bias_step, layer.step, bw, vw)
    raw = entropy.pack(bias_u, bw)
    if layer.coder == CODER_SINR:
        assert layer.sinr is not None and layer.indices is not None
        head += _SINR.pack(*layer.sinr)
        raw += layer.indices.astype("<u2").tobytes()
    raw += entropy.pack(val_u, vw)
    return head + entropy.compress(raw, quality)


def _bits(flags: np.ndarray) -> bytes:
    return np.packbits(flags.astype(np.uint8), bitorder="little").tobytes()


def _pattern_width(count: int) -> int:
    return (count + 7) // 8


def _pack_patterns(region_masks: np.ndarray) -> bytes:
    """v2, K > 1 regions: per weight, a little-endian ceil(K/8)-byte pattern; bit k: region k keeps it."""
    k, total = region_masks.shape
    width = _pattern_width(k)
    flags = np.zeros((total, 8 * width), dtype=np.uint8)
    flags[:, :k] = region_masks.T
    return np.packbits(flags, axis=1, bitorder="little").tobytes()


def _pack_regions(regions: Regions, quality: int) -> bytes:
    if regions.kind == REGION_GRID:
        return _REGIONS_GRID.pack(REGION_GRID, regions.rows, regions.cols)
    labels = regions.label_map()
    mh, mw = labels.shape
    head = _REGIONS_LABELS.pack(REGION_LABELS, regions.count, mw, mh)
    return head + entropy.compress(np.ascontiguousarray(labels, dtype=np.uint8).tobytes(), quality)


def write(
    header: Header,
    masks: np.ndarray | None,
    layers: list[LayerCode],
    quality: int = 11,
    regions: Regions | None = None,
    region_masks: np.ndarray | None = None,
) -> bytes:
    """Serialize a bitstream; the inverse of :func:`read`.

    ``masks`` is the mask the layers are coded against; with ``regions`` of K > 1 regions it is
    the union of the K ``region_masks`` (bool, (K, n weights); None: every region uses ``masks``).
    """
    sections: list[tuple[int, bytes]] = []
    if regions is not None:
        sections.append((SECTION_REGIONS, _pack_regions(regions, quality)))
    if region_masks is not None:
        assert regions is not None and region_masks.shape[0] == regions.count
        union = region_masks.any(axis=0)
        assert (union.all() and masks is None) or (masks is not None and np.array_equal(union, masks))
        if masks is None and not region_masks.all():
            masks = union  # the union is dense but some region's mask is not: store the masks
    if masks is not None:
        if regions is not None and regions.count > 1:
            per_region = np.tile(masks, (regions.count, 1)) if region_masks is None else region_masks
            raw = _pack_patterns(per_region)
        else:
            raw = _bits(masks)
        sections.append((SECTION_MASKS, entropy.compress(raw, quality)))
    for layer in layers:
        sections.append((SECTION_LAYER, _pack_layer(layer, quality)))
    values = dict(header.__dict__, n_sections=len(sections))
    out = bytearray(MAGIC)
    out.append(FORMAT_VERSION)
    out += header_struct(FORMAT_VERSION).pack(*(values[name] for name in header_fields(FORMAT_VERSION)))
    for kind, payload in sections:
        out += _SECTION.pack(kind, len(payload)) + payload
    out += struct.pack("<I", zlib.crc32(bytes(out)))
    return bytes(out)


def _check_header(h: Header) -> None:
    if not (1 <= h.width <= 65535 and 1 <= h.height <= 65535):
        raise FormatError("image size out of range")
    if h.width * h.height > MAX_PIXELS:
        raise FormatError(f"image {h.width}x{h.height} is over the {MAX_PIXELS} pixel limit")
    if h.channels not in (1, 3, 4):
        raise FormatError(f"unsupported channel count {h.channels}")
    if not (1 <= h.hidden <= MAX_HIDDEN and 1 <= h.layers <= MAX_LAYERS):
        raise FormatError("network size out of range")
    for w in (h.omega0, h.omega_hidden):
        if not (math.isfinite(w) and 0 < w < 1e4):
            raise FormatError("frequency factor out of range")
    if not 0 <= h.pe_levels <= MAX_PE_LEVELS:
        raise FormatError(f"Fourier levels {h.pe_levels} out of range (0..{MAX_PE_LEVELS})")


def _step(value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise FormatError("quantizer step is not a positive finite number")
    return value


def _parse_layer(payload: bytes, header: Header, survivors: list[int]) -> LayerCode:
    if len(payload) < _LAYER.size:
        raise FormatError("layer section too short")
    index, coder, ecoder, bias_step, step, bw, vw = _LAYER.unpack_from(payload)
    if index >= len(survivors):
        raise FormatError(f"layer index {index} out of range")
    if coder not in (CODER_SCALAR, CODER_SINR) or ecoder != entropy.BROTLI:
        raise FormatError("unknown weight or entropy coder")
    if bw not in (1, 2, 4) or vw not in (1, 2, 4):
        raise FormatError("bad symbol width")
    n_out = header.shapes()[index][0]
    n_keep = survivors[index]
    pos = _LAYER.size
    sinr = None
    n_idx = 0
    if coder == CODER_SINR:
        if len(payload) < pos + _SINR.size:
            raise FormatError("layer section too short")
        sinr = _SINR.unpack_from(payload, pos)
        pos += _SINR.size
        k, m, s, _seed = sinr
        if not (1 <= k <= MAX_LENGTH and 1 <= m <= MAX_ATOMS and 1 <= s <= min(k, m) and k * m <= MAX_DICT_ENTRIES):
            raise FormatError("SINR parameters out of range")
        n_vec = -(-n_keep // k)
        n_idx = n_vec * s
        n_vals = n_idx
    else:
        n_vals = n_keep
    expected = n_out * bw + n_idx * 2 + n_vals * vw
    raw = entropy.decompress(payload[pos:], expected)
    bias_q = entropy.unzigzag(entropy.unpack(raw[: n_out * bw], bw, n_out))
    off = n_out * bw
    indices = None
    if coder == CODER_SINR:
        indices = np.frombuffer(raw[off : off + 2 * n_idx], dtype="<u2").astype(np.int64)
        off += 2 * n_idx
        if indices.size and int(indices.max()) >= sinr[1]:
            raise FormatError("SINR atom index out of range")
        indices = indices.reshape(-1, sinr[2])
    values = entropy.unzigzag(entropy.unpack(raw[off:], vw, n_vals))
    if coder == CODER_SINR:
        values = values.reshape(-1, sinr[2])
    return LayerCode(
        index=index,
        coder=coder,
        bias_step=_step(bias_step),
        bias_q=bias_q,
        step=_step(step),
        values_q=values,
        sinr=sinr,
        indices=indices,
        entropy_coder=ecoder,
    )


def _parse_regions(payload: bytes, header: Header) -> Regions:
    if len(payload) < 1:
        raise FormatError("regions section too short")
    kind = payload[0]
    if kind == REGION_GRID:
        if len(payload) != _REGIONS_GRID.size:
            raise FormatError("grid regions section has the wrong size")
        _, rows, cols = _REGIONS_GRID.unpack(payload)
        if not (1 <= rows <= header.height and 1 <= cols <= header.width and rows * cols <= MAX_REGIONS):
            raise FormatError(f"region grid {rows}x{cols} out of range")
        return Regions.grid(rows, cols)
    if kind == REGION_LABELS:
        if len(payload) < _REGIONS_LABELS.size:
            raise FormatError("label regions section too short")
        _, count, mw, mh = _REGIONS_LABELS.unpack_from(payload)
        if not 1 <= count <= MAX_REGIONS:
            raise FormatError(f"region count {count} out of range")
        if not (1 <= mw <= header.width and 1 <= mh <= header.height and mw * mh <= MAX_LABEL_CELLS):
            raise FormatError(f"label map {mw}x{mh} out of range for a {header.width}x{header.height} image")
        raw = entropy.decompress(payload[_REGIONS_LABELS.size :], mw * mh)
        labels = np.frombuffer(raw, dtype=np.uint8).reshape(mh, mw)
        if int(labels.max()) >= count:
            raise FormatError("label map holds a label of no region")
        return Regions(REGION_LABELS, count, labels=labels)
    raise FormatError(f"unknown region kind {kind}")


def _parse_masks(payload: bytes, total: int, regions: Regions | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(union, region masks or None) from a MASKS section payload."""
    if regions is None or regions.count == 1:
        bits = entropy.decompress(payload, (total + 7) // 8)
        return np.unpackbits(np.frombuffer(bits, np.uint8), count=total, bitorder="little").astype(bool), None
    width = _pattern_width(regions.count)
    raw = entropy.decompress(payload, total * width)
    flags = np.unpackbits(np.frombuffer(raw, np.uint8).reshape(total, width), axis=1, bitorder="little")
    if flags[:, regions.count :].any():
        raise FormatError("mask pattern names a region that does not exist")
    region_masks = flags[:, : regions.count].T.astype(bool)
    return region_masks.any(axis=0), region_masks


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
    layout = header_struct(version)
    if len(data) < len(MAGIC) + 1 + layout.size + 4:
        raise FormatError("file truncated in the header")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        raise FormatError("CRC mismatch: the file is corrupt or truncated")
    values = dict(zip(header_fields(version), layout.unpack_from(data, len(MAGIC) + 1)))
    n_sections = values.pop("n_sections")
    header = Header(**values)
    _check_header(header)
    body = memoryview(data)[len(MAGIC) + 1 + layout.size : len(data) - 4]
    sizes = n_weights(header)
    masks = None
    regions = None
    region_masks = None
    layers: list[LayerCode] = []
    section_bytes: dict[str, int] = {}
    pos = 0
    for _ in range(n_sections):
        if pos + _SECTION.size > len(body):
            raise FormatError("file truncated in a section header")
        kind, length = _SECTION.unpack_from(body, pos)
        pos += _SECTION.size
        if pos + length > len(body):
            raise FormatError("section runs past the end of the file")
        payload = bytes(body[pos : pos + length])
        pos += length
        if kind == SECTION_REGIONS and version >= 2:
            if section_bytes:
                raise FormatError("regions section misplaced (it must come first)")
            regions = _parse_regions(payload, header)
            if regions.count * sum(sizes) > MAX_REGION_MASK_BITS:
                raise FormatError("too many regions for this network size")
        elif kind == SECTION_MASKS:
            if masks is not None or layers:
                raise FormatError("mask section misplaced")
            masks, region_masks = _parse_masks(payload, sum(sizes), regions)
        elif kind == SECTION_LAYER:
            survivors = sizes if masks is None else _survivors(masks, sizes)
            layer = _parse_layer(payload, header, survivors)
            if layer.index != len(layers):
                raise FormatError("layer sections out of order")
            layers.append(layer)
        else:
            raise FormatError(f"unknown section kind {kind}")
        name = SECTION_NAMES[kind] + (str(len(layers) - 1) if kind == SECTION_LAYER else "")
        section_bytes[name] = _SECTION.size + length
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
