"""Format versions 5, 7, 8 and 9: the latent-grid family (issue 15), one image as coded latent grids and
a small sine synthesis network.

Layout (docs/format.md, "Version 5"): magic ``INRC``, version byte 5, the typed header
:data:`LATENT_FIELDS` (range-checked on write and on read by one function), then framed sections
as in versions 1-4 (kind u8, payload length u32): CONTEXT (only with the checkerboard model),
LATENTS, SYNTHESIS, in that order; then the CRC32 of every preceding byte. Versions 1-4 (the plain
SIREN) are :mod:`~inrcodec.format.container`'s; a reader tells them apart by the version byte.
Version 7 is version 5 with a u16 after the header naming a shipped init of both networks
(``inrcodec/priors/latent.py``): the CONTEXT and SYNTHESIS integers are coded as residuals from
the init's, which the encoder's fit starts from; the values they decode to are version 5's.
Version 8 is version 7 (its ``init`` may be 0: no init) with compact coded blocks: each model in
3-13 bytes (5-7 in practice) instead of 18, and the arrays of a section in one stream of words
instead of one each. Version 9 is version 8 whose context byte is 2: the four-pass context model
(``checkerboard.FOUR_PASS``); its network, with an init, is a residual from the init's widened
first layer (``checkerboard.widen_first_layer``).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from inrcodec.format import checkerboard
from inrcodec.format.entropy import (
    LAPLACE,
    Laplace,
    fit_laplace,
    info_bits,
    pack_compact,
    parse_compact,
    range_decode,
    range_decode_all,
    range_encode,
    range_encode_all,
)
from inrcodec.format.errors import FormatError
from inrcodec.format.header import MAGIC, MAX_HIDDEN, MAX_LAYERS, MAX_PE_LEVELS, MAX_PIXELS, Field

VERSION = 5
INIT_VERSION = 7  # version 5 plus an init: the networks coded as residuals from a shipped one
COMPACT_VERSION = 8  # version 7 (init 0 allowed: none) with compact coded blocks
FOUR_PASS_VERSION = 9  # version 8 with the four-pass context model (context byte 2)
VERSIONS = (VERSION, INIT_VERSION, COMPACT_VERSION, FOUR_PASS_VERSION)
CONTEXTS = ("none", "checkerboard", "four-pass")  # the header's ``context`` byte -> the latents' entropy model
SCHEMES = {1: checkerboard.CHECKERBOARD, 2: checkerboard.FOUR_PASS}  # context byte -> its scheme

SECTION_CONTEXT = 4
SECTION_LATENTS = 5
SECTION_SYNTHESIS = 6
SECTION_NAMES = {SECTION_CONTEXT: "context", SECTION_LATENTS: "latents", SECTION_SYNTHESIS: "synthesis"}
FRAME = struct.Struct("<BI")  # section kind, payload length
BLOCK = struct.Struct("<I")  # byte length of a range-coded block
STEP = struct.Struct("<f")  # a synthesis tensor's quantization step
ARM_HEAD = struct.Struct("<BB")  # the context network's width, fractional bits of its weights
CRC = struct.Struct("<I")
INIT = struct.Struct("<H")  # versions 7 and 8: the init's ID, right after the header
MAX_INIT_Q = 1 << 30  # |an init's value in steps| at most this (a tiny step would overflow)
MAX_LATENTS = 1 << 22  # latents of all grids together (checked before anything is allocated)

LATENT_FIELDS: tuple[Field, ...] = (
    Field("width", "H", 5, range(1, 65536), "image width in pixels at native size"),
    Field("height", "H", 5, range(1, 65536), "image height in pixels at native size"),
    Field("channels", "B", 5, (1, 3, 4), "1: grey, 3: RGB, 4: RGBA; the synthesis' outputs"),
    Field("levels", "B", 5, range(1, 16), "latent grids, each half the side of the one before"),
    Field("finest", "B", 5, range(0, 16), "the first grid is 1/2^finest of the image side"),
    Field("latent_channels", "B", 5, range(1, 17), "channels of every latent grid"),
    Field("pe_levels", "B", 5, range(0, MAX_PE_LEVELS + 1), "Fourier levels of the coordinates beside the latents"),
    Field("hidden", "H", 5, range(1, MAX_HIDDEN + 1), "width of the synthesis' hidden layers"),
    Field("layers", "B", 5, range(1, MAX_LAYERS + 1), "hidden sine layers of the synthesis"),
    Field("omega", "f", 5, None, "frequency factor of every sine layer"),
    Field("interpolation", "B", 5, (0, 1), "of the grids at a pixel: 0 bilinear, 1 bicubic (a = -0.75)"),
    Field("activation", "B", 5, (0, 1), "of the synthesis' hidden layers: 0 sin(omega x), 1 ReLU"),
    Field("context", "B", 5, range(len(CONTEXTS)), "latents' entropy model: 0 Laplace, 1 checkerboard, 2 four passes"),
    Field("n_sections", "B", 5, (2, 3), "sections that follow: 3 with a context model, else 2"),
)
HEADER = struct.Struct("<" + "".join(f.code for f in LATENT_FIELDS))
INIT_FIELD = Field("init", "H", 7, range(1, 65536), "the shipped init both networks are residuals from")
COMPACT_INIT_FIELD = Field("init", "H", 8, range(0, 65536), "the shipped init the networks are residuals from; 0: none")


def level_sizes(height: int, width: int, levels: int, finest: int = 0) -> list[tuple[int, int]]:
    """(h, w) of each grid, finest first: ceil(H / 2^(finest + l)) x ceil(W / 2^(finest + l))."""
    return [(-(-height // (1 << i)), -(-width // (1 << i))) for i in range(finest, finest + levels)]


@dataclass(frozen=True)
class LatentHeader:
    """What the decoder needs to rebuild the grids and the synthesis."""

    width: int
    height: int
    channels: int
    levels: int
    finest: int
    latent_channels: int
    pe_levels: int
    hidden: int
    layers: int
    omega: float
    interpolation: int  # 0 bilinear, 1 bicubic
    activation: int  # 0 sine, 1 ReLU
    context: int  # 0 one Laplace per level, 1 checkerboard, 2 four passes (version 9 only)
    init: int = 0  # the shipped init the networks are coded from (versions 7-9); 0: none
    compact: bool = False  # version 8's compact coded blocks (else version 7 with an init, 5 without)

    def version(self) -> int:
        if self.context == 2:
            return FOUR_PASS_VERSION
        return COMPACT_VERSION if self.compact else INIT_VERSION if self.init else VERSION

    @property
    def scheme(self) -> checkerboard.Scheme:
        """The context model's scheme (the header must have one)."""
        return SCHEMES[self.context]

    def level_sizes(self) -> list[tuple[int, int]]:
        return level_sizes(self.height, self.width, self.levels, self.finest)

    def shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the synthesis tensors in file order: each layer's weight (out, in), then its bias."""
        dims = [self.levels * self.latent_channels + 4 * self.pe_levels] + [self.hidden] * self.layers + [self.channels]
        return [s for a, b in zip(dims[:-1], dims[1:]) for s in ((b, a), (b,))]


def check_header(header: LatentHeader, n_sections: int) -> None:
    """The one validation of a version 5, 7, 8 or 9 header, for writer and reader."""
    values = dict(vars(header), n_sections=n_sections)
    for f in LATENT_FIELDS:
        f.check(values[f.name])
    if header.context == 2 and not header.compact:
        raise FormatError("header field context = 2 (four passes) needs version 9's compact blocks")
    if header.compact:
        COMPACT_INIT_FIELD.check(header.init)
    elif header.init:
        INIT_FIELD.check(header.init)
    if header.width * header.height > MAX_PIXELS:
        raise FormatError(f"header fields width x height = {header.width}x{header.height} are over the pixel limit")
    latents = header.latent_channels * sum(h * w for h, w in header.level_sizes())
    if latents > MAX_LATENTS:
        raise FormatError(f"the header's grids hold {latents} latents; the format allows {MAX_LATENTS}")
    if n_sections != (3 if header.context else 2):
        raise FormatError(f"header field n_sections = {n_sections} does not match context = {header.context}")


@dataclass(frozen=True)
class LatentFile:
    """A version 5 file's content as integers: exactly what is coded."""

    header: LatentHeader
    latents: list[np.ndarray]  # per level, (latent_channels, h, w) int64, finest first
    steps: list[float]  # each synthesis tensor's quantization step (float32 values)
    tensors: list[np.ndarray]  # each synthesis tensor as int64 multiples of its step, in header.shapes()
    context: list[np.ndarray] | None = None  # the checkerboard network's integers (units of 1/256)
    context_width: int = 0  # its hidden width
    context_bits: int = 0  # its weights are multiples of 2^-context_bits
    section_bytes: dict[str, int] = field(default_factory=dict, compare=False)  # payload bytes by section, as read

    def synthesis(self) -> list[np.ndarray]:
        """The synthesis tensors dequantized to float32 (one float32 product each)."""
        return [q.astype(np.float32) * np.float32(s) for q, s in zip(self.tensors, self.steps)]

    def check_synthesis(self) -> None:
        """FormatError unless every dequantized synthesis value is finite: an integer times its
        step may overflow float32, and infinities would make NaN pixels (as SIREN files refuse
        non-finite weights)."""
        with np.errstate(over="ignore"):
            values = self.synthesis()
        if not all(np.isfinite(t).all() for t in values):
            raise FormatError("a synthesis value is not finite (its integer times its step overflows float32)")


def _coded(q: np.ndarray) -> bytes:
    model = fit_laplace(q)
    words = range_encode(q, model)
    return model.pack() + BLOCK.pack(len(words)) + words


def _coded_all(arrays: list[np.ndarray], prefixes: list[bytes] | None = None) -> bytes:
    """Version 8's coded arrays: each array's prefix (a synthesis step) and compact model, then one
    stream of words for them all (to the end of the section)."""
    models = [fit_laplace(q) for q in arrays]
    prefixes = prefixes or [b""] * len(arrays)
    heads = b"".join(p + pack_compact(m) for p, m in zip(prefixes, models, strict=True))
    return heads + range_encode_all(arrays, models)


def _read_models(data: memoryview, at: int, n: int) -> tuple[list[Laplace], int]:
    models = []
    for _ in range(n):
        model, at = parse_compact(data, at)
        models.append(model)
    return models, at


def _read_coded(data: memoryview, at: int, count: int) -> tuple[np.ndarray, int]:
    if at + LAPLACE.size + BLOCK.size > len(data):
        raise FormatError("coded block truncated")
    model = Laplace.parse(data[at:])
    at += LAPLACE.size
    (size,) = BLOCK.unpack_from(data, at)
    at += BLOCK.size
    if at + size > len(data):
        raise FormatError("coded block truncated")
    return range_decode(data[at : at + size], model, count), at + size


def _init_arrays(header: LatentHeader) -> dict[str, np.ndarray]:
    from inrcodec.priors import latent as inits  # the registry reads package data: only version 7 needs it

    return inits.arrays(inits.by_id(header.init))


def synthesis_base(header: LatentHeader, steps: list[float]) -> list[np.ndarray]:
    """Version 7: each synthesis tensor of the header's init in units of the file's step for it,
    rint(float64(w) / float64(step)) (one correctly rounded division, ties to even: the same
    integers on every machine); FormatError if the init has another shape or a value lies more
    than MAX_INIT_Q steps from zero."""
    init = _init_arrays(header)
    names = [f"linears.{i}.{k}" for i in range(header.layers + 1) for k in ("weight", "bias")]
    if (
        sorted(k for k in init if k.startswith("linears.")) != sorted(names)
        or [init[n].shape for n in names] != header.shapes()
    ):
        raise FormatError(f"latent init {header.init} is for another synthesis than this file's")
    base = []
    for name, step in zip(names, steps):
        q = np.rint(init[name].astype(np.float64) / float(np.float32(step)))
        if q.size and np.abs(q).max() > MAX_INIT_Q:
            raise FormatError(f"synthesis step {step!r} puts latent init {header.init}'s values out of range")
        base.append(q.astype(np.int64))
    return base


def context_base(header: LatentHeader, width: int, bits: int) -> np.ndarray:
    """Versions 7-9: the init's context network as integers in units of 2^-bits, flat in CONTEXT's
    order: rint(float64(v) * 2^bits) (exact scaling, ties to even); version 9 first widens a
    checkerboard init's first layer to the four-pass contexts (checkerboard.widen_first_layer:
    zeros and copies)."""
    init = _init_arrays(header)
    names = [f"arm.{k}" for k in checkerboard.ARM_NAMES]
    want = checkerboard.arm_shapes(width, header.levels)  # W1 of an init trained with four passes: H x 20
    have = [init[n].shape for n in names] if all(n in init for n in names) else []
    if not have or have[1:] != want[1:] or have[0] not in (want[0], (width, header.scheme.features)):
        raise FormatError(f"latent init {header.init} is for another context network than this file's")
    arrays = [init[n].astype(np.float64) for n in names]
    arrays[0] = checkerboard.widen_first_layer(arrays[0], header.scheme)
    return np.concatenate([np.rint(a.reshape(-1) * (1 << bits)) for a in arrays]).astype(np.int64)


def synthesis_payload(f: LatentFile) -> bytes:
    """The SYNTHESIS payload: each tensor's step and its integers (with an init: less the init's),
    in one block each (version 8: the steps and models, then one stream)."""
    coded = f.tensors
    if f.header.init:
        coded = [q - b for q, b in zip(f.tensors, synthesis_base(f.header, f.steps))]
    if f.header.compact:
        return _coded_all([q.reshape(-1) for q in coded], [STEP.pack(s) for s in f.steps])
    return b"".join(STEP.pack(s) + _coded(q.reshape(-1)) for s, q in zip(f.steps, coded))


def _section(kind: int, payload: bytes) -> bytes:
    return FRAME.pack(kind, len(payload)) + payload


def context_block(f: LatentFile) -> bytes:
    """The CONTEXT payload: width, bits, then the network's integers in 2^-bits units (version 7:
    less the init's), one block."""
    shift = checkerboard.FRAC - f.context_bits
    flat = np.concatenate([a.reshape(-1) >> shift for a in f.context])
    if any(((a >> shift) << shift != a).any() for a in f.context):
        raise FormatError(f"context network values are not multiples of 2^-{f.context_bits}")
    if f.header.init:
        flat = flat - context_base(f.header, f.context_width, f.context_bits)
    block = _coded_all([flat]) if f.header.compact else _coded(flat)
    return ARM_HEAD.pack(f.context_width, f.context_bits) + block


def level_bytes(f: LatentFile) -> list[float]:
    """The LATENTS section's bytes by level: each level's own block without a context model
    (exact), or with it each level's information under its tables (checkerboard.level_bits: one
    stream of words holds every level, which they add up to within a few bytes)."""
    h = f.header
    if h.context:
        return [b / 8 for b in checkerboard.level_bits(f.latents, f.context, h.scheme)]
    if f.header.compact:  # one stream: each level's model and its information under it
        return [len(pack_compact(m := fit_laplace(q))) + info_bits(q, m) / 8 for q in f.latents]
    return [float(len(_coded(q.reshape(-1)))) for q in f.latents]


def write(f: LatentFile) -> bytes:
    """The file's bytes; FormatError if a field or an array does not fit the format."""
    h = f.header
    n_sections = 3 if h.context else 2
    check_header(h, n_sections)
    sizes = h.level_sizes()
    if [q.shape for q in f.latents] != [(h.latent_channels, *s) for s in sizes]:
        raise FormatError("latent grids do not have the header's sizes")
    if [q.shape for q in f.tensors] != h.shapes() or len(f.steps) != len(f.tensors):
        raise FormatError("synthesis tensors do not have the header's shapes")
    if not all(np.isfinite(np.float32(s)) and np.float32(s) > 0 for s in f.steps):
        raise FormatError("synthesis steps must be positive finite float32 values")
    f.check_synthesis()
    values = dict(vars(h), n_sections=n_sections)
    out = bytearray(MAGIC + bytes([h.version()]) + HEADER.pack(*(values[x.name] for x in LATENT_FIELDS)))
    if h.version() != VERSION:  # versions 7-9 name their init (8, 9: 0 for none)
        out += INIT.pack(h.init)
    if h.context:
        if f.context is None or not (1 <= f.context_width < 256 and 1 <= f.context_bits <= checkerboard.FRAC):
            raise FormatError("a checkerboard file needs its context network, width 1..255 and 1..8 bits")
        out += _section(SECTION_CONTEXT, context_block(f))
        latents = checkerboard.encode_latents(f.latents, f.context, h.scheme)
    elif h.compact:
        latents = _coded_all([q.reshape(-1) for q in f.latents])
    else:
        latents = b"".join(_coded(q.reshape(-1)) for q in f.latents)
    out += _section(SECTION_LATENTS, latents)
    synthesis = synthesis_payload(f)
    out += _section(SECTION_SYNTHESIS, synthesis)
    out += CRC.pack(zlib.crc32(out))
    return bytes(out)


def is_latent(data: bytes) -> bool:
    """Whether ``data`` claims to be a version 5, 7, 8 or 9 file (the decoder's dispatch)."""
    return len(data) > len(MAGIC) and data[: len(MAGIC)] == MAGIC and data[len(MAGIC)] in VERSIONS


def _sections(data: memoryview, at: int, end: int, n: int) -> list[tuple[int, memoryview]]:
    out = []
    for _ in range(n):
        if at + FRAME.size > end:
            raise FormatError("section frame truncated")
        kind, length = FRAME.unpack_from(data, at)
        at += FRAME.size
        if at + length > end:
            raise FormatError("section payload runs past the end of the file")
        out.append((kind, data[at : at + length]))
        at += length
    if at != end:
        raise FormatError("bytes after the last section")
    return out


def read(data: bytes) -> LatentFile:
    """A version 5, 7, 8 or 9 file back from its bytes, the networks' integers as version 5 holds
    them (residuals added to the init's); FormatError (never another exception) if malformed."""
    start = len(MAGIC) + 1
    if not is_latent(data):
        raise FormatError("not a version 5, 7, 8 or 9 (latent-grid) .inr file")
    version = data[len(MAGIC)]
    compact = version in (COMPACT_VERSION, FOUR_PASS_VERSION)
    body = start + HEADER.size + (INIT.size if version != VERSION else 0)
    if len(data) < body + CRC.size:
        raise FormatError("file truncated in its header")
    (crc,) = CRC.unpack_from(data, len(data) - CRC.size)
    if zlib.crc32(data[: -CRC.size]) != crc:
        raise FormatError("CRC mismatch: the file is corrupt")
    values = dict(zip([x.name for x in LATENT_FIELDS], HEADER.unpack_from(data, start)))
    n_sections = values.pop("n_sections")
    if version != VERSION:
        (values["init"],) = INIT.unpack_from(data, start + HEADER.size)
        (COMPACT_INIT_FIELD if compact else INIT_FIELD).check(values["init"])
    header = LatentHeader(**values, compact=compact)
    check_header(header, n_sections)
    if header.version() != version:
        raise FormatError(f"header field context = {header.context} is not allowed in version {version}")
    view = memoryview(data)
    sections = _sections(view, body, len(data) - CRC.size, n_sections)
    kinds = [k for k, _ in sections]
    expected = ([SECTION_CONTEXT] if header.context else []) + [SECTION_LATENTS, SECTION_SYNTHESIS]
    if kinds != expected:
        raise FormatError(f"sections {kinds} out of order (expected {expected})")
    payload = dict(sections)
    sizes = header.level_sizes()
    context, width, bits = None, 0, 0
    if header.context:
        block = payload[SECTION_CONTEXT]
        if len(block) < ARM_HEAD.size:
            raise FormatError("CONTEXT section truncated")
        width, bits = ARM_HEAD.unpack_from(block)
        if width == 0 or not 1 <= bits <= checkerboard.FRAC:
            raise FormatError("CONTEXT section: width 0 or weights of more than 8 fractional bits")
        shapes = checkerboard.arm_shapes(width, header.levels, header.scheme)
        count = sum(int(np.prod(s)) for s in shapes)
        if compact:
            models, at = _read_models(block, ARM_HEAD.size, 1)
            (flat,) = range_decode_all(block[at:], models, [count])
        else:
            flat, at = _read_coded(block, ARM_HEAD.size, count)
            if at != len(block):
                raise FormatError("CONTEXT section has trailing bytes")
        if header.init:
            flat = flat + context_base(header, width, bits)
        context, k = [], 0
        for s in shapes:
            n = int(np.prod(s))
            part = flat[k : k + n].reshape(s)
            if part.size and int(np.abs(part).max()) >= checkerboard.MAX_VALUE >> (checkerboard.FRAC - bits):
                raise FormatError("CONTEXT section: a network value is out of range")
            context.append(part << (checkerboard.FRAC - bits))
            k += n
        latents = checkerboard.decode_latents(
            payload[SECTION_LATENTS], sizes, header.latent_channels, context, header.scheme
        )
    elif compact:
        block, counts = payload[SECTION_LATENTS], [header.latent_channels * lh * lw for lh, lw in sizes]
        models, at = _read_models(block, 0, len(sizes))
        flats = range_decode_all(block[at:], models, counts)
        latents = [q.reshape(header.latent_channels, lh, lw) for q, (lh, lw) in zip(flats, sizes)]
    else:
        block, at, latents = payload[SECTION_LATENTS], 0, []
        for lh, lw in sizes:
            q, at = _read_coded(block, at, header.latent_channels * lh * lw)
            latents.append(q.reshape(header.latent_channels, lh, lw))
        if at != len(block):
            raise FormatError("LATENTS section has trailing bytes")
    block, at, steps, tensors, models = payload[SECTION_SYNTHESIS], 0, [], [], []
    for shape in header.shapes():
        if at + STEP.size > len(block):
            raise FormatError("SYNTHESIS section truncated")
        (step,) = STEP.unpack_from(block, at)
        if not (np.isfinite(step) and step > 0):
            raise FormatError(f"synthesis step {step!r} is not a positive finite number")
        steps.append(step)
        if compact:  # the steps and models first, then one stream
            (model,), at = _read_models(block, at + STEP.size, 1)
            models.append(model)
        else:
            q, at = _read_coded(block, at + STEP.size, int(np.prod(shape)))
            tensors.append(q.reshape(shape))
    if compact:
        flats = range_decode_all(block[at:], models, [int(np.prod(s)) for s in header.shapes()])
        tensors = [q.reshape(s) for q, s in zip(flats, header.shapes())]
    elif at != len(block):
        raise FormatError("SYNTHESIS section has trailing bytes")
    if header.init:
        tensors = [r + b for r, b in zip(tensors, synthesis_base(header, steps))]
    sizes = {SECTION_NAMES[k]: len(p) for k, p in sections}
    f = LatentFile(header, latents, steps, tensors, context, width, bits, sizes)
    f.check_synthesis()
    return f
