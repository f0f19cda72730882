"""The sections of an ``.inr`` file: REGIONS (v2), MASKS and LAYER payloads, packed and parsed.

Each ``pack_*`` function gives a section's payload and each ``parse_*`` function reads one back,
validating every field before anything is allocated (FormatError, nothing else). The framing of
the sections, their order and the CRC are :mod:`inrcodec.format.container`'s.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from inrcodec.format import entropy
from inrcodec.format.dictionary import MAX_ATOMS, MAX_LENGTH
from inrcodec.format.errors import FormatError
from inrcodec.format.header import Header

MAX_DICT_ENTRIES = 1 << 22  # k x m of a SINR dictionary
MAX_REGIONS = 64  # regions (tickets) per file, v2
MAX_LABEL_CELLS = 1 << 24  # cells of a stored label map, v2
MAX_REGION_MASK_BITS = 1 << 26  # regions x weights, v2: bounds the decoded masks to 64 MB

# Section kinds (table indices as stored).
SECTION_MASKS = 1
SECTION_LAYER = 2
SECTION_REGIONS = 3  # v2
SECTION_NAMES = {SECTION_MASKS: "masks", SECTION_LAYER: "layer", SECTION_REGIONS: "regions"}
SECTION_FRAME = struct.Struct("<BI")  # kind, payload length; the payload follows

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
_U32 = struct.Struct("<I")  # v4 range coded layers: bytes of the Brotli'd biases (and indices)


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


def pack_section(kind: int, payload: bytes) -> bytes:
    """A section as stored: its frame, then its payload."""
    return SECTION_FRAME.pack(kind, len(payload)) + payload


# --- LAYER ---------------------------------------------------------------------------------------


def pack_layer(layer: LayerCode, quality: int = 11) -> bytes:
    """The payload of ``layer``'s LAYER section: biases (and SINR atom indices) Brotli'd at
    ``quality``, then the values, Brotli'd with them or (v4) range coded after them."""
    bias_u = entropy.zigzag(layer.bias_q)
    bw = entropy.symbol_width(bias_u)
    ranged = layer.entropy_coder == entropy.RANGE
    val_u = entropy.zigzag(layer.values_q.reshape(-1))
    vw = 0 if ranged else entropy.symbol_width(val_u)
    head = _LAYER.pack(layer.index, layer.coder, layer.entropy_coder, layer.bias_step, layer.step, bw, vw)
    raw = entropy.pack(bias_u, bw)
    if layer.coder == CODER_SINR:
        if layer.sinr is None or layer.indices is None:
            raise FormatError(f"layer {layer.index}: a SINR layer needs its (k, m, s, seed) and atom indices")
        head += _SINR.pack(*layer.sinr)
        raw += layer.indices.astype("<u2").tobytes()
    if not ranged:
        return head + entropy.compress(raw + entropy.pack(val_u, vw), quality)
    block = entropy.compress(raw, quality)
    model = entropy.fit_laplace(layer.values_q)
    return head + _U32.pack(len(block)) + block + model.pack() + entropy.range_encode(layer.values_q, model)


def _step(value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise FormatError("quantizer step is not a positive finite number")
    return value


def parse_layer(
    payload: bytes, header: Header, survivors: list[int], coders: tuple[int, ...] = (entropy.BROTLI,)
) -> LayerCode:
    """A LAYER section's payload; ``survivors`` is the number of kept weights of each map,
    ``coders`` the entropy coders the file's version allows."""
    if len(payload) < _LAYER.size:
        raise FormatError("layer section too short")
    index, coder, ecoder, bias_step, step, bw, vw = _LAYER.unpack_from(payload)
    if index >= len(survivors):
        raise FormatError(f"layer index {index} out of range")
    if coder not in (CODER_SCALAR, CODER_SINR) or ecoder not in coders:
        raise FormatError("unknown weight or entropy coder")
    ranged = ecoder == entropy.RANGE
    if bw not in (1, 2, 4) or vw not in ((0,) if ranged else (1, 2, 4)):
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
    if ranged:
        if len(payload) < pos + _U32.size:
            raise FormatError("layer section too short")
        (n_block,) = _U32.unpack_from(payload, pos)
        pos += _U32.size
        if len(payload) < pos + n_block:
            raise FormatError("layer section too short")
        raw = entropy.decompress(payload[pos : pos + n_block], expected)
        model = entropy.Laplace.parse(payload[pos + n_block :])
        ranged_values = entropy.range_decode(payload[pos + n_block + entropy.LAPLACE.size :], model, n_vals)
    else:
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
    values = ranged_values if ranged else entropy.unzigzag(entropy.unpack(raw[off:], vw, n_vals))
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


# --- MASKS ---------------------------------------------------------------------------------------


def pack_bits(flags: np.ndarray) -> bytes:
    """One bit per flag, least significant bit first (one region's mask, before Brotli)."""
    return np.packbits(flags.astype(np.uint8), bitorder="little").tobytes()


def _pattern_width(count: int) -> int:
    return (count + 7) // 8


def pack_patterns(region_masks: np.ndarray) -> bytes:
    """v2, K > 1 regions: per weight, a little-endian ceil(K/8)-byte pattern; bit k: region k keeps it."""
    k, total = region_masks.shape
    width = _pattern_width(k)
    flags = np.zeros((total, 8 * width), dtype=np.uint8)
    flags[:, :k] = region_masks.T
    return np.packbits(flags, axis=1, bitorder="little").tobytes()


def pack_masks(
    masks: np.ndarray | None,
    quality: int = 11,
    regions: Regions | None = None,
    region_masks: np.ndarray | None = None,
) -> bytes | None:
    """The MASKS payload, or None when every region keeps every weight (the file has no MASKS).

    ``masks`` is the mask the layers are coded against (None: dense); with ``regions`` of K > 1
    regions it is the union of the K ``region_masks`` (bool, (K, n weights); None: every region
    uses ``masks``).
    """
    if region_masks is not None:
        if regions is None or region_masks.shape[0] != regions.count:
            raise FormatError("region masks need regions, one mask per region")
        union = region_masks.any(axis=0)
        if not ((union.all() and masks is None) or (masks is not None and np.array_equal(union, masks))):
            raise FormatError("the layers' mask is not the union of the region masks")
        if masks is None and not region_masks.all():
            masks = union  # the union is dense but some region's mask is not: store the masks
    if masks is None:
        return None
    if regions is not None and regions.count > 1:
        raw = pack_patterns(np.tile(masks, (regions.count, 1)) if region_masks is None else region_masks)
    else:
        raw = pack_bits(masks)
    return entropy.compress(raw, quality)


def parse_masks(payload: bytes, total: int, regions: Regions | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(union, region masks or None) from a MASKS payload over ``total`` weights."""
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


# --- REGIONS (v2) --------------------------------------------------------------------------------


def pack_regions(regions: Regions, quality: int = 11) -> bytes:
    """The REGIONS payload: a grid's rows and cols, or a Brotli-coded label map."""
    if regions.kind == REGION_GRID:
        return _REGIONS_GRID.pack(REGION_GRID, regions.rows, regions.cols)
    labels = regions.label_map()
    mh, mw = labels.shape
    head = _REGIONS_LABELS.pack(REGION_LABELS, regions.count, mw, mh)
    return head + entropy.compress(np.ascontiguousarray(labels, dtype=np.uint8).tobytes(), quality)


def parse_regions(payload: bytes, header: Header) -> Regions:
    """A REGIONS payload, checked against the image size in ``header``."""
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
