"""The context models' integer side (format v5; v9's four passes): the latents of a pyramid coded
under a distribution that each latent's already-decoded neighbours predict, computed exactly.

Shared by the encoder (``encoder/latent_context.py`` trains the float twin of this network) and
the decoder; NumPy only. Decode order: the coarsest level first; within a level the groups of a
:class:`Scheme`, each one vectorised step. :data:`CHECKERBOARD` (versions 5-8, He et al. 2021):
the *anchors* (row + column even) from the coarser level alone, then the other half also from
their four anchor neighbours. :data:`FOUR_PASS` (version 9): the anchors split in two, (even,
even) then (odd, odd), then (even, odd) and (odd, even), each seeing the 3x3 neighbours the groups
before it decoded (the diagonals, then all four cross neighbours, then all eight).

The context of a latent is integers: the 3x3 neighbourhood of its parent in the next coarser
level (zeros for the coarsest), its window of neighbours in its own level (zeros where not yet
decoded or outside the grid) and one flag per group but the last (1 for its own group; the
checkerboard's one flag is the anchor flag). A small ReLU network maps them to a centre ``mu``
and a scale index ``u`` (six times its second output plus a per-level offset: scale
``b = 0.05 * 2^(u/6)``). The latent is coded as ``q - floor(mu)`` under the Laplace's mass over
[q - 1/2, q + 1/2]; ``mu`` is kept to a sixteenth and ``u`` to an integer, so the bin edges lie on
sixteenths and the CDF there is a power of the decay ``t_u`` per sixteenth.

Exactness: weights and biases are multiples of 2^-k (k <= 8, chosen per file) stored as
integers, activations carry 8 fractional bits, products 16; shifts floor. The per-scale decays
are the integer table :data:`DECAYS`, and the probability tables are built from them with integer
arithmetic only, so every machine derives the same tables from the same file (docs/format.md,
version 5).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from inrcodec import blas
from inrcodec.format.entropy import PRECISION
from inrcodec.format.errors import FormatError

SCALES = 64  # scale indices u = 0..63: b = 0.05 * 2^(u/6), from 0.05 to about 72
FRAC = 8  # fractional bits of the integer network's weights and activations
MAX_RESIDUAL = 1 << 14  # |q - floor(mu)| the stream allows
MU_STEPS = 16  # mu is kept to a sixteenth
MAX_VALUE = 1 << 16  # |every network integer| (units of 1/256) below this: |weight| < 256
MAX_INPUT = 1 << 15  # a context value is clamped to -MAX_INPUT..MAX_INPUT-1 before the network
MAX_ACTIVATION = 1 << 20  # hidden activations (units of 1/256) are clamped to 0..MAX_ACTIVATION
# These three bounds keep every intermediate of int_params below 2^48 (docs/format.md): int64
# never wraps, and float64 holds every one exactly.

# round(65536 * exp(-1 / (16 b_u))): the weight ratio per sixteenth of a step at scale u. A literal table
# (not computed at import) so that no math library's last bit can change a probability.
DECAYS = (
    18776, 21520, 24300, 27078, 29819, 32494, 35079, 37554, 39906, 42126, 44207, 46147, 47947, 49610, 51140,
    52543, 53825, 54993, 56056, 57020, 57892, 58681, 59393, 60034, 60611, 61130, 61596, 62014, 62389, 62725,
    63025, 63295, 63535, 63751, 63943, 64115, 64268, 64406, 64528, 64637, 64735, 64822, 64899, 64968, 65030,
    65085, 65134, 65178, 65217, 65252, 65283, 65310, 65335, 65357, 65376, 65394, 65409, 65423, 65435, 65446,
    65456, 65465, 65473, 65479,
)  # fmt: skip


@dataclass(frozen=True)
class Scheme:
    """How a level is split into decode groups and what a latent's context holds."""

    groups: tuple[tuple[tuple[int, int], ...], ...]  # per group, its (row, column) parities, in decode order
    window: tuple[tuple[int, int], ...]  # own-level neighbours (row, column offsets), in feature order

    def __post_init__(self) -> None:
        parities = sorted(p for parities in self.groups for p in parities)
        if parities != [(0, 0), (0, 1), (1, 0), (1, 1)]:  # Layout reads each group's positions from its parities
            raise ValueError(f"a scheme's groups must hold each (row, column) parity once, not {parities}")

    @property
    def features(self) -> int:
        """Context integers: the parent's 3x3, the window, a flag per group but the last."""
        return 9 + len(self.window) + len(self.groups) - 1

    def group_of(self, h: int, w: int) -> np.ndarray:
        """(h, w): the group each position of an h x w grid is decoded in."""
        out = np.zeros((h, w), np.int64)
        for g, parities in enumerate(self.groups):
            for pi, pj in parities:
                out[pi::2, pj::2] = g  # the positions of row parity pi and column parity pj
        return out


CROSS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right
CHECKERBOARD = Scheme((((0, 0), (1, 1)), ((0, 1), (1, 0))), CROSS)  # 14 features (versions 5-8)
FOUR_PASS = Scheme(
    (((0, 0),), ((1, 1),), ((0, 1),), ((1, 0),)),
    tuple((di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)),
)  # 20 features (version 9)
FEATURES = CHECKERBOARD.features  # 14: the checkerboard's, the shipped inits' context networks'
# FOUR_PASS's first-layer columns that a checkerboard network's columns become when a version 9
# network starts from a shipped (checkerboard) init: the parent's 3x3 as it is; up, down, left,
# right to the window's places of those offsets; the anchor flag to the flags of both anchor
# groups. Every other column is zero, so the network predicts as the init did (docs/format.md).
FROM_CHECKERBOARD = (
    *((k, k) for k in range(9)),
    *((9 + FOUR_PASS.window.index(d), 9 + k) for k, d in enumerate(CROSS)),
    (9 + len(FOUR_PASS.window), 13),
    (10 + len(FOUR_PASS.window), 13),
)  # (FOUR_PASS column, CHECKERBOARD column)


def widen_first_layer(w1: np.ndarray, scheme: Scheme) -> np.ndarray:
    """An init's first-layer weights as ``scheme``'s (hidden, F): a checkerboard network's
    (hidden, 14) widened by :data:`FROM_CHECKERBOARD` (zeros elsewhere); weights that already
    read ``scheme``'s contexts (an init trained with them) as they are; ValueError for any other
    width (callers check an init's shapes first, so a file never reaches this)."""
    if w1.ndim == 2 and w1.shape[1] == scheme.features:
        return w1
    if w1.ndim != 2 or w1.shape[1] != CHECKERBOARD.features:
        raise ValueError(f"first layer reads {w1.shape[1:]} integers: neither the checkerboard's nor the scheme's")
    out = np.zeros((w1.shape[0], scheme.features), w1.dtype)
    for new, old in FROM_CHECKERBOARD:
        out[:, new] = w1[:, old]
    return out


def check_network(arm: list[np.ndarray], scheme: Scheme = CHECKERBOARD) -> None:
    """FormatError unless the network reads ``scheme``'s contexts and every integer of it is
    within MAX_VALUE (the overflow bound)."""
    if arm[0].ndim != 2 or arm[0].shape[1] != scheme.features:
        raise FormatError(f"context network reads {arm[0].shape[1:]} integers, the scheme {scheme.features}")
    if any(a.size and int(np.abs(a).max()) >= MAX_VALUE for a in arm):
        raise FormatError(f"context network value out of range (allowed: |v| < {MAX_VALUE} in units of 1/256)")


# the network's tensors in stream order, as the encoder's ContextModel names them (and the
# shipped inits, under "arm.")
ARM_NAMES = ("l1.weight", "l1.bias", "l2.weight", "l2.bias", "l3.weight", "l3.bias", "offsets")


def arm_shapes(hidden: int, levels: int, scheme: Scheme = CHECKERBOARD) -> list[tuple[int, ...]]:
    """Shapes of the network's integer tensors in stream order: three layers' weights and biases,
    then one scale offset per level."""
    return [(hidden, scheme.features), (hidden,), (hidden, hidden), (hidden,), (2, hidden), (2,), (levels,)]


def member(scheme: Scheme, h: int, w: int, group: int) -> np.ndarray:
    """True at the positions of an h x w grid that ``scheme`` decodes in ``group``."""
    return scheme.group_of(h, w) == group


@dataclass(frozen=True)
class Layout:
    """Where one group of an h x w level lies. Each of its row and column parities (pi, pj) is a
    strided block of the grid, so its contexts are slices of the padded grids, not gathers; the
    block order is undone by ``perm`` on the network's two outputs, far cheaper than on the
    contexts (the four-pass groups are one block each: no permutation)."""

    group: int  # the scheme's group, in decode order
    blocks: tuple[tuple[int, int, int, int], ...]  # (pi, pj, rows, columns) of each parity block
    mask: np.ndarray  # (h, w): True at the group's positions
    perm: np.ndarray | None  # row-major position k of the group is block-order row perm[k]; None: the same

    @staticmethod
    def of(scheme: Scheme, h: int, w: int, group: int) -> Layout:
        blocks = tuple((pi, pj, (h - pi + 1) // 2, (w - pj + 1) // 2) for pi, pj in scheme.groups[group])
        mask = member(scheme, h, w, group)
        if len(blocks) == 1:
            return Layout(group, blocks, mask, None)
        at, rank = 0, np.zeros((h, w), np.int64)
        for pi, pj, hb, wb in blocks:
            rank[pi::2, pj::2] = np.arange(at, at + hb * wb).reshape(hb, wb)
            at += hb * wb
        return Layout(group, blocks, mask, rank[mask])

    @property
    def size(self) -> int:
        return sum(hb * wb for _, _, hb, wb in self.blocks)


def _block_contexts(
    q: np.ndarray, parent: np.ndarray | None, scheme: Scheme, layout: Layout, dtype: type = np.float64
) -> np.ndarray:
    """(C, n, features) contexts of one group in block order (each parity block row-major, blocks
    in the scheme's order), as ``dtype``: float64 for the network, int64 for :func:`features`
    (exact at any latent's value). A neighbour at offset (di, dj) of a block has one parity, so
    it was decoded by an earlier group for the whole block or for none of it; the parent of
    (pi + 2a, pj + 2b) is (a, b)."""
    c, h, w = q.shape
    if parent is not None and parent.shape[0] != c:
        raise ValueError(f"parent has {parent.shape[0]} channels, the level {c}")
    group = layout.group
    group_of = {p: g for g, parities in enumerate(scheme.groups) for p in parities}
    out = np.zeros((c, layout.size, scheme.features), dtype)
    pad = np.pad(q, ((0, 0), (1, 1), (1, 1)))
    parent_pad = None if parent is None else np.pad(parent, ((0, 0), (1, 1), (1, 1)))
    at = 0
    for pi, pj, hb, wb in layout.blocks:
        view = out[:, at : at + hb * wb].reshape(c, hb, wb, scheme.features)
        at += hb * wb
        if parent_pad is not None:
            for k, (di, dj) in enumerate((di, dj) for di in range(3) for dj in range(3)):
                view[..., k] = parent_pad[:, di : di + hb, dj : dj + wb]
        for k, (di, dj) in enumerate(scheme.window):
            if group_of.get(((pi + di) % 2, (pj + dj) % 2), 0) < group:  # decoded before this group
                i, j = pi + 1 + di, pj + 1 + dj
                view[..., 9 + k] = pad[:, i : i + 2 * hb - 1 : 2, j : j + 2 * wb - 1 : 2]
        if group < len(scheme.groups) - 1:
            view[..., 9 + len(scheme.window) + group] = 1
    return out


def features(q: np.ndarray, parent: np.ndarray | None, scheme: Scheme, group: int) -> np.ndarray:
    """(n, scheme.features) integer contexts of one group of level ``q`` (C, h, w), in C, row,
    column order; ``q`` needs only the groups before ``group`` filled in (the rest is not read)."""
    layout = Layout.of(scheme, *q.shape[1:], group)
    out = _block_contexts(q, parent, scheme, layout, np.int64)
    if layout.perm is not None:
        out = out[:, layout.perm]
    return out.reshape(-1, scheme.features)


class Network:
    """The integer network, computed in float64: every value it computes is an integer below 2^48
    (the bounds above), which float64 holds exactly, so no product or partial sum of BLAS rounds,
    in any order of summation, with or without fused multiply-adds; clipping, adding and flooring
    after a division by 2^FRAC (exact: a power of two) give int64 arithmetic's integers. NumPy's
    int64 product has no BLAS and was most of a version 5 decode (0.3 of 0.45 s at 768x512);
    converting between the two at every layer was a third of what was left. Callers hold BLAS to
    one thread (blas.one_thread): products this small took 6x longer on OpenBLAS's threads while
    another job held a core (40 against 7 ms for 65,536 rows)."""

    def __init__(self, arm: list[np.ndarray]) -> None:
        w1, b1, w2, b2, w3, b3, self.offsets = arm
        self.weights = [np.asarray(w, np.float64).T.copy() for w in (w1, w2, w3)]
        self.biases = [np.asarray(b, np.float64) * (1 << FRAC) for b in (b1, b2, b3)]

    def __call__(self, a: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
        """(floor(mu), table index 16 u + sixteenths of mu) of each float64 context row (``a`` is
        overwritten)."""
        np.clip(a, -MAX_INPUT, MAX_INPUT - 1, out=a)
        a *= 1 << FRAC
        for w, b in zip(self.weights[:2], self.biases[:2]):
            a = a @ w
            a += b
            np.clip(a, 0, MAX_ACTIVATION << FRAC, out=a)
            a *= 1.0 / (1 << FRAC)
            np.floor(a, out=a)
        z = (a @ self.weights[2] + self.biases[2]).astype(np.int64)  # 2 * FRAC fractional bits
        mu16 = (z[:, 0] + (1 << (2 * FRAC - 5))) >> (2 * FRAC - 4)  # mu in sixteenths, rounded
        offset = int(self.offsets[level]) << FRAC
        u = np.clip((6 * (z[:, 1] + offset) + (1 << (2 * FRAC - 1))) >> (2 * FRAC), 0, SCALES - 1)
        return mu16 >> 4, MU_STEPS * u + (mu16 & (MU_STEPS - 1))


def int_params(feats: np.ndarray, arm: list[np.ndarray], level: int) -> tuple[np.ndarray, np.ndarray]:
    """The integer network: (floor(mu), table index 16 u + sixteenths of mu) of each context row."""
    return Network(arm)(np.asarray(feats, np.int64).astype(np.float64), level)


def pass_params(
    q: np.ndarray, parent: np.ndarray | None, net: Network, level: int, scheme: Scheme, layout: Layout
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`int_params` of :func:`features`, the contexts in block order and the outputs put back
    in row-major order."""
    c = q.shape[0]
    base, index = net(_block_contexts(q, parent, scheme, layout).reshape(-1, scheme.features), level)
    if layout.perm is not None:
        base, index = (x.reshape(c, -1)[:, layout.perm].reshape(-1) for x in (base, index))
    return base, index


def _powers(u: int, count: int) -> np.ndarray:
    """t_u^d for d = 0..count-1 in 32-bit fixed point, by integer multiplication and shifts."""
    power = [1 << 32]
    for _ in range(count - 1):
        power.append(power[-1] * DECAYS[u] >> 16)
    return np.array(power, dtype=np.int64)


def _cdf(powers: np.ndarray, u: np.ndarray, e: np.ndarray) -> np.ndarray:
    """The Laplace's CDF at scale ``u``, in 32-bit fixed point, ``e`` sixteenths from its centre."""
    half = powers[u, np.abs(e)] >> 1
    return np.where(e <= 0, half, (1 << 32) - half)


def tables(indices: list[int], bound: int, powers: np.ndarray | None = None) -> np.ndarray:
    """(len(indices), 2 bound + 1) integer frequencies (each row summing to 2^PRECISION, none zero)
    of residuals -bound..bound under each table ``index`` = 16 u + f: the Laplace mass of
    [r - 1/2, r + 1/2] about centre f/16, from its CDF at multiples of 1/16 (t_u^e / 2 below the
    centre, 1 - t_u^e / 2 above), t_u = DECAYS[u] / 2^16. ``powers``: (SCALES, 16 bound + 32),
    row u :func:`_powers` of u once computed, zeros before (filled in here where needed). All the
    tables in one integer computation: built one by one they were a seventh of a decode."""
    count = MU_STEPS * (bound + 2)
    powers = np.zeros((SCALES, count), np.int64) if powers is None else powers
    u, f = np.divmod(np.asarray(indices, np.int64).reshape(-1, 1), MU_STEPS)
    for scale in np.unique(u[powers[u, 0] == 0]).tolist():  # t^0 is 2^32 once computed
        powers[scale] = _powers(scale, count)
    r = np.arange(-bound, bound + 1)
    above = MU_STEPS * r + MU_STEPS // 2 - f  # each bin's upper edge, in sixteenths from the centre
    weight = _cdf(powers, u, above) - _cdf(powers, u, above - MU_STEPS)
    spare = (1 << PRECISION) - r.size
    freqs = 1 + weight * spare // weight.sum(axis=1, keepdims=True)
    freqs[np.arange(len(freqs)), np.argmax(weight, axis=1)] += (1 << PRECISION) - freqs.sum(axis=1)
    return freqs


def table(index: int, bound: int) -> np.ndarray:
    """:func:`tables` of one index."""
    return tables([index], bound)[0]


def _passes(sizes: list[tuple[int, int]], scheme: Scheme):
    """(level, group) in decode order: coarsest level first, its groups in order."""
    for level in reversed(range(len(sizes))):
        for group in range(len(scheme.groups)):
            yield level, group


class _Tables:
    """The tables a stream uses as constriction models, built once each (those a pass needs in as
    few :func:`tables` calls as a bounded memory allows), the powers once per scale."""

    def __init__(self, bound: int) -> None:
        self.bound, self.models = bound, {}
        # np.zeros leaves the rows of scales never used unwritten: at the largest bound a file may
        # declare, 64 rows of 262,176 would be 134 MB, the most a stream using every scale needs
        self.powers = np.zeros((SCALES, MU_STEPS * (bound + 2)), np.int64)
        self.chunk = max(1, (1 << 16) // (2 * bound + 1))  # tables at once: about 2^16 integers a temporary

    def add(self, indices: np.ndarray) -> None:
        """Build the models of ``indices`` not built yet."""
        import constriction

        new = [i for i in dict.fromkeys(indices.tolist()) if i not in self.models]
        for at in range(0, len(new), self.chunk):
            chunk = new[at : at + self.chunk]
            for index, freqs in zip(chunk, tables(chunk, self.bound, self.powers)):
                probabilities = freqs.astype(np.float64) / float(1 << PRECISION)  # exact
                self.models[index] = constriction.stream.model.Categorical(probabilities, perfect=False)

    def of_pass(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The integer frequencies of the distinct tables of ``index`` (one row each) and each
        position's row: the encoder's rate estimates look every position's symbol up at once."""
        ids, rank = np.unique(index, return_inverse=True)
        ids = ids.tolist()
        rows = [tables(ids[at : at + self.chunk], self.bound, self.powers) for at in range(0, len(ids), self.chunk)]
        return np.concatenate(rows), rank.reshape(-1)

    def __getitem__(self, index: int):
        if index not in self.models:
            self.add(np.array([index]))
        return self.models[index]


@dataclass(frozen=True)
class Runs:
    """One pass's positions sorted by table, stable within a table: the order they are coded in."""

    order: np.ndarray  # positions of the pass, in coding order
    ids: np.ndarray  # each run's table index, ascending
    starts: np.ndarray  # where each run begins in ``order``
    ends: np.ndarray  # and ends

    @staticmethod
    def of(index: np.ndarray) -> Runs:
        if index.size == 0:  # a 1x1 grid has no second half
            empty = np.zeros(0, np.int64)
            return Runs(empty, empty, empty, empty)
        # int16 (indices lie below 1024) takes NumPy's radix sort: the same stable order, 6x sooner
        order = np.argsort(index.astype(np.int16), kind="stable")
        sorted_index = index[order]
        starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
        ends = np.r_[starts[1:], sorted_index.size].astype(np.int64)
        return Runs(order, sorted_index[starts], starts, ends)

    def __iter__(self):
        """(table index, slice of ``order``) of each run."""
        return ((i, slice(s, e)) for i, s, e in zip(self.ids.tolist(), self.starts.tolist(), self.ends.tolist()))


BOUND = struct.Struct("<H")  # the residuals' bound


def encode_latents(latents: list[np.ndarray], arm: list[np.ndarray], scheme: Scheme = CHECKERBOARD) -> bytes:
    """The bound and the range coder's words of every latent (C, h, w) of the pyramid, finest
    first, each coded as its residual from floor(mu) under its table."""
    with blas.one_thread():
        plan = _plan(latents, arm, scheme)
        return _code(plan, _bound(plan))


class PassCache:
    """Each pass's network outputs (floor(mu), table indices), kept with the inputs they came from.
    A pass's outputs depend only on the network, its parent level and its own level's groups
    decoded before it; the encoder's rounding asks for one pass's rates after moving a few
    latents, when most passes' inputs have not moved (16 full plans were half of a rounding's time)."""

    def __init__(self) -> None:
        self._kept: dict[tuple, tuple[list[np.ndarray], np.ndarray, np.ndarray]] = {}
        self._layouts: dict[tuple, tuple[Layout, np.ndarray]] = {}

    def layout(self, scheme: Scheme, h: int, w: int, group: int) -> tuple[Layout, np.ndarray]:
        """The group's :class:`Layout` and the mask of the groups decoded before it, made once."""
        key = (scheme, h, w, group)
        if key not in self._layouts:
            self._layouts[key] = (Layout.of(scheme, h, w, group), scheme.group_of(h, w) < group)
        return self._layouts[key]

    def params(self, latents: list[np.ndarray], arm: list[np.ndarray], level: int, group: int, scheme: Scheme):
        q = latents[level]
        parent = latents[level + 1] if level + 1 < len(latents) else None
        layout, before = self.layout(scheme, *q.shape[1:], group)
        inputs = [*arm, np.empty(0) if parent is None else parent]
        if group:
            inputs.append(q[:, before])
        key = (level, group, q.shape, scheme)
        kept = self._kept.get(key)
        if kept is not None and all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(kept[0], inputs)):
            return kept[1], kept[2]
        base, index = pass_params(q, parent, Network(arm), level, scheme, layout)
        self._kept[key] = ([a.copy() for a in inputs], base, index)
        return base, index


def _plan(
    latents: list[np.ndarray], arm: list[np.ndarray], scheme: Scheme = CHECKERBOARD, cache: PassCache | None = None
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(level, residuals, table indices) of every pass, in stream order (network outputs from
    ``cache`` where its inputs are unchanged)."""
    check_network(arm, scheme)
    net = Network(arm)
    sizes = [q.shape[1:] for q in latents]
    plan = []
    for level, group in _passes(sizes, scheme):
        q = latents[level]
        if cache is None:
            layout = Layout.of(scheme, *sizes[level], group)
            parent = latents[level + 1] if level + 1 < len(latents) else None
            base, index = pass_params(q, parent, net, level, scheme, layout)
        else:
            layout = cache.layout(scheme, *sizes[level], group)[0]
            base, index = cache.params(latents, arm, level, group, scheme)
        plan.append((level, q[:, layout.mask].reshape(-1) - base, index))
    return plan


def _bound(plan: list[tuple[int, np.ndarray, np.ndarray]]) -> int:
    bound = max((int(np.abs(r).max()) for _, r, _ in plan if r.size), default=0)
    if bound >= MAX_RESIDUAL:
        raise FormatError(f"a latent lies {bound} from its predicted centre; the format allows {MAX_RESIDUAL - 1}")
    return bound


def level_bits(latents: list[np.ndarray], arm: list[np.ndarray], scheme: Scheme = CHECKERBOARD) -> list[float]:
    """Each level's information under its tables, in bits: -log2 of every latent's coded
    probability. The range coder's words are their sum within a few bytes, so this splits the
    LATENTS section by level (``inrcodec info``), which the one stream of words cannot."""
    with blas.one_thread():
        plan = _plan(latents, arm, scheme)
    bound = _bound(plan)
    tables = _Tables(bound)
    bits = [0.0] * len(latents)
    for level, residual, index in plan:
        if bound and index.size:
            freqs, rank = tables.of_pass(index)
            bits[level] += float(np.sum(PRECISION - np.log2(freqs[rank, residual + bound].astype(np.float64))))
    return bits


def moved_bits(
    latents: list[np.ndarray],
    arm: list[np.ndarray],
    level: int,
    group: int,
    deltas: tuple[int, ...],
    scheme: Scheme = CHECKERBOARD,
    cache: PassCache | None = None,
) -> np.ndarray:
    """(len(deltas), C, h, w): -log2 of the probability each latent of one pass (a ``level``'s
    ``group``; inf elsewhere) would be coded with if it alone moved by each delta, its table
    (which its context fixes, not its own value) and the stream's bound unchanged; inf where the
    residual would leave the bound. The encoder's rate-distortion rounding reads its rates here,
    with one ``cache`` for its calls."""
    with blas.one_thread():
        plan = _plan(latents, arm, scheme, cache)
    bound = _bound(plan)
    tables = _Tables(bound)
    at_pass = list(_passes([q.shape[1:] for q in latents], scheme)).index((level, group))
    _, residual, index = plan[at_pass]
    bits = np.full((len(deltas), residual.size), np.inf)
    if index.size:
        freqs, rank = tables.of_pass(index)
        freqs = freqs.astype(np.float64)
        for k, d in enumerate(deltas):
            r = residual + d + bound
            inside = (r >= 0) & (r < freqs.shape[1])
            bits[k, inside] = PRECISION - np.log2(freqs[rank[inside], r[inside]])
    c, h, w = latents[level].shape
    out = np.full((len(deltas), c, h, w), np.inf)
    out[:, :, member(scheme, h, w, group)] = bits.reshape(len(deltas), c, -1)
    return out


def _code(
    plan: list[tuple[int, np.ndarray, np.ndarray]],
    bound: int,
    tables: _Tables | None = None,
    runs: list[Runs] | None = None,
) -> bytes:
    """The bound and the words of every pass's (level, residuals, table indices), in pass order
    (``tables`` and ``runs``: those a decode of the same stream has built, not built again)."""
    import constriction

    if bound == 0:  # every latent is its predicted base: nothing to code
        return BOUND.pack(0)
    tables = _Tables(bound) if tables is None else tables
    encoder = constriction.stream.queue.RangeEncoder()
    for k, (_, residual, index) in enumerate(plan):
        by_table = Runs.of(index) if runs is None else runs[k]
        symbols = (residual[by_table.order] + bound).astype(np.int32)
        tables.add(by_table.ids)
        for i, run in by_table:
            encoder.encode(symbols[run], tables[i])
    return BOUND.pack(bound) + encoder.get_compressed().astype("<u4").tobytes()


def decode_latents(
    data: bytes | memoryview,
    sizes: list[tuple[int, int]],
    channels: int,
    arm: list[np.ndarray],
    scheme: Scheme = CHECKERBOARD,
) -> list[np.ndarray]:
    """The pyramid back from :func:`encode_latents`' bytes; FormatError if they are not its code."""
    with blas.one_thread():
        return _decode_latents(data, sizes, channels, arm, scheme)


def _decode_latents(
    data: bytes | memoryview, sizes: list[tuple[int, int]], channels: int, arm: list[np.ndarray], scheme: Scheme
) -> list[np.ndarray]:
    import constriction

    check_network(arm, scheme)
    if len(data) < BOUND.size or (len(data) - BOUND.size) % 4:
        raise FormatError("latent block is not a bound and whole 32-bit words")
    (bound,) = BOUND.unpack_from(data)
    if bound >= MAX_RESIDUAL:
        raise FormatError("latent residual bound out of range")
    tables = _Tables(bound)
    words = np.frombuffer(data, dtype="<u4", offset=BOUND.size).astype(np.uint32)
    latents: list[np.ndarray] = [np.zeros((channels, h, w), np.int64) for h, w in sizes]
    net = Network(arm)
    plan, runs = [], []
    try:
        if bound == 0 and words.size:
            raise ValueError("words after a zero bound")
        decoder = constriction.stream.queue.RangeDecoder(words)
        for level, group in _passes(sizes, scheme):
            q = latents[level]
            parent = latents[level + 1] if level + 1 < len(latents) else None
            layout = Layout.of(scheme, *sizes[level], group)
            base, index = pass_params(q, parent, net, level, scheme, layout)
            by_table = Runs.of(index)
            residual = np.zeros(index.size, np.int64)
            if bound and index.size:
                tables.add(by_table.ids)
                decoded = [decoder.decode(tables[i], run.stop - run.start) for i, run in by_table]
                residual[by_table.order] = np.concatenate(decoded)
                residual -= bound
            q[:, layout.mask] = (residual + base).reshape(channels, -1)
            plan.append((level, residual, index))
            runs.append(by_table)
    except (ValueError, RuntimeError, OverflowError, AssertionError) as e:  # constriction asserts
        raise FormatError(f"corrupt latent block ({e})") from None
    # One stream per content: the latents' own code (encode_latents' bound and words) and nothing
    # else. The passes' centres, tables and coding orders are those just computed, so only the
    # coder reruns.
    if _bound(plan) != bound:
        raise FormatError(f"corrupt latent block (bound {bound}, but the residuals need {_bound(plan)})")
    if _code(plan, bound, tables, runs) != bytes(data):
        raise FormatError("corrupt latent block (its words are not the latents' code)")
    return latents
